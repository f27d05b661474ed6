#!/usr/bin/env bash
# A Debian 13 root for hosts whose glibc or Python is too old for the stack
# (TFX >= 1.17's TFDV and ML Metadata wheels need glibc >= 2.39; Debian 12 has
# 2.36). Needs root, debootstrap (installed with apt-get where missing) and
# util-linux's unshare. docs/development.md says how to use and leave it.
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
# certificates (read-only), the checkout, the current directory, and every
# absolute path named in CMD's arguments (also after `=`, as in
# `--set data.image_dir=/usr/share/x`) that the root lacks; for a path that
# does not exist yet (an output), its nearest existing folder. Inside, the
# checkout's .venv is the root's environment (.venv-debian13, bound over it),
# so every path the venv wrote is the same in and out.
#
# DAE_DEBIAN_ROOT names the root (default below: outside the work tree, so
# every clone on the machine shares it). A command holds a shared lock on it
# for its life; a rebuild builds beside it and swaps it in under the
# exclusive lock, so it never pulls a root from under a running command.
set -euo pipefail

ROOT=${DAE_DEBIAN_ROOT:-/var/cache/mnist-dae-pipeline/debian13}
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
SUITE=trixie
# What the root holds beyond minbase: Python and the compilers for the
# wheels that build from source (pyfarmhash), git (the code fingerprint's
# tests), Chromium (the report page's browser test). A change here rebuilds
# the root: the stamp holds this list and the uv version.
PACKAGES=(python3 python3-venv python3-dev g++ make git ca-certificates chromium
          fonts-dejavu-core)
UV_VERSION=0.13.9
STAMP_NAME=.mnist-dae-root
# Mount points this script made inside the root (one path a line): they stay
# behind, empty, and must not pass for the root's own folders.
MOUNT_POINTS_NAME=.mnist-dae-mount-points
# The host's own top-level folders that stay the root's.
SYSTEM_DIRS=" bin boot dev etc lib lib32 lib64 libx32 lost+found proc run sbin sys tmp usr var "

die() { echo "debian-root: error: $*" >&2; exit 1; }

wanted_stamp() { echo "$SUITE ${PACKAGES[*]} uv==$UV_VERSION"; }

is_ready() {  # is_ready ROOT
  [ -f "$1/$STAMP_NAME" ] && [ "$(cat "$1/$STAMP_NAME")" = "$(wanted_stamp)" ]
}

