#!/usr/bin/env bash
# Run the core benchmarks: bootstrap .venv, ensure a PostgreSQL (unless LTC_SKIP_PG=1),
# then `python tests/benchmarks/bench_core.py "$@"` with LTC_TEST_PG_URL exported.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"

bash scripts/bootstrap.sh

BENCH=tests/benchmarks/bench_core.py
[[ -f "$BENCH" ]] || { echo "[bench] ERROR: $BENCH not found" >&2; exit 1; }

PG_STARTED="$(mktemp)"
cleanup() {
    if [[ -s "$PG_STARTED" ]]; then bash scripts/pg.sh stop >/dev/null 2>&1 || true; fi
    rm -f "$PG_STARTED"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [[ "${LTC_SKIP_PG:-0}" == 1 ]]; then
    echo "[bench] LTC_SKIP_PG=1: not starting PostgreSQL" >&2
else
    LTC_TEST_PG_URL="$(LTC_PG_STARTED_FILE="$PG_STARTED" bash scripts/pg.sh start | tail -n 1)"
    [[ -n "$LTC_TEST_PG_URL" ]] || { echo "[bench] ERROR: scripts/pg.sh printed no URL" >&2; exit 1; }
    export LTC_TEST_PG_URL
    echo "[bench] LTC_TEST_PG_URL=$LTC_TEST_PG_URL" >&2
fi

rc=0
.venv/bin/python "$BENCH" "$@" || rc=$?
exit "$rc"
