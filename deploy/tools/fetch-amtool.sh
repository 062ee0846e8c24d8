#!/usr/bin/env bash
# Put an amtool binary at .tools/amtool (repo root) without installing Alertmanager: from PATH,
# or from the Debian package 'prometheus-alertmanager' (fetch-deb-tool.sh says how).
# Env: AMTOOL_DEST overrides the destination (default <repo>/.tools/amtool).
set -euo pipefail
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
exec bash "$repo_root/deploy/tools/fetch-deb-tool.sh" amtool prometheus-alertmanager \
    "${AMTOOL_DEST:-$repo_root/.tools/amtool}"
