#!/usr/bin/env bash
# Installs fast-agent (the `fast-agent-mcp` Python package), a real third-party ACP agent that
# runs without any model account (`fast-agent acp --model passthrough --shell`). The agent tests
# (peer/tests/agent_fast_agent.rs) drive it through `peer host`.
#
#   usage: .ci/install-fast-agent.sh [DEST]      default DEST: <repo>/target/fast-agent
#   then:  DEST/bin/fast-agent --version
#
# Reproducible: every package is pinned by version and sha256 in
# .ci/fast-agent-requirements.txt and installed with --no-deps --require-hashes
# --only-binary=:all:, so pip resolves nothing, compiles nothing and fetches exactly those
# wheels from PyPI. The lock is for Linux x86_64 (glibc >= 2.34), CPython 3.12; regenerate it
# with .ci/make-fast-agent-lock.py when changing the version.
#
# Idempotent: a DEST that already holds a working install of this exact lock is left alone
# (a stamp file holds the lock's sha256); anything else is removed and installed again.
#
# Needs CPython 3.12 (Debian 12's python3 is 3.11; fast-agent needs >= 3.12): $PYTHON312 if
# set, else the newest 3.12.x under pyenv's root (found without pyenv on PATH too, via
# $PYENV_ROOT or ~/.pyenv), else python3.12 on PATH.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
DEST=${1:-$ROOT/target/fast-agent}
LOCK="$HERE/fast-agent-requirements.txt"
[ -f "$LOCK" ] || { echo "install-fast-agent: missing $LOCK" >&2; exit 1; }

find_python312() {
    if [ -n "${PYTHON312:-}" ]; then echo "$PYTHON312"; return; fi
    local root v
    root=${PYENV_ROOT:-$HOME/.pyenv}
    if command -v pyenv >/dev/null 2>&1; then root=$(pyenv root); fi
    if [ -d "$root/versions" ]; then
        v=$(find "$root/versions" -mindepth 1 -maxdepth 1 -printf '%f\n' 2>/dev/null \
            | grep -E '^3\.12\.[0-9]+$' | sort -t. -k3 -n | tail -n1 || true)
        if [ -n "$v" ] && [ -x "$root/versions/$v/bin/python3.12" ]; then
            echo "$root/versions/$v/bin/python3.12"; return
        fi
    fi
    if command -v python3.12 >/dev/null 2>&1; then command -v python3.12; return; fi
    echo "install-fast-agent: no CPython 3.12 found (set PYTHON312, or install one with" \
        "'pyenv install 3.12' or the distribution's python3.12 package)" >&2
    exit 1
}

STAMP="$DEST/.fast-agent-lock.sha256"
WANT=$(sha256sum "$LOCK" | cut -d' ' -f1)
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$WANT" ] \
    && "$DEST/bin/fast-agent" --version >/dev/null 2>&1; then
    echo "install-fast-agent: $DEST is up to date ($("$DEST/bin/fast-agent" --version 2>&1 | tail -n1))"
    exit 0
fi

PY=$(find_python312)
"$PY" -c 'import sys; assert sys.version_info[:2] == (3, 12), sys.version' \
    || { echo "install-fast-agent: $PY is not CPython 3.12" >&2; exit 1; }

echo "install-fast-agent: creating a virtualenv at $DEST with $PY"
rm -rf "$DEST"
mkdir -p "$(dirname "$DEST")"
"$PY" -m venv "$DEST"
PIP_DISABLE_PIP_VERSION_CHECK=1 "$DEST/bin/pip" install --quiet --no-deps \
    --require-hashes --only-binary=:all: -r "$LOCK"
"$DEST/bin/pip" check
"$DEST/bin/fast-agent" --version
echo "$WANT" > "$STAMP"
echo "install-fast-agent: done ($(du -sh "$DEST" | cut -f1))"
