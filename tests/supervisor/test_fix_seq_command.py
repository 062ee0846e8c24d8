"""`fix seq` at the control plane: routed to the venue's connector while it runs; while it
does not, the supervisor writes the FIX store itself (same validation, same log line)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from actors.connector.fix.store import FixStore, read_numbers
from protocol import commands as wire
from protocol.messages import ControlRequest
from protocol.paths import fix_dir
from tests.supervisor.test_control_plane import BACKOFF, RUNNING, Rig


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    r = Rig(tmp_path)
    r.host.state_path = tmp_path  # type: ignore[attr-defined]
    r.host.states["connector.simA"] = RUNNING
    yield r
    r.close()


def _seq(**kw: object) -> wire.FixSeq:
    return wire.FixSeq(venue="simA", reason="venue reset", **kw)  # type: ignore[arg-type]


def test_fix_seq_goes_to_the_venues_connector_while_it_runs(rig: Rig) -> None:
    rig.send(ControlRequest(command=_seq(next_in=9)))
    assert rig.reply(timeout_ms=50) is None
    [(target, request)] = rig.host.forwarded
    assert target == "connector.simA" and request.command == _seq(next_in=9)


def test_the_supervisor_writes_the_store_while_the_connector_is_down(
    rig: Rig, tmp_path: Path
) -> None:
    with FixStore(fix_dir(tmp_path, "simA"), fsync=False) as store:
        store.save_sent(1, b"8=FIX.4.4\x01")
        store.set_next_in(4)
    rig.host.states["connector.simA"] = BACKOFF
    with capture_logs() as logs:
        reply = rig.ask(_seq(next_in=20, next_out=30))
    assert reply.status == "ok", reply.reason
    assert reply.data == {
        "old_next_in": 4, "next_in": 20, "old_next_out": 2, "next_out": 30,
        "reason": "venue reset", "applied_by": "supervisor",
    }  # fmt: skip
    assert read_numbers(fix_dir(tmp_path, "simA")) == (20, 30)
    [event] = [e for e in logs if e["event"] == "fix_seq_set"]
    assert event["log_level"] == "warning" and event["reason"] == "venue reset"


def test_the_supervisor_refuses_a_busy_store_an_unknown_venue_and_no_store(
    rig: Rig, tmp_path: Path
) -> None:
    rig.host.states["connector.simA"] = BACKOFF
    none_yet = rig.ask(_seq(next_in=2))
    assert none_yet.status == "error" and "no FIX store" in none_yet.reason
    with FixStore(fix_dir(tmp_path, "simA"), fsync=False):  # a connector starting up
        busy = rig.ask(_seq(next_in=2))
    assert busy.status == "error" and "open by a connector" in busy.reason
    unknown = rig.ask(wire.FixSeq(venue="nope", next_in=2, reason="x"))
    assert unknown.status == "error" and unknown.reason == "unknown venue 'nope'"


def test_the_wire_model_wants_a_reason_and_a_number() -> None:
    with pytest.raises(ValueError, match="reason"):
        wire.FixSeq(venue="simA", next_in=2, reason=" ")
    with pytest.raises(ValueError, match="next_in or next_out"):
        wire.FixSeq(venue="simA", reason="r")
    with pytest.raises(ValueError):
        wire.FixSeq(venue="simA", next_out=0, reason="r")
