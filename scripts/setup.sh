#!/usr/bin/env bash
# Creates .venv from requirements.lock, then installs this project into it
# (editable). Idempotent: `make setup` calls it only when the lock file,
# pyproject.toml or this script changed since the last successful run.
#
# The stack (TFX 1.21) needs glibc >= 2.39 and Python 3.13:
# - a host that has both (Debian 13, Ubuntu 24.04 with uv's Python 3.13, ...)
#   gets a plain .venv;
# - an older Linux host, as root, gets a Debian 13 root made once by
#   scripts/debian-root.sh: the environment is built inside it
#   (.venv-debian13), and .venv/bin holds a wrapper per command that runs it
#   there, so `.venv/bin/python`, `.venv/bin/dae-pipeline`, ... work from the
#   host shell as on any other host;
# - anywhere else, one line says what is needed.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=.venv
ROOT_VENV=.venv-debian13
LOCK=requirements.lock
PYTHON_VERSION=3.13
MIN_GLIBC=2.39

die() { echo "setup: error: $*" >&2; exit 1; }

# Without SSL_CERT_FILE, let uv trust the system's certificate store (where
# corporate proxies' CAs are installed) rather than its bundled roots.
if [ -z "${SSL_CERT_FILE:-}" ] && [ -z "${UV_NATIVE_TLS:-}" ]; then
  export UV_NATIVE_TLS=1
fi

ensure_uv() {
  command -v uv >/dev/null 2>&1 && return 0
  echo "setup: uv not found; installing it with pip" >&2
  # --user first; a PEP 668 system Python refuses that unless told that a
  # user-site install is meant (it touches ~/.local only).
  python3 -m pip install --quiet --user uv 2>/dev/null \
    || python3 -m pip install --quiet uv 2>/dev/null \
    || python3 -m pip install --quiet --user --break-system-packages uv \
    || die "uv is missing and 'python3 -m pip install uv' failed; install uv (https://docs.astral.sh/uv/)"
  export PATH="$HOME/.local/bin:$PATH"
  command -v uv >/dev/null 2>&1 || die "uv was installed but is not on PATH"
}

glibc_version() { getconf GNU_LIBC_VERSION 2>/dev/null | awk '{print $2}'; }

glibc_fits() {
  local have
  have=$(glibc_version)
  [ -n "$have" ] && [ "$(printf '%s\n%s\n' "$MIN_GLIBC" "$have" | sort -V | head -n 1)" = "$MIN_GLIBC" ]
}

is_wanted_python() {
  [ -n "$1" ] && [ -x "$1" ] && [ "$("$1" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)" = "$PYTHON_VERSION" ]
}

# Python 3.13: $PYTHON, python3.13 or python3 on PATH, or uv's own.
find_python() {
  local candidate
  if [ -n "${PYTHON:-}" ]; then
    is_wanted_python "$PYTHON" && { echo "$PYTHON"; return 0; }
    die "PYTHON=$PYTHON is not a Python $PYTHON_VERSION interpreter"
  fi
  for candidate in "$(command -v "python$PYTHON_VERSION" || true)" "$(command -v python3 || true)" \
                   "$(uv python find "$PYTHON_VERSION" 2>/dev/null || true)"; do
    is_wanted_python "$candidate" && { echo "$candidate"; return 0; }
  done
  return 1
}

# The locked stack into $1 with $2, then this project without dependencies.
# --compile-bytecode: uv, unlike pip, writes no .pyc files by default
# (docs.astral.sh/uv/reference/cli/#uv-pip-sync--compile-bytecode), and with
# PYTHONDONTWRITEBYTECODE set (as in this project's image and CI) Python never
# caches them either: every process would compile the tens of thousands of
# TF/TFX/Beam sources it imports (docs/benchmarks.md has the import times).
install_venv() {
  local venv=$1 python=$2
  # uv lists every package it installs (a line each, hundreds): only with
  # SETUP_VERBOSE=1; its errors and warnings show either way.
  local quiet=--quiet
  [ -n "${SETUP_VERBOSE:-}" ] && quiet=
  if [ -x "$venv/bin/python" ] && ! is_wanted_python "$venv/bin/python"; then
    echo "setup: $venv is not Python $PYTHON_VERSION; recreating it" >&2
    # Its contents: inside the Debian root the folder is a mount point.
    find "$venv" -mindepth 1 -delete
  fi
  # --seed: pip inside, since TFX packages module files with `python -m pip`.
  [ -x "$venv/bin/python" ] || uv venv $quiet --seed --python "$python" "$venv" >&2
  uv pip sync $quiet --python "$venv/bin/python" --compile-bytecode "$LOCK" >&2
  uv pip install $quiet --python "$venv/bin/python" --no-deps -e . >&2
  echo "setup: $venv holds the locked packages ($(grep -c '^[a-z0-9]' "$LOCK") of $LOCK) and this project" >&2
  "$venv/bin/python" -m pip --version >/dev/null || die "pip is missing from $venv"
  "$venv/bin/dae-pipeline" --help >/dev/null || die "the dae-pipeline command does not start"
}