# The Debian mirror the host's apt already uses (never written into the repo):
# the first one in the host's sources whose Release file says it is Debian's.
host_mirror() {
  local mirror release
  for mirror in $(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list \
                      /etc/apt/sources.list.d/*.sources 2>/dev/null \
                    | grep -oE '^[[:space:]]*(URIs:[[:space:]]*|deb[[:space:]]+(\[[^]]*\][[:space:]]+)?)https?://[^[:space:]]+' \
                    | grep -oE 'https?://[^[:space:]]+' | awk '!seen[$0]++'); do
    release=$(curl -fsS --max-time 20 "${mirror%/}/dists/$SUITE/Release" 2>/dev/null || true)
    if grep -q '^Origin: Debian$' <<< "$release"; then echo "${mirror%/}"; return 0; fi
  done
  echo http://deb.debian.org/debian
}

# Runs CMD inside the root at $1 as a child process (build's steps).
in_root_at() {
  local root=$1; shift
  DAE_DEBIAN_ROOT=$root unshare --mount --propagation private -- \
    bash "${BASH_SOURCE[0]}" __enter "$@"
}

build() {
  [ "$(id -u)" -eq 0 ] || die "building the Debian 13 root needs root; without it, use the container image (docs/development.md)"
  unshare --mount --propagation private true 2>/dev/null \
    || die "cannot make a mount namespace here (unshare --mount needs CAP_SYS_ADMIN: not in most containers); use the container image (docs/development.md)"
  is_ready "$ROOT" && return 0
  mkdir -p "$(dirname "$ROOT")"
  # One builder at a time, and none while a command runs in the root (they
  # hold the lock shared); others wait and then find it ready.
  exec 9>"$ROOT.lock"
  flock 9
  is_ready "$ROOT" && return 0
  if ! command -v debootstrap >/dev/null; then
    echo "debian-root: installing debootstrap (apt-get)" >&2
    { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap; } >&2 \
      || die "apt-get could not install debootstrap"
  fi
  local mirror partial="$ROOT.partial"
  mirror=$(host_mirror)
  echo "debian-root: building a Debian 13 ($SUITE) root at $ROOT from $mirror (once, a few minutes)" >&2
  rm -rf "$partial"
  # In a private mount namespace: whatever debootstrap mounts dies with it.
  unshare --mount --propagation private \
    debootstrap --variant=minbase --include=python3,ca-certificates "$SUITE" "$partial" "$mirror" >&2 \
    || die "debootstrap of $SUITE from $mirror failed (its log: $partial/debootstrap/debootstrap.log)"
  # The root's own CA certificates while apt configures ca-certificates
  # (the host's are bound read-only otherwise).
  DAE_ROOT_OWN_CERTS=1 in_root_at "$partial" \
    env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${PACKAGES[@]}" >&2 \
    || die "apt-get install inside the root failed"
  in_root_at "$partial" apt-get clean
  # uv, from PyPI, in a venv of its own (Debian's python3 has no pip).
  in_root_at "$partial" sh -c "python3 -m venv /opt/uv && /opt/uv/bin/python -m pip install -q uv==$UV_VERSION \
    && ln -sf /opt/uv/bin/uv /usr/local/bin/uv && uv --version" >&2 \
    || die "installing uv inside the root failed"
  wanted_stamp > "$partial/$STAMP_NAME"
  # Swapped in whole: an interrupted build leaves only $partial behind.
  if [ -e "$ROOT" ]; then mv "$ROOT" "$ROOT.old" && rm -rf "$ROOT.old"; fi
  mv "$partial" "$ROOT"
  echo "debian-root: ready ($(in_root_at "$ROOT" python3 --version))" >&2
}

is_system_path() {  # is_system_path PATH: under a folder that stays the root's
  local top=${1#/}; top=${top%%/*}
  case "$SYSTEM_DIRS" in *" $top "*) return 0;; esac
  return 1
}

made_here() { grep -qxF -- "$1" "$ROOT/$MOUNT_POINTS_NAME" 2>/dev/null; }

# The root has PATH of its own (not a mount point this script left there).
root_has() { [ -e "$ROOT$1" ] || [ -L "$ROOT$1" ] && ! made_here "$1"; }

bind_same_path() {  # bind_same_path PATH [ro]
  local source=$1 target="$ROOT$1"
  [ -e "$source" ] || return 0
  if [ ! -e "$target" ]; then
    if [ -d "$source" ]; then mkdir -p "$target"
    else mkdir -p "$(dirname "$target")"; : > "$target"; fi
    echo "$source" >> "$ROOT/$MOUNT_POINTS_NAME"
  fi
  mount --rbind "$source" "$target"
  if [ "${2:-}" = ro ]; then mount -o remount,bind,ro "$target"; fi
}

# A host path a command names: bound where it lies under the system's
# folders and the root lacks it; a path not there yet, by its nearest
# existing folder (so an output lands on the host).
bind_named() {
  local path=$1
  is_system_path "$path" || return 0
  while [ ! -e "$path" ] && [ "$path" != / ]; do path=$(dirname "$path"); done
  [ "$path" = / ] && return 0
  if [ -e "$path" ] && ! root_has "$path"; then bind_same_path "$path"; fi
}

# Inside the new mount namespace: bind, chroot, exec.
enter() {
  local dir name arg
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
  for name in /etc/resolv.conf /etc/hosts; do bind_same_path "$name" ro; done
  [ "${DAE_ROOT_OWN_CERTS:-}" = 1 ] || bind_same_path /etc/ssl/certs ro
  if is_system_path "$REPO"; then bind_same_path "$REPO"; fi
  # What the command names: its directory, each argument, and the part of
  # an argument after its last `=`.
  for arg in "$PWD" "$@"; do
    case "$arg" in /*) bind_named "$arg";; esac
    case "${arg##*=}" in /*) [ "${arg##*=}" = "$arg" ] || bind_named "${arg##*=}";; esac
  done
  # The checkout's environment: the root's venv at the path the host sees.
  if [ -d "$REPO/.venv-debian13" ]; then
    [ ! -L "$REPO/.venv" ] || die "$REPO/.venv is a symbolic link: remove it and run bash scripts/setup.sh"
    mkdir -p "$REPO/.venv"
    mount --bind "$REPO/.venv-debian13" "$ROOT$REPO/.venv"
  fi
  export DAE_IN_DEBIAN_ROOT=1
  export PATH="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
  exec chroot "$ROOT" /bin/sh -c 'cd "$1" && shift && exec "$@"' sh "$PWD" "$@"
}

run() {
  if [ "${DAE_IN_DEBIAN_ROOT:-}" = 1 ]; then
    # A host wrapper seen inside means the root's venv is not bound over
    # .venv: running it would come back here, forever.
    ! grep -qs 'Made by scripts/setup.sh' "$1" \
      || die "$1 is the host's wrapper, not the root's environment (was .venv removed while this ran? run bash scripts/setup.sh)"
    exec "$@"
  fi
  [ "$(id -u)" -eq 0 ] || die "entering the Debian 13 root needs root"
  is_ready "$ROOT" || die "no complete Debian 13 root at $ROOT: run bash scripts/setup.sh"
  # Shared for the command's life (the descriptor passes through every exec):
  # a rebuild waits for it.
  exec 8>>"$ROOT.lock"
  flock -s 8
  exec unshare --mount --propagation private -- bash "${BASH_SOURCE[0]}" __enter "$@"
}

case "${1:-}" in
  build) build;;
  run) shift; [ $# -gt 0 ] || die "usage: $0 run CMD [ARG...]"; run "$@";;
  path) echo "$ROOT";;
  __enter) shift; enter "$@";;
  *) die "usage: $0 build | run CMD [ARG...] | path";;
esac
