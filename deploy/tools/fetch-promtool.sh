#!/usr/bin/env bash
# Put a promtool binary at .tools/promtool (repo root) without installing the Prometheus server:
# from PATH, or from the Debian package 'prometheus' (fetch-deb-tool.sh says how).
# No PyPI fallback: no well-known PyPI package ships promtool.
# Env: PROMTOOL_DEST overrides the destination (default <repo>/.tools/promtool).
set -euo pipefail
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
exec bash "$repo_root/deploy/tools/fetch-deb-tool.sh" promtool prometheus \
    "${PROMTOOL_DEST:-$repo_root/.tools/promtool}"
