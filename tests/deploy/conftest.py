"""Fixtures of the deploy tests."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.deploy.metric_names import REPO

FETCH = REPO / "deploy" / "tools" / "fetch-promtool.sh"
# The fetch script honours PROMTOOL_DEST too.
PROMTOOL = Path(os.environ.get("PROMTOOL_DEST", REPO / ".tools" / "promtool"))


def run_fetch(script: Path, *args: str) -> None:
    """Run one of deploy/tools/fetch-*.sh; one that fails is a test failure, not a skip (what
    it fetches would go unchecked otherwise)."""
    proc = subprocess.run(
        ["bash", str(script), *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if proc.returncode != 0:
        pytest.fail(
            f"deploy/tools/{script.name} failed (exit {proc.returncode}): "
            f"{proc.stderr.strip() or proc.stdout.strip()}"
        )


@pytest.fixture(scope="session")
def promtool() -> Path:
    """Fetch promtool once per session (deploy/tools/fetch-promtool.sh): the rules."""
    run_fetch(FETCH)
    return PROMTOOL


AMTOOL_FETCH = REPO / "deploy" / "tools" / "fetch-amtool.sh"
# The fetch script honours AMTOOL_DEST too.
AMTOOL = Path(os.environ.get("AMTOOL_DEST", REPO / ".tools" / "amtool"))


@pytest.fixture(scope="session")
def amtool() -> Path:
    """Fetch amtool once per session (deploy/tools/fetch-amtool.sh): the Alertmanager config."""
    run_fetch(AMTOOL_FETCH)
    return AMTOOL
