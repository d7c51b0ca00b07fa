"""Playbook documents: markdown with front-matter, cut into sections at `## ` headings."""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

REQUIRED = ("id", "title", "lang", "stage", "gate", "role", "topic")
LANGS = ("en", "zh")
CHECKLIST_HEADING = re.compile(r"^(AR|SR|FR)\s*(checklist|清单)$", re.IGNORECASE)


class PlaybookError(ValueError):
    """A playbook file that does not follow knowledge/playbooks/FORMAT.md."""


@dataclass(frozen=True)
class Section:
    """One retrievable chunk: a `## ` section of one playbook in one language."""

    doc: str
    lang: str
    title: str
    heading: str
    text: str
    stage: str
    gate: str
    role: str
    topic: str
    position: int

    @property
    def id(self) -> str:
        return f"{self.doc}.{self.lang}.{self.position:02d}"

    @property
    def digest(self) -> str:
        """Content hash: what incremental indexing compares."""
        raw = "\x1f".join((self.title, self.heading, self.text, self.stage, self.gate, self.role, self.topic))
        return hashlib.sha256(raw.encode()).hexdigest()[:32]

    @property
    def citation(self) -> str:
        return f"{self.title} § {self.heading}"

    def embedding_text(self) -> str:
        # Title and heading carry much of the meaning of a short section.
        return f"{self.title}. {self.heading}. {self.text}"


@dataclass(frozen=True)
class Playbook:
    path: Path
    meta: dict
    title: str
    sections: tuple[Section, ...]

    @property
    def id(self) -> str:
        return self.meta["id"]

    @property
    def lang(self) -> str:
        return self.meta["lang"]


def parse(path: Path) -> Playbook:
    raw = path.read_text(encoding="utf-8")
    match = re.match(r"^---\n(.*?)\n---\n(.*)$", raw, re.S)
    if not match:
        raise PlaybookError(f"{path.name}: no front-matter between --- lines")
    try:
        meta = yaml.safe_load(match.group(1)) or {}
    except yaml.YAMLError as e:
        raise PlaybookError(f"{path.name}: front-matter is not YAML: {e}") from None
    missing = [k for k in REQUIRED if not meta.get(k)]
    if missing:
        raise PlaybookError(f"{path.name}: front-matter misses {', '.join(missing)}")
    meta = {k: str(v) for k, v in meta.items()}
    if meta["lang"] not in LANGS:
        raise PlaybookError(f"{path.name}: lang must be one of {', '.join(LANGS)}")
    if not path.name.startswith(meta["id"] + "."):
        raise PlaybookError(f"{path.name}: file name must start with its id '{meta['id']}'")
    body = match.group(2)
    title_match = re.search(r"^# (.+)$", body, re.M)
    title = (title_match.group(1) if title_match else meta["title"]).strip()
    sections = []
    parts = re.split(r"^## (.+)$", body, flags=re.M)
    intro = re.sub(r"^# .+$", "", parts[0], flags=re.M).strip()
    chunks = ([(title, intro)] if intro else []) + [(parts[i].strip(), parts[i + 1].strip())
                                                     for i in range(1, len(parts), 2)]
    for position, (heading, text) in enumerate(chunks):
        if text:
            sections.append(Section(doc=meta["id"], lang=meta["lang"], title=title, heading=heading, text=text,
                                    stage=meta["stage"], gate=meta["gate"], role=meta["role"],
                                    topic=meta["topic"], position=position))
    if not sections:
        raise PlaybookError(f"{path.name}: no text")
    return Playbook(path=path, meta=meta, title=title, sections=tuple(sections))


def load_library(folder: str | Path) -> list[Playbook]:
    folder = Path(folder)
    if not folder.is_dir():
        raise PlaybookError(f"No playbook folder at {folder}")
    books = [parse(p) for p in sorted(folder.glob("*.md")) if p.name != "FORMAT.md"]
    seen: set[tuple[str, str]] = set()
    for b in books:
        if (b.id, b.lang) in seen:
            raise PlaybookError(f"Two {b.lang} playbooks have the id {b.id}")
        seen.add((b.id, b.lang))
    return books


def checklists(books: list[Playbook], *, stage: str | None = None, gate: str | None = None,
               lang: str = "en") -> dict[str, list[str]]:
    """Per-role checklist items of the stage (or gate) playbook in `lang` (English if missing)."""
    def has_checklists(b: Playbook) -> bool:
        return any(CHECKLIST_HEADING.match(sec.heading.strip()) for sec in b.sections)

    def pick(language: str) -> Playbook | None:
        candidates = [b for b in books if b.lang == language and has_checklists(b) and (
            b.meta["gate"] == gate if gate else (b.meta["stage"] == stage and b.meta["gate"] == "none"))]
        # The stage's own playbook (stage-<name>) wins over topic playbooks set in that stage.
        candidates.sort(key=lambda b: (not b.id.startswith("stage-"), b.id))
        return candidates[0] if candidates else None

    book = pick(lang) or pick("en")
    result: dict[str, list[str]] = {}
    if book is None:
        return result
    for s in book.sections:
        m = CHECKLIST_HEADING.match(s.heading.strip())
        if m:
            result[m.group(1).upper()] = [i for i in _bullets(s.text) if i]
    return result


def _bullets(text: str) -> list[str]:
    """The items of a bullet list; an item wrapped onto indented lines is joined back into one."""
    items: list[str] = []
    for line in text.splitlines():
        if re.match(r"^\s*[-*]\s+", line):
            items.append(re.sub(r"^\s*[-*]\s+(\[ \]\s*)?", "", line).strip())
        elif items and line.startswith((" ", "\t")) and line.strip():
            joiner = "" if re.match(r"[\u4e00-\u9fff]", line.strip()[:1]) else " "
            items[-1] = f"{items[-1]}{joiner}{line.strip()}"
    return items
