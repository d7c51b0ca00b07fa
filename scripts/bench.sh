#!/usr/bin/env bash
# Run the core benchmarks (never part of CI): bootstrap .venv, ensure a PostgreSQL
# (unless LTC_SKIP_PG=1), then `python tests/benchmarks/bench_core.py "$@"`.
#   bash scripts/bench.sh analytics [args]   runs tests/benchmarks/bench_analytics.py instead
#                                            (1M-deal dataset in its own database, kept between runs)
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"

bash scripts/bootstrap.sh

BENCH=tests/benchmarks/bench_core.py
if [[ "${1:-}" == analytics ]]; then
    shift
    BENCH=tests/benchmarks/bench_analytics.py
fi
[[ -f "$BENCH" ]] || { echo "[bench] ERROR: $BENCH not found" >&2; exit 1; }
LTC_TAG=bench exec bash scripts/with-pg.sh .venv/bin/python "$BENCH" "$@"