# .venv/bin on the host: one wrapper per command of the root's environment.
write_wrappers() {
  local repo name root wrapper
  repo=$(pwd -P)
  root=$(bash scripts/debian-root.sh path)
  [ -d "$ROOT_VENV/bin" ] || die "$ROOT_VENV/bin is missing: the environment was not built in the root"
  # The folder itself stays: in a command running now, the root's venv is
  # bound over it, and a removed mount point would take that bind away.
  mkdir -p "$VENV/bin"
  for wrapper in "$VENV"/bin/*; do
    name=${wrapper##*/}
    [ -e "$ROOT_VENV/bin/$name" ] || [ -L "$ROOT_VENV/bin/$name" ] || rm -f "$wrapper"
  done
  for wrapper in "$ROOT_VENV"/bin/*; do
    name=${wrapper##*/}
    # activate scripts are sourced, not run: they have no use on the host.
    case "$name" in activate*|deactivate*) continue;; esac
    # python links to the root's interpreter, absent on the host.
    [ -x "$wrapper" ] || [ -L "$wrapper" ] || continue
    # Written beside and renamed: a command starting now finds the old or the new.
    {
      echo '#!/bin/sh'
      echo "# Runs .venv/bin/$name inside the Debian 13 root (scripts/debian-root.sh;"
      echo '# docs/development.md). Made by scripts/setup.sh.'
      printf 'DAE_DEBIAN_ROOT=%q exec %q run %q "$@"\n' \
        "$root" "$repo/scripts/debian-root.sh" "$repo/$VENV/bin/$name"
    } > "$VENV/bin/.$name.new"
    chmod +x "$VENV/bin/.$name.new"
    mv -f "$VENV/bin/.$name.new" "$VENV/bin/$name"
  done
  echo "debian13-root" > "$VENV/.kind"
}

native_setup() {
  local python
  python=$(find_python) || die "no Python $PYTHON_VERSION found. Install it ('uv python install $PYTHON_VERSION', or your distribution's python$PYTHON_VERSION), or point PYTHON=/path/to/python$PYTHON_VERSION"
  echo "setup: using $python ($("$python" --version 2>&1)), glibc $(glibc_version)" >&2
  [ -f "$VENV/.kind" ] && rm -rf "$VENV"  # wrappers from a Debian-root setup
  install_venv "$VENV" "$python"
}

root_setup() {
  echo "setup: this host has glibc $(glibc_version) (the stack needs >= $MIN_GLIBC): using a Debian 13 root" >&2
  [ ! -L "$VENV" ] || die "$VENV is a symbolic link; the Debian 13 root binds its environment over it: remove the link"
  bash scripts/debian-root.sh build
  mkdir -p "$ROOT_VENV" "$VENV"
  # Inside the root, $ROOT_VENV is bound over .venv: the environment is built
  # at the path the host's wrappers name.
  bash scripts/debian-root.sh run env DAE_SETUP_INSIDE_ROOT=1 bash scripts/setup.sh
  write_wrappers
}

# --native-fits: exit 0 where this host takes a plain .venv (CI asks).
if [ "${1:-}" = --native-fits ]; then
  glibc_fits && find_python >/dev/null
  exit
fi
if [ "${DAE_SETUP_INSIDE_ROOT:-}" = 1 ]; then
  # The root's uv; its cache (the host's, bound in) is on another mount:
  # copy, don't link.
  export UV_LINK_MODE=${UV_LINK_MODE:-copy}
  install_venv "$VENV" "/usr/bin/python$PYTHON_VERSION"
  exit 0
fi
# One set-up at a time in this checkout.
exec 7>"$VENV-setup.lock"
flock 7
if glibc_fits; then
  ensure_uv
  # uv's own Python where the system has no 3.13 (Ubuntu 24.04).
  find_python >/dev/null || uv python install "$PYTHON_VERSION" >&2 \
    || die "no Python $PYTHON_VERSION found and 'uv python install $PYTHON_VERSION' failed; install it, or point PYTHON=/path/to/python$PYTHON_VERSION"
  native_setup
elif [ "$(uname -s)" = Linux ] && [ "$(id -u)" -eq 0 ]; then
  root_setup
else
  die "this host ($(uname -s), glibc $(glibc_version || echo none)) is older than the stack (glibc >= $MIN_GLIBC, Python $PYTHON_VERSION): as root on Linux, setup builds a Debian 13 root for it; otherwise use the container image (make image; docs/development.md)"
fi
touch "$VENV/.setup-done"
echo "setup: $VENV is ready" >&2
