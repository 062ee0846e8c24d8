"""Rolling upgrades against real processes: a client library older than the running core
(its `protocol/` a copy whose OrderView lacks `pending_qty` and OrderEvent its fee fields,
which the core sends in every ack and event) submits an order, follows it on the event
stream to FILLED and reads it back (before `protocol.compat`: its submit timed out)."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest

from tests.helpers import REPO_ROOT, run_python
from tests.integration.oms_support import overrides, start, systems

pytestmark = pytest.mark.integration

# the fields the last sessions added, as messages.py declares them (one line each)
_NEWER_FIELDS = re.compile(r"^    (pending_qty|fill_fee_base|fill_fee_quote): .*\n", re.M)


def _older_protocol(into: Path) -> Path:
    """A copy of `protocol/` without the newer fields; the dir to put on PYTHONPATH."""
    shutil.copytree(REPO_ROOT / "protocol", into / "protocol",
                    ignore=shutil.ignore_patterns("__pycache__"))  # fmt: skip
    messages = into / "protocol" / "messages.py"
    text, n = _NEWER_FIELDS.subn("", messages.read_text())
    assert n == 3, "the fields to leave out moved: update the test"
    messages.write_text(text)
    return into


def test_an_older_client_trades_through_a_newer_core(short_tmp: Path) -> None:
    old = _older_protocol(short_tmp / "old")
    with systems() as started:
        sut = start(started, root=short_tmp, overrides=overrides())
        env = {**os.environ, "PYTHONPATH": str(old)}
        proc = run_python(
            [str(REPO_ROOT / "tests" / "integration" / "older_client.py"), str(sut.config_path),
             str(sut.state_dir), str(sut.runtime_dir), "old-1"],
            env=env, timeout_s=60.0,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr[-3000:]
        seen = json.loads(proc.stdout.strip().splitlines()[-1])
    assert seen["protocol"].startswith(str(old)), seen  # the older copy ran, not the repo's
    assert seen["ack"] in ("PENDING_SUBMIT", "ACCEPTED", "PARTIALLY_FILLED", "FILLED"), seen
    assert seen["events"][-1] == "FILLED", seen  # ACCEPTED too, unless one turn filled it
    assert (seen["order"], seen["cum_qty"]) == ("FILLED", "10"), seen
    assert {"order_ack.order.pending_qty", "order_event.fill_fee_base"} <= set(seen["unknown"])
