#!/usr/bin/env bash
# Put libseccomp's Python binding (the `seccomp` module of Debian's python3-seccomp) in
# .tools/pyseccomp (repo root), for the test that runs the system under the unit's
# SystemCallFilter (tests/deploy/test_systemd_unit.py). Not on PyPI; the Debian module is
# built for CPython 3.11 and links the system's libseccomp.so.2 (present wherever systemd is).
#
#   fetch-pyseccomp.sh PYTHON      PYTHON: the interpreter that must import it (the venv's)
#
#   1. PYTHON already imports it from the destination -> nothing to do (idempotent)
#   2. otherwise `apt-get download python3-seccomp`, unpack it with `dpkg-deb -x` and copy
#      the module; `apt-get update` first if the lists are missing or old (needs root).
#
# Quiet on success; on failure one clear line on stderr and exit 1.
# Env: PYSECCOMP_DEST overrides the destination directory.
set -euo pipefail

[[ $# -eq 1 ]] || { echo "usage: fetch-pyseccomp.sh PYTHON" >&2; exit 2; }
python="$1"
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
dest="${PYSECCOMP_DEST:-$repo_root/.tools/pyseccomp}"

fail() {
    echo "fetch-pyseccomp: $*" >&2
    exit 1
}

works() {
    PYTHONPATH="$dest" "$python" -c "import seccomp" >/dev/null 2>&1
}

# One fetch at a time per destination dir (the test workers of `make test -n 2` each ask):
# the second waits, then finds the tool there.
mkdir -p "$(dirname "$dest")"
exec 9>>"$(dirname "$dest")/.fetch.lock"
flock 9

if works; then
    exit 0
fi
command -v apt-get >/dev/null 2>&1 || fail "apt-get not available; install python3-seccomp (Debian/Ubuntu) and copy its seccomp*.so to $dest"
command -v dpkg-deb >/dev/null 2>&1 || fail "dpkg-deb not available"

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
log="$tmp/apt.log"

download() {
    (cd "$tmp" && apt-get download -q python3-seccomp) >>"$log" 2>&1
}

if ! download; then
    if [[ "$(id -u)" -ne 0 ]]; then
        fail "apt-get download python3-seccomp failed and apt-get update needs root: $(tail -n 3 "$log" | tr '\n' ' ')"
    fi
    apt-get update -q >>"$log" 2>&1 ||
        fail "apt-get download python3-seccomp failed, then apt-get update failed: $(tail -n 3 "$log" | tr '\n' ' ')"
    download ||
        fail "apt-get download python3-seccomp failed (also after apt-get update): $(tail -n 3 "$log" | tr '\n' ' ')"
fi

deb="$(ls "$tmp"/python3-seccomp_*.deb 2>/dev/null | head -n 1)"
[[ -n "$deb" ]] || fail "apt-get download left no python3-seccomp_*.deb"
dpkg-deb -x "$deb" "$tmp/root" || fail "dpkg-deb -x $deb failed"
module="$(ls "$tmp"/root/usr/lib/python3/dist-packages/seccomp*.so 2>/dev/null | head -n 1)"
[[ -n "$module" ]] || fail "$deb has no seccomp*.so"

mkdir -p "$dest"
cp "$module" "$dest/"
works || fail "$python cannot import seccomp from $dest (a CPython of another version, or no libseccomp.so.2?)"
