"""Hybrid retrieval: vector (cross-lingual) + BM25 (exact words), fused by reciprocal rank."""
from __future__ import annotations

from dataclasses import dataclass

from knowledge.documents import Section, checklists, load_library
from knowledge.embeddings import Embedder
from knowledge.keyword import KeywordIndex, is_chinese
from knowledge.store import as_lists, open_collection

RRF_K = 60  # the usual reciprocal-rank-fusion constant: damps the head of each list
CANDIDATES = 30


@dataclass(frozen=True)
class Passage:
    doc: str
    lang: str
    title: str
    section: str
    text: str
    stage: str
    role: str
    score: float

    @property
    def citation(self) -> str:
        return f"{self.title} § {self.section}"


class PlaybookSearch:
    """Loads the playbooks for BM25 and the display text; vectors come from the Chroma index."""

    def __init__(self, settings, embedder: Embedder) -> None:
        self.embedder = embedder
        # The index first: while there is none, looking for it (bot/context.py retries each minute,
        # every process on its first turn) must not parse and tokenise the whole library (~1.5 s).
        self.collection = open_collection(settings, embedder_name=embedder.name)
        if self.collection.count() == 0:
            raise LookupError("The playbook index is empty: run `ltc index` first")
        self.books = load_library(settings.playbooks_dir)
        self.sections: list[Section] = [s for b in self.books for s in b.sections]
        self.by_id = {s.id: s for s in self.sections}
        self.keywords = KeywordIndex([s.embedding_text() for s in self.sections])

    def search(self, query: str, *, stage: str | None = None, role: str | None = None,
               k: int = 5, lang: str | None = None) -> list[Passage]:
        """Best passages for the query. `lang` picks the language shown (default: the query's)."""
        query = (query or "").strip()
        if not query:
            return []
        allowed = {s.id for s in self.sections if _matches(s, stage, role)}
        vector_ids = self._vector_ids(query, stage, role)
        keyword_ids = self._keyword_ids(query, allowed)
        fused: dict[str, float] = {}
        for ranking in (vector_ids, keyword_ids):
            for rank, sid in enumerate(ranking):
                fused[sid] = fused.get(sid, 0.0) + 1.0 / (RRF_K + rank + 1)
        want_lang = lang if lang in ("en", "zh") else ("zh" if is_chinese(query) else "en")
        best: dict[tuple[str, int], tuple[float, Section]] = {}
        for sid, score in fused.items():
            s = self.by_id.get(sid)
            if s is None or sid not in allowed:
                continue
            # One passage per section: both languages count for it, shown in the asker's language.
            key = (s.doc, s.position)
            total = best.get(key, (0.0, s))[0] + score
            shown = self.by_id.get(f"{s.doc}.{want_lang}.{s.position:02d}")
            if shown is None or shown.heading == "" or not _same_section(shown, s):
                shown = s
            best[key] = (total, shown)
        ranked = sorted(best.values(), key=lambda pair: -pair[0])[:k]
        return [Passage(doc=s.doc, lang=s.lang, title=s.title, section=s.heading, text=s.text, stage=s.stage,
                        role=s.role, score=round(score, 5)) for score, s in ranked]

    def checklists(self, *, stage: str | None = None, gate: str | None = None, lang: str = "en") -> dict[str, list[str]]:
        return checklists(self.books, stage=stage, gate=gate, lang=lang)

    def _vector_ids(self, query: str, stage: str | None, role: str | None) -> list[str]:
        where = _where(stage, role)
        result = self.collection.query(query_embeddings=as_lists(self.embedder.embed([query])),
                                       n_results=CANDIDATES, where=where, include=[])
        return result["ids"][0] if result["ids"] else []

    def _keyword_ids(self, query: str, allowed: set[str]) -> list[str]:
        scores = self.keywords.scores(query)
        ranked = sorted(((sc, s.id) for sc, s in zip(scores, self.sections) if sc > 0 and s.id in allowed),
                        reverse=True)
        return [sid for _, sid in ranked[:CANDIDATES]]


def _matches(s: Section, stage: str | None, role: str | None) -> bool:
    return (not stage or s.stage in (stage, "any")) and (not role or s.role in (role, "all"))


def _where(stage: str | None, role: str | None) -> dict | None:
    clauses = []
    if stage:
        clauses.append({"stage": {"$in": [stage, "any"]}})
    if role:
        clauses.append({"role": {"$in": [role, "all"]}})
    if not clauses:
        return None
    return clauses[0] if len(clauses) == 1 else {"$and": clauses}


def _same_section(a: Section, b: Section) -> bool:
    # The two languages share structure by convention; positions match when both follow FORMAT.md.
    return a.doc == b.doc and a.position == b.position
