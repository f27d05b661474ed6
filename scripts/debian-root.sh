#!/usr/bin/env bash
# A Debian 13 root for hosts whose glibc or Python is too old for the stack
# (TFX >= 1.17's TFDV and ML Metadata wheels need glibc >= 2.39; Debian 12 has
# 2.36). Needs root, debootstrap (installed with apt-get where missing) and
# util-linux's unshare.
#
#   scripts/debian-root.sh build          make the root once (idempotent)
#   scripts/debian-root.sh run CMD ARG... run CMD inside it, here
#   scripts/debian-root.sh path           print where the root is
#
# `run` enters a private mount namespace (`unshare --mount`), binds into the
# root what a command may name on the host, then chroots and execs CMD in the
# current directory: the exit code, signals and standard streams are CMD's
# own, and every mount dies with the command. Bound at the same paths:
# /proc /sys /dev /tmp, every top-level folder that is not the system's own
# (/home /root /work /opt /srv /mnt ...), /var/tmp, the host's resolver and CA
# certificates, the current directory, and any absolute path named in CMD's
# arguments (also after `=`, as in `--set data.image_dir=/usr/share/x`) that
# the root lacks. Inside, the checkout's .venv is the root's environment
# (.venv-debian13, bound over it), so every path the venv wrote is the same in
# and out. DAE_DEBIAN_ROOT names the root when set (default below, outside the
# work tree so every clone on the machine shares it).
set -euo pipefail

ROOT=${DAE_DEBIAN_ROOT:-/var/cache/mnist-dae-pipeline/debian13}
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
SUITE=trixie
# What the root holds beyond minbase: Python and the compilers for the
# wheels that build from source (pyfarmhash), git (the code fingerprint's
# tests), Chromium (the report page's browser test). A change here rebuilds
# the root: the stamp holds this list.
PACKAGES=(python3 python3-venv python3-dev g++ make git ca-certificates chromium
          fonts-dejavu-core)
STAMP="$ROOT/.mnist-dae-root"
# The host's own top-level folders that stay the root's.
SYSTEM_DIRS=" bin boot dev etc lib lib32 lib64 libx32 lost+found proc run sbin sys tmp usr var "

die() { echo "debian-root: error: $*" >&2; exit 1; }

wanted_stamp() { echo "$SUITE ${PACKAGES[*]}"; }

