#!/usr/bin/env bash
# Create/refresh the project virtualenv (.venv) and install the project into it.
#
#   scripts/bootstrap.sh            # run: create .venv if missing, install when needed
#   source scripts/bootstrap.sh     # same, then activate .venv in the current shell
#
# The install (`pip install -c constraints.txt -e '.[test]'`) is repeated only when
# pyproject.toml or constraints.txt changed since the last successful install; a
# hash of them is kept in .venv/.ltc-install-stamp.
# Env: LTC_PYTHON=/path/to/python3.11 chooses the interpreter for a new .venv.

if [[ "${BASH_SOURCE[0]}" != "$0" ]]; then
    # Sourced: do the work in a child bash (so `set -euo pipefail` and `exit` never
    # leak into the caller's shell), then activate the venv here.
    if ! "${BASH:-bash}" "${BASH_SOURCE[0]}"; then
        echo "[bootstrap] failed" >&2
        return 1
    fi
    # shellcheck disable=SC1091
    source "$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/.venv/bin/activate"
    return 0
fi

set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
VENV="$REPO/.venv"
STAMP="$VENV/.ltc-install-stamp"

say() { echo "[bootstrap] $*" >&2; }
die() { echo "[bootstrap] ERROR: $*" >&2; exit 1; }

for f in pyproject.toml constraints.txt; do
    [[ -f "$f" ]] || die "$REPO/$f is missing"
done

# One bootstrap at a time per checkout (lock on this script file, no extra files).
exec 9<"${BASH_SOURCE[0]}"
flock -w 1800 9 || die "another bootstrap is still running (waited 30 min for its lock)"

is_py311() { "$1" -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else 1)' >/dev/null 2>&1; }

pick_python() {
    local c
    for c in ${LTC_PYTHON:-} python3.11 python3; do
        if command -v "$c" >/dev/null 2>&1 && is_py311 "$c"; then
            command -v "$c"
            return 0
        fi
    done
    return 1
}

# 1. venv (recreate if it exists but is broken, e.g. its base interpreter vanished)
if [[ -e "$VENV" ]] && ! { [[ -x "$VENV/bin/python" ]] && is_py311 "$VENV/bin/python"; }; then
    say "existing .venv is broken or not Python 3.11; recreating"
    rm -rf "$VENV"
fi
if [[ ! -d "$VENV" ]]; then
    PY="$(pick_python)" || die "Python 3.11 not found (tried \$LTC_PYTHON, python3.11, python3); pyproject requires >=3.11,<3.12"
    if ! "$PY" -c 'import ensurepip, venv' >/dev/null 2>&1; then
        # Debian's system python needs python3.11-venv for ensurepip.
        if [[ $EUID -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
            say "installing python3.11-venv (apt)"
            export DEBIAN_FRONTEND=noninteractive
            apt-get update -qq && apt-get install -y -qq python3.11-venv >/dev/null \
                || die "apt-get install python3.11-venv failed"
        else
            die "$PY lacks ensurepip/venv; install python3.11-venv"
        fi
    fi
    say "creating .venv with $PY ($("$PY" -c 'import platform; print(platform.python_version())'))"
    "$PY" -m venv "$VENV" || { rm -rf "$VENV"; die "python -m venv failed"; }
fi

# 1b. A CJK font for Chinese chart labels (bot/charts.py draws English labels without one).
CJK_FONT=/usr/share/fonts/truetype/wqy/wqy-microhei.ttc
if [[ ! -f "$CJK_FONT" ]] && ! fc-list :lang=zh 2>/dev/null | grep -q .; then
    if [[ $EUID -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
        say "installing fonts-wqy-microhei (apt) for Chinese chart labels"
        export DEBIAN_FRONTEND=noninteractive
        apt-get install -y -qq fonts-wqy-microhei >/dev/null 2>&1 \
            || { apt-get update -qq && apt-get install -y -qq fonts-wqy-microhei >/dev/null; } \
            || say "WARNING: fonts-wqy-microhei not installed: Chinese charts get English labels"
    else
        say "WARNING: no CJK font (apt-get install fonts-wqy-microhei): Chinese charts get English labels"
    fi
fi

# 2+3. pip upgrade + project install, only when the inputs changed
want="$( { echo "install: -c constraints.txt -e .[test]"
           "$VENV/bin/python" -c 'import sys; print(sys.version)'
           cat pyproject.toml constraints.txt; } | sha256sum | cut -d' ' -f1 )"
have="$(cat "$STAMP" 2>/dev/null || true)"
if [[ "$want" == "$have" ]]; then
    say "dependencies up to date (.venv)"
    exit 0
fi

say "upgrading pip"
"$VENV/bin/python" -m pip install -q --upgrade pip || die "pip upgrade failed"

say "installing -c constraints.txt -e '.[test]' (pyproject.toml/constraints.txt changed or first install)"
rm -f "$STAMP"
t0=$SECONDS
"$VENV/bin/python" -m pip install -q --progress-bar off -c constraints.txt -e '.[test]' \
    || die "pip install -c constraints.txt -e '.[test]' failed"
echo "$want" >"$STAMP"
say "installed in $((SECONDS - t0))s"
