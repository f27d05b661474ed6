#!/usr/bin/env bash
# The host side of the Debian 13 root (scripts/debian-root.sh): what .venv/bin's
# wrappers must pass through from the host shell. Runs on the host, after
# `make setup` made the wrappers (pytest runs inside the root, so it cannot
# see this side). .ci/run calls it where set-up chose the root.
#
#   bash tests/host/debian_root_test.sh
set -uo pipefail
cd "$(dirname "$0")/../.."
REPO=$(pwd -P)
PY="$REPO/.venv/bin/python"
passed=0 failed=0

check() {  # check NAME EXPECTED ACTUAL
  if [ "$2" = "$3" ]; then passed=$((passed + 1)); echo "ok: $1"
  else failed=$((failed + 1)); echo "FAILED: $1: expected [$2], got [$3]"; fi
}

[ -f .venv/.kind ] && grep -q debian13-root .venv/.kind \
  || { echo "debian_root_test: .venv is not a Debian-root set-up; nothing to test" >&2; exit 1; }
root=$(sed -n 's/^DAE_DEBIAN_ROOT=\([^ ]*\) exec .*/\1/p' .venv/bin/python)
[ -d "$root" ] || { echo "debian_root_test: no root named in .venv/bin/python" >&2; exit 1; }
mounts_before=$(wc -l < /proc/self/mounts)

check "the stack's Python and glibc inside" "3.13 2.41" \
  "$("$PY" -c 'import platform, sys; print("%d.%d" % sys.version_info[:2], platform.libc_ver()[1])')"

"$PY" -c 'import sys; sys.exit(7)'
check "exit code passes through" 7 $?

check "stdin in, stdout and stderr out" "HELLO|warn" \
  "$(echo hello | "$PY" -c 'import sys; print(sys.stdin.read().strip().upper()); print("warn", file=sys.stderr)' 2>&1 | paste -sd'|')"

scratch=$(mktemp -d /tmp/debian-root-test.XXXXXX)
check "the current directory is the host's" "$scratch" "$(cd "$scratch" && "$PY" -c 'import os; print(os.getcwd())')"
check "a relative path resolves from it" "relative" \
  "$(cd "$scratch" && echo relative > file && "$PY" -c 'print(open("file").read().strip())')"
check "environment variables pass through" "set here" "$(DAE_TEST_VALUE='set here' "$PY" -c 'import os; print(os.environ["DAE_TEST_VALUE"])')"

# A path under a system folder the root lacks, named as `--set key=PATH`;
# twice, since the first call leaves its mount point behind in the root.
system_dir=/usr/share/dae-debian-root-test-$$
mkdir -p "$system_dir" && echo digits > "$system_dir/file"
read_named='import sys; print(open(sys.argv[1].split("=")[1] + "/file").read().strip())'
check "a named path under /usr/share resolves as on the host" "digits" \
  "$("$PY" -c "$read_named" "data.image_dir=$system_dir")"
echo more > "$system_dir/file"
check "... and again, the second time" "more" "$("$PY" -c "$read_named" "data.image_dir=$system_dir")"
# An output named under a system folder, not there yet, lands on the host.
"$PY" -c 'import sys; open(sys.argv[1], "w").write("out")' "$system_dir/output"
check "a new output under /usr/share lands on the host" "out" "$(cat "$system_dir/output" 2>&1)"
rm -rf "$system_dir"
check "the host's resolver file is read-only inside" "Read-only" \
  "$("$PY" -c 'open("/etc/resolv.conf", "a")' 2>&1 | grep -o 'Read-only' | head -n 1)"

# SIGINT (what Ctrl-C sends) reaches the program: the wrapper's PID is its PID.
# Sent once its handler is in place (up to 300 s for Python to start on a
# loaded machine, then it fails); the sleep is never waited out.
ready="$scratch/ready"
"$PY" -c '
import signal, sys, time
signal.signal(signal.SIGINT, lambda *_: sys.exit(42))
open(sys.argv[1], "w").close()
time.sleep(600)' "$ready" &
pid=$!
for _ in $(seq 3000); do [ -e "$ready" ] && break; sleep 0.1; done
kill -INT "$pid"
wait "$pid"
check "SIGINT reaches the program (its handler's exit code)" 42 $?

check "the project command runs from the host" "0" \
  "$("$REPO/.venv/bin/dae-pipeline" --help >/dev/null 2>&1; echo $?)"

check "no mount is left on the host" "$mounts_before" "$(wc -l < /proc/self/mounts)"
check "nothing is mounted under the root on the host" "" "$(awk -v r="$root" 'index($2, r) == 1' /proc/mounts)"
rm -rf "$scratch"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
