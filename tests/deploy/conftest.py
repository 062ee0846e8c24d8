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


@pytest.fixture(scope="session")
def promtool() -> Path:
    """Fetch promtool once per session (deploy/tools/fetch-promtool.sh). Not obtainable is a
    failure, not a skip: the rules would go unchecked."""
    proc = subprocess.run(
        ["bash", str(FETCH)], cwd=REPO, capture_output=True, text=True, timeout=300, check=False
    )
    if proc.returncode != 0:
        pytest.fail(
            f"deploy/tools/fetch-promtool.sh failed (exit {proc.returncode}): "
            f"{proc.stderr.strip() or proc.stdout.strip()}"
        )
    return PROMTOOL


AMTOOL_FETCH = REPO / "deploy" / "tools" / "fetch-amtool.sh"
# The fetch script honours AMTOOL_DEST too.
AMTOOL = Path(os.environ.get("AMTOOL_DEST", REPO / ".tools" / "amtool"))


@pytest.fixture(scope="session")
def amtool() -> Path:
    """Fetch amtool once per session (deploy/tools/fetch-amtool.sh). Not obtainable is a
    failure, not a skip: the Alertmanager config would go unchecked."""
    proc = subprocess.run(
        ["bash", str(AMTOOL_FETCH)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if proc.returncode != 0:
        pytest.fail(
            f"deploy/tools/fetch-amtool.sh failed (exit {proc.returncode}): "
            f"{proc.stderr.strip() or proc.stdout.strip()}"
        )
    return AMTOOL
