#!/usr/bin/env bash
# Run the test suite: bootstrap .venv, ensure a PostgreSQL (unless LTC_SKIP_PG=1),
# then `python -m pytest "$@"`. Exit code is pytest's; "no tests collected" (5) fails too.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"

bash scripts/bootstrap.sh

PG_STARTED="$(mktemp)"
cleanup() {
    # Stop the cluster only if pg.sh started it for us; stay quiet so pytest's
    # summary remains the last line of output.
    if [[ -s "$PG_STARTED" ]]; then bash scripts/pg.sh stop >/dev/null 2>&1 || true; fi
    rm -f "$PG_STARTED"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [[ "${LTC_SKIP_PG:-0}" == 1 ]]; then
    echo "[test] LTC_SKIP_PG=1: not starting PostgreSQL" >&2
else
    LTC_TEST_PG_URL="$(LTC_PG_STARTED_FILE="$PG_STARTED" bash scripts/pg.sh start | tail -n 1)"
    [[ -n "$LTC_TEST_PG_URL" ]] || { echo "[test] ERROR: scripts/pg.sh printed no URL" >&2; exit 1; }
    export LTC_TEST_PG_URL
    echo "[test] LTC_TEST_PG_URL=$LTC_TEST_PG_URL" >&2
fi

rc=0
.venv/bin/python -m pytest "$@" || rc=$?
if [[ $rc -eq 5 ]]; then
    echo "[test] FAILED: pytest collected no tests (exit code 5); an empty run counts as a failure" >&2
fi
exit "$rc"
