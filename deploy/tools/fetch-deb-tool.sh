#!/usr/bin/env bash
# Put one binary of a Debian package at DEST without installing the package (and its service):
#
#   fetch-deb-tool.sh TOOL PACKAGE DEST
#     e.g. fetch-deb-tool.sh promtool prometheus              .tools/promtool
#          fetch-deb-tool.sh amtool   prometheus-alertmanager .tools/amtool
#
#   1. DEST already runs (`TOOL --version`) -> nothing to do (idempotent)
#   2. TOOL is on PATH                      -> symlink it
#   3. otherwise                            -> `apt-get download PACKAGE`, unpack it with
#                                              `dpkg-deb -x` into a temp dir and copy usr/bin/TOOL;
#                                              if the download fails because the package lists
#                                              are missing or old, run `apt-get update` (needs
#                                              root, as CI is) and retry.
#
# Quiet on success; on failure one clear line on stderr and exit 1.
set -euo pipefail

[[ $# -eq 3 ]] || { echo "usage: fetch-deb-tool.sh TOOL PACKAGE DEST" >&2; exit 2; }
tool="$1"
package="$2"
dest="$3"

fail() {
    echo "fetch-$tool: $*" >&2
    exit 1
}

works() {
    [[ -x "$1" ]] && "$1" --version >/dev/null 2>&1
}

# One fetch at a time per destination dir (the test workers of `make test -n 2` each ask):
# the second waits, then finds the tool there.
mkdir -p "$(dirname "$dest")"
exec 9>>"$(dirname "$dest")/.fetch.lock"
flock 9

if works "$dest"; then
    exit 0
fi
mkdir -p "$(dirname "$dest")"
rm -f "$dest"

if on_path="$(command -v "$tool" 2>/dev/null)" && works "$on_path"; then
    ln -s "$on_path" "$dest"
    exit 0
fi

command -v apt-get >/dev/null 2>&1 || fail "$tool not on PATH and apt-get not available; install $tool (Debian/Ubuntu package '$package') and re-run"
command -v dpkg-deb >/dev/null 2>&1 || fail "$tool not on PATH and dpkg-deb not available"

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
log="$tmp/apt.log"

download() {
    # apt-get download writes into the current directory; _apt may not read a root-only temp dir.
    (cd "$tmp" && apt-get download -q "$package") >>"$log" 2>&1
}

if ! download; then
    if [[ "$(id -u)" -ne 0 ]]; then
        fail "apt-get download $package failed and apt-get update needs root: $(tail -n 3 "$log" | tr '\n' ' ')"
    fi
    apt-get update -q >>"$log" 2>&1 ||
        fail "apt-get download $package failed, then apt-get update failed: $(tail -n 3 "$log" | tr '\n' ' ')"
    download ||
        fail "apt-get download $package failed (also after apt-get update): $(tail -n 3 "$log" | tr '\n' ' ')"
fi

deb="$(ls "$tmp"/"${package}"_*.deb 2>/dev/null | head -n 1)"
[[ -n "$deb" ]] || fail "apt-get download left no ${package}_*.deb"
dpkg-deb -x "$deb" "$tmp/root" || fail "dpkg-deb -x $deb failed"
[[ -x "$tmp/root/usr/bin/$tool" ]] || fail "$deb has no usr/bin/$tool"

cp "$tmp/root/usr/bin/$tool" "$dest.tmp.$$"
chmod 0755 "$dest.tmp.$$"
mv -f "$dest.tmp.$$" "$dest"
works "$dest" || fail "$dest does not run ($tool --version failed)"
