"""ccxt is loaded by a ccxt connector only (issue 12, "keep the exchange class import out of
the other actors"): its ~200 modules are megabytes of Python classes, and what the fork
server preloads is in every actor it forks. Each probe is a fresh interpreter that
imports what a process loads and prints the ccxt modules it then holds."""

from __future__ import annotations

import json

from tests.helpers import run_python

_PROBE = """
import json, sys
{body}
print(json.dumps(sorted(m for m in sys.modules if m == "ccxt" or m.startswith("ccxt."))))
"""


def ccxt_modules_after(body: str) -> list[str]:
    """The ccxt modules a fresh interpreter holds after running `body`."""
    done = run_python(["-c", _PROBE.format(body=body)], timeout_s=60.0)
    assert done.returncode == 0, done.stderr
    modules: list[str] = json.loads(done.stdout.strip().splitlines()[-1])
    return modules


def test_fork_server_preload_leaves_ccxt_out_of_every_forked_actor() -> None:
    """The fork server's preload (every module of ACTOR_KINDS: risk, OMS, connector,
    heartbeat, venue sim, exchange sim) loads no ccxt module, so no forked actor starts
    with ccxt in its memory; the connector imports it when its venue is a ccxt venue."""
    assert ccxt_modules_after("from actors.supervisor.forkserver import preload\npreload()") == []


def test_supervisor_loads_no_ccxt() -> None:
    """The supervisor (its CLI module and its package) does not import ccxt either."""
    body = (
        "import importlib, pkgutil, actors.supervisor as pkg\n"
        "import supervisor\n"
        "for info in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + '.'):\n"
        "    importlib.import_module(info.name)"
    )
    assert ccxt_modules_after(body) == []


def test_the_probe_sees_ccxt_where_the_ccxt_adapter_is_imported() -> None:
    """The control: importing the ccxt adapter (what a ccxt connector does) loads ccxt,
    so the empty answers above are not a probe that cannot see it."""
    modules = ccxt_modules_after("import actors.connector.ccxt.adapter")
    assert "ccxt" in modules
    assert "ccxt.base.errors" in modules