is_ready() { [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$(wanted_stamp)" ]; }

# The Debian mirror the host's apt already uses (deb822 or one-line sources);
# never written into the repo.
host_mirror() {
  local mirror
  mirror=$(grep -rhoE '^(URIs:[[:space:]]*|deb[[:space:]]+(\[[^]]*\][[:space:]]+)?)https?://[^[:space:]]+/debian/?([[:space:]]|$)' \
             /etc/apt/sources.list /etc/apt/sources.list.d 2>/dev/null \
           | grep -oE 'https?://[^[:space:]]+' | head -n 1)
  echo "${mirror:-http://deb.debian.org/debian}"
}

build() {
  [ "$(id -u)" -eq 0 ] || die "building the Debian 13 root needs root (or use the container image: docs/development.md)"
  command -v unshare >/dev/null || die "unshare (util-linux) is missing"
  mkdir -p "$(dirname "$ROOT")"
  # One builder at a time; others wait and then find it ready.
  exec 9>"$ROOT.lock"
  flock 9
  if is_ready; then return 0; fi
  if ! command -v debootstrap >/dev/null; then
    echo "debian-root: installing debootstrap (apt-get)" >&2
    apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap >&2 \
      || die "apt-get could not install debootstrap"
  fi
  local mirror partial="$ROOT.partial"
  mirror=$(host_mirror)
  echo "debian-root: building a Debian 13 ($SUITE) root at $ROOT from $mirror (once, a few minutes)" >&2
  rm -rf "$partial"
  # In a private mount namespace: whatever debootstrap mounts dies with it.
  unshare --mount --propagation private \
    debootstrap --variant=minbase --include=python3,ca-certificates "$SUITE" "$partial" "$mirror" >&2 \
    || die "debootstrap of $SUITE from $mirror failed (log: $partial/debootstrap/debootstrap.log)"
  # Packages install through `run`, so apt sees the host's resolver and CAs.
  rm -rf "$ROOT"
  mv "$partial" "$ROOT"
  in_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${PACKAGES[@]}" >&2 \
    || die "apt-get install inside the root failed"
  in_root apt-get clean
  # uv is one static binary: the host's copy serves inside.
  if command -v uv >/dev/null; then cp "$(command -v uv)" "$ROOT/usr/local/bin/uv"; fi
  wanted_stamp > "$STAMP"
  echo "debian-root: ready ($(in_root python3 --version))" >&2
}

# Prints the bind targets for an argument: the absolute paths in it.
paths_in() {
  local arg=$1 part
  for part in "$arg" "${arg##*=}"; do
    case "$part" in /*) echo "$part";; esac
  done
}

bind_same_path() {
  local source=$1 target="$ROOT$1"
  [ -e "$source" ] || return 0
  if [ -d "$source" ]; then mkdir -p "$target"; else
    mkdir -p "$(dirname "$target")"; [ -e "$target" ] || : > "$target"; fi
  mount --rbind "$source" "$target"
}

# Inside the new mount namespace: bind, chroot, exec.
enter() {
  local dir name
  mount --rbind /dev "$ROOT/dev"
  mount --rbind /proc "$ROOT/proc"
  mount --rbind /sys "$ROOT/sys"
  mount --rbind /tmp "$ROOT/tmp"
  for dir in /*/; do
    name=${dir#/}; name=${name%/}
    case "$SYSTEM_DIRS" in *" $name "*) continue;; esac
    bind_same_path "/$name"
  done
  bind_same_path /var/tmp
  [ -e "$ROOT$REPO" ] || bind_same_path "$REPO"
  for name in /etc/resolv.conf /etc/hosts /etc/ssl/certs; do bind_same_path "$name"; done
  # What the command names on the host, where the root has no such path.
  local arg path
  for arg in "$PWD" "$@"; do
    while read -r path; do
      [ -n "$path" ] && [ -e "$path" ] && [ ! -e "$ROOT$path" ] && bind_same_path "$path"
    done < <(paths_in "$arg")
  done
  # The checkout's environment: the root's venv at the path the host sees.
  if [ -d "$REPO/.venv-debian13" ]; then
    mkdir -p "$REPO/.venv"
    mount --bind "$REPO/.venv-debian13" "$ROOT$REPO/.venv"
  fi
  export DAE_IN_DEBIAN_ROOT=1
  export PATH="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
  exec chroot "$ROOT" /bin/sh -c 'cd "$1" && shift && exec "$@"' sh "$PWD" "$@"
}

# The checks before entering, and the command that enters (then __enter).
ENTER=(unshare --mount --propagation private -- bash "${BASH_SOURCE[0]}" __enter)
check_enterable() {
  [ "$(id -u)" -eq 0 ] || die "entering the Debian 13 root needs root"
  [ -x "$ROOT/usr/bin/python3" ] || die "no Debian 13 root at $ROOT: run scripts/setup.sh (or make setup)"
}

# Runs CMD in the root as a child process (`run` execs instead).
in_root() { check_enterable; "${ENTER[@]}" "$@"; }

run() {
  if [ "${DAE_IN_DEBIAN_ROOT:-}" = 1 ]; then
    # A host wrapper seen inside means the root's venv is not bound over
    # .venv: running it would come back here, forever.
    ! grep -qs 'Made by scripts/setup.sh' "$1" \
      || die "$1 is the host's wrapper, not the root's environment (was .venv removed while this ran? run make setup)"
    exec "$@"
  fi
  check_enterable
  exec "${ENTER[@]}" "$@"
}

case "${1:-}" in
  build) build;;
  run) shift; [ $# -gt 0 ] || die "usage: $0 run CMD [ARG...]"; run "$@";;
  path) echo "$ROOT";;
  __enter) shift; enter "$@";;
  *) die "usage: $0 build | run CMD [ARG...] | path";;
esac
