#!/usr/bin/env bash
# Bootstrap .venv, `ltc start` (migrate, seed the demo company, print a summary), then the console chat.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"

bash scripts/bootstrap.sh
[[ -x .venv/bin/ltc ]] || { echo "[run] ERROR: .venv/bin/ltc missing (console script ltc = bot.cli:main)" >&2; exit 1; }
.venv/bin/ltc start
exec .venv/bin/ltc chat "$@"
