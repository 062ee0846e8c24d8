"""Fixtures of the integration tests that need a tool from outside the venv."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.helpers import REPO_ROOT

STRACE = REPO_ROOT / ".tools" / "strace"


@pytest.fixture(scope="session")
def strace() -> Path:
    """strace, from PATH or from Debian's `strace` package (deploy/tools/fetch-deb-tool.sh,
    like promtool), at .tools/strace. One that cannot be fetched fails the test."""
    proc = subprocess.run(
        ["bash", "deploy/tools/fetch-deb-tool.sh", "strace", "strace", str(STRACE)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    if proc.returncode != 0:
        pytest.fail(f"fetching strace failed: {proc.stderr.strip() or proc.stdout.strip()}")
    return STRACE
