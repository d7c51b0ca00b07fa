#!/usr/bin/env bash
# Run the test suite: bootstrap .venv, ensure a PostgreSQL (unless LTC_SKIP_PG=1),
# then `python -m pytest "$@"`. Exit code is pytest's; "no tests collected" (5) fails too.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"

bash scripts/bootstrap.sh

rc=0
LTC_TAG=test bash scripts/with-pg.sh .venv/bin/python -m pytest "$@" || rc=$?
if [[ $rc -eq 5 ]]; then
    echo "[test] FAILED: pytest collected no tests (exit code 5); an empty run counts as a failure" >&2
fi
exit "$rc"
