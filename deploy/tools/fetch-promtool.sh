#!/usr/bin/env bash
# Put a promtool binary at .tools/promtool (repo root) without installing the Prometheus server.
#
#   1. .tools/promtool already runs      -> nothing to do (idempotent)
#   2. `promtool` is on PATH             -> symlink it
#   3. otherwise                         -> `apt-get download prometheus` (Debian ships promtool
#                                           in that package), unpack it with `dpkg-deb -x` into a
#                                           temp dir and copy usr/bin/promtool; if the download
#                                           fails because the package lists are missing or old,
#                                           run `apt-get update` (needs root, as CI is) and retry.
#
# No PyPI fallback: no well-known PyPI package ships promtool.
# Quiet on success; on failure one clear line on stderr and exit 1.
# Env: PROMTOOL_DEST overrides the destination (default <repo>/.tools/promtool).
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
dest="${PROMTOOL_DEST:-$repo_root/.tools/promtool}"

fail() {
    echo "fetch-promtool: $*" >&2
    exit 1
}

works() {
    [[ -x "$1" ]] && "$1" --version >/dev/null 2>&1
}

if works "$dest"; then
    exit 0
fi
mkdir -p "$(dirname "$dest")"
rm -f "$dest"

if on_path="$(command -v promtool 2>/dev/null)" && works "$on_path"; then
    ln -s "$on_path" "$dest"
    exit 0
fi

command -v apt-get >/dev/null 2>&1 || fail "promtool not on PATH and apt-get not available; install promtool (Debian/Ubuntu package 'prometheus') and re-run"
command -v dpkg-deb >/dev/null 2>&1 || fail "promtool not on PATH and dpkg-deb not available"

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
log="$tmp/apt.log"

download() {
    # apt-get download writes into the current directory; _apt may not read a root-only temp dir.
    (cd "$tmp" && apt-get download -q prometheus) >>"$log" 2>&1
}

if ! download; then
    if [[ "$(id -u)" -ne 0 ]]; then
        fail "apt-get download prometheus failed and apt-get update needs root: $(tail -n 3 "$log" | tr '\n' ' ')"
    fi
    apt-get update -q >>"$log" 2>&1 ||
        fail "apt-get download prometheus failed, then apt-get update failed: $(tail -n 3 "$log" | tr '\n' ' ')"
    download ||
        fail "apt-get download prometheus failed (also after apt-get update): $(tail -n 3 "$log" | tr '\n' ' ')"
fi

deb="$(ls "$tmp"/prometheus_*.deb 2>/dev/null | head -n 1)"
[[ -n "$deb" ]] || fail "apt-get download left no prometheus_*.deb"
dpkg-deb -x "$deb" "$tmp/root" || fail "dpkg-deb -x $deb failed"
[[ -x "$tmp/root/usr/bin/promtool" ]] || fail "$deb has no usr/bin/promtool"

cp "$tmp/root/usr/bin/promtool" "$dest.tmp.$$"
chmod 0755 "$dest.tmp.$$"
mv -f "$dest.tmp.$$" "$dest"
works "$dest" || fail "$dest does not run (promtool --version failed)"
