"""Build the playbook index incrementally: only sections whose content hash changed are embedded."""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from knowledge.documents import Section, load_library
from knowledge.embeddings import Embedder
from knowledge.store import as_lists, open_collection

BATCH = 32


@dataclass(frozen=True)
class IndexReport:
    sections: int
    added: int
    updated: int
    removed: int
    unchanged: int
    seconds: float

    def summary(self) -> str:
        return (f"{self.sections} sections: {self.added} added, {self.updated} updated, {self.removed} removed, "
                f"{self.unchanged} unchanged in {self.seconds:.1f}s")


def section_metadata(s: Section) -> dict:
    return {"doc": s.doc, "lang": s.lang, "title": s.title, "section": s.heading, "stage": s.stage,
            "gate": s.gate, "role": s.role, "topic": s.topic, "position": s.position, "digest": s.digest}


def build_index(settings, embedder: Embedder, *, rebuild: bool = False,
                progress: Callable[[int, int], None] | None = None) -> IndexReport:
    """Sync the collection with the playbook folder. `progress(done, total)` reports embedding work."""
    started = time.perf_counter()
    sections = [s for book in load_library(settings.playbooks_dir) for s in book.sections]
    collection = open_collection(settings, embedder_name=embedder.name)
    if rebuild:
        existing_ids = collection.get(include=[])["ids"]
        if existing_ids:
            collection.delete(ids=existing_ids)
    stored = collection.get(include=["metadatas"])
    known = {i: (m or {}).get("digest") for i, m in zip(stored["ids"], stored["metadatas"])}
    wanted = {s.id: s for s in sections}
    stale = [i for i in known if i not in wanted]
    todo = [s for s in sections if known.get(s.id) != s.digest]
    if stale:
        collection.delete(ids=stale)
    if progress:
        progress(0, len(todo))
    for i in range(0, len(todo), BATCH):
        batch = todo[i:i + BATCH]
        vectors = embedder.embed([s.embedding_text() for s in batch])
        collection.upsert(ids=[s.id for s in batch], embeddings=as_lists(vectors),
                          documents=[s.text for s in batch], metadatas=[section_metadata(s) for s in batch])
        if progress:
            progress(min(i + BATCH, len(todo)), len(todo))
    updated = sum(1 for s in todo if s.id in known)
    return IndexReport(sections=len(sections), added=len(todo) - updated, updated=updated, removed=len(stale),
                       unchanged=len(sections) - len(todo), seconds=time.perf_counter() - started)
