"""The fork server freezes its preloaded heap before it forks any actor."""

from __future__ import annotations

import subprocess
import sys

from tests.helpers import REPO_ROOT


def test_preload_moves_the_preloaded_objects_into_the_permanent_generation() -> None:
    """After `preload()` the objects of every imported actor module are frozen
    (`gc.get_freeze_count()`), so a forked actor's collector never touches (and unshares)
    their pages; only the garbage of the imports is collected, nothing frozen is garbage."""
    code = (
        "import gc\n"
        "from actors.supervisor.forkserver import preload\n"
        "preload()\n"
        "print(gc.get_freeze_count(), sum(gc.get_count()))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    frozen, young = (int(x) for x in out.stdout.split())
    assert frozen > 50_000  # pydantic, zmq, structlog and every actor module
    assert young < 1_000


def test_preload_imports_only_the_kinds_the_supervisor_runs() -> None:
    """A system without a simulated exchange does not pay for importing it (and aiohttp)
    at every start; a kind left out is still importable by its own child."""
    code = (
        "import sys\n"
        "from actors.supervisor.forkserver import preload\n"
        "from actors.runtime.process import actor_class\n"
        "preload(['oms', 'risk', 'connector'])\n"
        "print('actors.oms.actor' in sys.modules, 'actors.exchangesim.actor' in sys.modules,"
        " 'aiohttp' in sys.modules)\n"
        "print(actor_class('exchangesim').__name__)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["True", "False", "False", "ExchangeSimActor"]
