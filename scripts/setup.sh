#!/usr/bin/env bash
# Creates .venv from requirements.lock with Python 3.10 (the TFX 1.16 stack
# needs Python < 3.11), then installs this project into it (editable).
# Idempotent: `make setup` calls it only when the lock file or pyproject.toml
# changed since the last successful run.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${VENV:-.venv}
LOCK=requirements.lock

die() { echo "setup: error: $*" >&2; exit 1; }

# Without SSL_CERT_FILE, let uv trust the system's certificate store (where
# corporate proxies' CAs are installed) rather than its bundled roots.
if [ -z "${SSL_CERT_FILE:-}" ] && [ -z "${UV_NATIVE_TLS:-}" ]; then
  export UV_NATIVE_TLS=1
fi

# 1. uv resolves and installs the stack in seconds (pip backtracks for minutes).
if ! command -v uv >/dev/null 2>&1; then
  echo "setup: uv not found; installing it with pip" >&2
  # --user first; a PEP 668 system Python refuses that unless told that a
  # user-site install is meant (it touches ~/.local only).
  python3 -m pip install --quiet --user uv 2>/dev/null \
    || python3 -m pip install --quiet uv 2>/dev/null \
    || python3 -m pip install --quiet --user --break-system-packages uv \
    || die "uv is missing and 'python3 -m pip install uv' failed; install uv (https://docs.astral.sh/uv/)"
  export PATH="$HOME/.local/bin:$PATH"
  command -v uv >/dev/null 2>&1 || die "uv was installed but is not on PATH"
fi

# 2. Find Python 3.10: $PYTHON, pyenv, python3.10 on PATH, or uv's own.
is_py310() { [ -n "$1" ] && [ -x "$1" ] && "$1" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 10))' 2>/dev/null; }
find_python() {
  local candidate
  if [ -n "${PYTHON:-}" ]; then
    is_py310 "$PYTHON" && { echo "$PYTHON"; return; }
    die "PYTHON=$PYTHON is not a Python 3.10 interpreter"
  fi
  if command -v pyenv >/dev/null 2>&1; then
    for version in $(pyenv versions --bare 2>/dev/null | grep -E '^3\.10\.[0-9]+$' | sort -t. -k3 -n -r); do
      candidate="$(pyenv prefix "$version")/bin/python3.10"
      is_py310 "$candidate" && { echo "$candidate"; return; }
    done
  fi
  for candidate in "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.10.*/bin/python3.10; do
    is_py310 "$candidate" && { echo "$candidate"; return; }
  done
  candidate=$(command -v python3.10 || true)
  is_py310 "$candidate" && { echo "$candidate"; return; }
  candidate=$(uv python find 3.10 2>/dev/null || true)
  is_py310 "$candidate" && { echo "$candidate"; return; }
  die "no Python 3.10 found (TFX 1.16 needs Python 3.10). Install it (pyenv install 3.10.13, or 'uv python install 3.10'), or point PYTHON=/path/to/python3.10"
}
PY=$(find_python)
echo "setup: using $PY ($("$PY" --version 2>&1))" >&2

# 3. The virtual environment, with pip inside: TFX packages module files with
#    `python -m pip`.
if [ -x "$VENV/bin/python" ] && ! is_py310 "$VENV/bin/python"; then
  echo "setup: $VENV is not Python 3.10; recreating it" >&2
  rm -rf "$VENV"
fi
[ -x "$VENV/bin/python" ] || uv venv --seed --python "$PY" "$VENV" >&2

# 4. Exactly the locked stack, then this project without dependencies.
#    --compile-bytecode: uv, unlike pip, writes no .pyc files by default
#    (docs.astral.sh/uv/reference/cli/#uv-pip-sync--compile-bytecode), and
#    with PYTHONDONTWRITEBYTECODE set (as in this project's image and CI)
#    Python never caches them either: every process then compiles the ~24,000
#    source files of TF/TFX/Beam it imports. Measured on the 2-core dev machine:
#    `import tfx.v1` 61 s without, 17 s with (~55 s once, here).
uv pip sync --python "$VENV/bin/python" --compile-bytecode "$LOCK" >&2
uv pip install --python "$VENV/bin/python" --no-deps -e . >&2
"$VENV/bin/python" -m pip --version >/dev/null || die "pip is missing from $VENV"
"$VENV/bin/dae-pipeline" --help >/dev/null || die "the dae-pipeline command does not start"
touch "$VENV/.setup-done"
echo "setup: $VENV is ready" >&2
