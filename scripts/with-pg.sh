#!/usr/bin/env bash
# Run a command with a PostgreSQL for tests: ensure one (scripts/pg.sh), export LTC_TEST_PG_URL,
# run "$@", and stop the cluster afterwards only if this script started it.
# LTC_SKIP_PG=1 runs the command without PostgreSQL.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
TAG="${LTC_TAG:-with-pg}"

PG_STARTED="$(mktemp)"
cleanup() {
    # Quiet, so the command's own summary stays the last line of output.
    if [[ -s "$PG_STARTED" ]]; then bash scripts/pg.sh stop >/dev/null 2>&1 || true; fi
    rm -f "$PG_STARTED"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [[ "${LTC_SKIP_PG:-0}" == 1 ]]; then
    echo "[$TAG] LTC_SKIP_PG=1: not starting PostgreSQL" >&2
else
    LTC_TEST_PG_URL="$(LTC_PG_STARTED_FILE="$PG_STARTED" bash scripts/pg.sh start | tail -n 1)"
    [[ -n "$LTC_TEST_PG_URL" ]] || { echo "[$TAG] ERROR: scripts/pg.sh printed no URL" >&2; exit 1; }
    export LTC_TEST_PG_URL
    echo "[$TAG] LTC_TEST_PG_URL=$LTC_TEST_PG_URL" >&2
fi

rc=0
"$@" || rc=$?
exit "$rc"
