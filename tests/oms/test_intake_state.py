"""Operator intake pauses (`actors.oms.intake_state`): what a pause refuses and why, that a
new gate (an OMS restart) reads them back, that an unreadable file pauses globally (fail
closed, logged, counted), that a failed write never reopens intake, and that a kill -9
in the middle of saves leaves the old or the new file, never a torn one."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from actors.oms.intake_state import (
    STARTED_PAUSED,
    IntakeGate,
    IntakePauses,
    Pause,
    load_pauses,
    open_at_venue,
    pause_at_start,
    save_pauses,
    unsent_reason,
)
from actors.oms.order_book import OrderBook
from actors.oms.orders import DROPPED_OUT_OF_SESSION, DROPPED_STOPPED, DROPPED_UNSENT
from actors.runtime.operator_stops import OperatorStop, write_stops
from protocol.commands import Intake
from protocol.messages import ErrorCode, OrderStatus, RiskVerdict, SubmitOrder
from protocol.paths import intake_state_path
from tests.helpers import REPO_ROOT, eventually
from tests.log_stub import RecordingLog

VENUES = ["simA", "simB"]


def _gate(tmp_path: Path, log: RecordingLog | None = None) -> IntakeGate:
    return IntakeGate(tmp_path, tmp_path / "rt" / "stops.json", VENUES, log or RecordingLog())


def _unreadable_count() -> float:
    return REGISTRY.get_sample_value("tradepulse_intake_state_unreadable_total") or 0.0


def test_no_file_means_no_pause(tmp_path: Path) -> None:
    gate = _gate(tmp_path)
    assert gate.refusal("simA") is None and not gate.globally_paused
    assert gate.describe() == "no operator pause"


def test_a_venue_pause_refuses_that_venue_only_and_a_new_gate_keeps_it(tmp_path: Path) -> None:
    """The pause is on disk once `control` answers: a second gate (the restarted OMS) has it."""
    gate = _gate(tmp_path)
    ok, text = gate.control(Intake(action="pause", venue="simA", reason="desk review"))
    assert ok and text == "simA paused (desk review)"
    assert gate.refusal("simA") == (
        ErrorCode.INTAKE_PAUSED,
        "intake for simA is paused by an operator: desk review",
    )
    assert gate.refusal("simB") is None and not gate.globally_paused
    log = RecordingLog()
    again = _gate(tmp_path, log)
    assert again.refusal("simA") is not None and again.refusal("simB") is None
    assert "intake_pauses_loaded" in log.names("warning")
    saved = again.pauses.venues["simA"]
    assert saved.reason == "desk review" and saved.by is None and saved.since <= time.time()
    ok, _ = again.control(Intake(action="resume", venue="simA"))
    assert ok and _gate(tmp_path).refusal("simA") is None


def test_a_global_pause_refuses_every_venue_and_resume_keeps_venue_pauses(tmp_path: Path) -> None:
    """`resume` without a venue lifts the global pause only; the reply names what stays."""
    gate = _gate(tmp_path)
    gate.control(Intake(action="pause", venue="simB", reason="venue incident"))
    gate.control(Intake(action="pause", reason="lunch"))
    assert gate.globally_paused
    for venue in VENUES:
        assert gate.refusal(venue) == (
            ErrorCode.INTAKE_PAUSED,
            "order intake is paused by an operator: lunch",
        )
    ok, text = gate.control(Intake(action="resume"))
    assert ok and text == "simB paused (venue incident)"
    assert gate.refusal("simA") is None and gate.refusal("simB") is not None


def test_an_unknown_venue_is_an_error_and_changes_nothing(tmp_path: Path) -> None:
    gate = _gate(tmp_path)
    ok, text = gate.control(Intake(action="pause", venue="nope", reason="x"))
    assert not ok and "unknown venue 'nope'" in text
    assert not intake_state_path(tmp_path).exists()


@pytest.mark.parametrize(
    "content",
    [b"{not json", b'{"global_pause": 3}', b'{"venues": {"simA": {"reason": "x"}}}', b""],
    ids=["garbage", "wrong-type", "missing-field", "empty"],
)
def test_an_unreadable_file_pauses_globally_and_is_logged_and_counted(
    tmp_path: Path, content: bytes
) -> None:
    """Fail closed: every venue refused with a reason naming the file; resume replaces it."""
    intake_state_path(tmp_path).write_bytes(content)
    before = _unreadable_count()
    log = RecordingLog()
    gate = _gate(tmp_path, log)
    assert gate.globally_paused
    refusal = gate.refusal("simB")
    assert refusal is not None and refusal[0] is ErrorCode.INTAKE_PAUSED
    assert "intake state file intake.json unreadable" in refusal[1] and "fail closed" in refusal[1]
    assert log.names("error") == ["intake_state_unreadable"]
    assert _unreadable_count() == before + 1
    ok, _ = gate.control(Intake(action="resume"))
    assert ok and gate.refusal("simB") is None
    assert load_pauses(intake_state_path(tmp_path)) == (IntakePauses(), None)


def test_a_failed_write_keeps_a_pause_in_memory_and_never_resumes(tmp_path: Path) -> None:
    """The state dir not writable: a pause still closes intake (not persisted: said so); a
    resume is refused (an OMS restart would close intake again)."""
    gate = _gate(tmp_path)
    gate.control(Intake(action="pause", venue="simA", reason="first"))
    gate.path = tmp_path / "missing-dir" / "intake.json"
    ok, text = gate.control(Intake(action="pause", reason="second"))
    assert not ok and "not persisted" in text and gate.globally_paused
    ok, text = gate.control(Intake(action="resume", venue="simA"))
    assert not ok and "not resumed" in text and gate.refusal("simA") is not None


def test_a_stopped_venue_is_refused_saying_it_is_stopped(tmp_path: Path) -> None:
    """The supervisor's stop file (runtime dir) closes that venue; its removal reopens it."""
    gate = _gate(tmp_path)
    stops = tmp_path / "rt" / "stops.json"
    stops.parent.mkdir()
    stop = OperatorStop("connector.simB", "maintenance", time.time(), "simB")
    write_stops(stops, {"connector.simB": stop})
    assert gate.refusal("simB") == (
        ErrorCode.INTAKE_PAUSED,
        "simB is stopped by an operator (maintenance): its connector is offline until "
        "`tradepulse start connector.simB`",
    )
    assert gate.refusal("simA") is None
    assert gate.venue_text("simB", "reconciled") == "stopped (by operator: maintenance)"
    assert gate.view()["stopped"] == {"simB": "maintenance"}
    write_stops(stops, {})
    assert gate.refusal("simB") is None and gate.venue_text("simB", "reconciled") == "reconciled"


def test_the_stops_file_is_read_once_per_loop_turn(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In the OMS's loop (`next_turn` after each turn) the submits of one turn share one
    look at the stops file (a stat per submit was 2.5 % of the OMS's CPU); a stop written
    during a turn refuses from the next one."""
    gate = _gate(tmp_path)
    stops = tmp_path / "rt" / "stops.json"
    stops.parent.mkdir()
    looks = 0
    real_look = gate.stops._look

    def counting_look() -> None:
        nonlocal looks
        looks += 1
        real_look()

    monkeypatch.setattr(gate.stops, "_look", counting_look)
    gate.next_turn()
    assert all(gate.refusal("simB") is None for _ in range(50))
    assert looks == 1
    write_stops(stops, {"connector.simB": OperatorStop("connector.simB", "m", time.time(), "simB")})
    assert gate.refusal("simB") is None  # this turn's look
    gate.next_turn()
    refused = gate.refusal("simB")
    assert refused is not None and refused[0] is ErrorCode.INTAKE_PAUSED
    assert looks == 2


def test_draining_refuses_as_not_ready(tmp_path: Path) -> None:
    gate = _gate(tmp_path)
    gate.draining = True
    assert gate.refusal("simA") == (ErrorCode.NOT_READY, "the OMS is stopping")


def test_pause_at_start_adds_a_global_pause_and_keeps_venue_pauses(tmp_path: Path) -> None:
    path = intake_state_path(tmp_path)
    save_pauses(path, IntakePauses(venues={"simA": Pause(reason="kept", since=1.0)}))
    pause_at_start(tmp_path)
    pauses, problem = load_pauses(path)
    assert problem is None and pauses.global_pause is not None
    assert pauses.global_pause.reason == STARTED_PAUSED
    assert pauses.venues["simA"].reason == "kept"


_WRITER = """
import sys
from pathlib import Path
from actors.oms.intake_state import IntakePauses, Pause, save_pauses
path, ready = Path(sys.argv[1]), Path(sys.argv[2])
n = 0
while True:
    n += 1
    venues = {f"v{i}": Pause(reason="r" * 200, since=float(n)) for i in range(n % 50)}
    save_pauses(path, IntakePauses(global_pause=Pause(reason=str(n), since=n), venues=venues))
    if n == 20:
        ready.touch()
"""


def test_a_kill_9_in_the_middle_of_saves_leaves_a_whole_file(tmp_path: Path) -> None:
    """A process saving pauses in a loop (files of varying size) is killed with SIGKILL:
    the file loads as one of the states it wrote, never torn (no fail-closed pause)."""
    path, ready = tmp_path / "intake.json", tmp_path / "ready"
    proc = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(path), str(ready)],
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )
    try:
        eventually(ready.exists, 30.0)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait(timeout=10)
    pauses, problem = load_pauses(path)
    assert problem is None
    assert pauses.global_pause is not None and int(pauses.global_pause.reason) >= 20
    assert len(pauses.venues) == int(pauses.global_pause.reason) % 50


def test_pause_at_start_keeps_an_existing_global_pause_and_who_paused(tmp_path: Path) -> None:
    """`run --intake paused` over a global pause an operator left: its reason and `by` stay
    (the desk's incident note is not replaced by "started with --intake paused")."""
    path = intake_state_path(tmp_path)
    kept = Pause(reason="desk halt INC-42", since=1.0, by="alice (uid 1000, pid 1)")
    save_pauses(path, IntakePauses(global_pause=kept))
    pause_at_start(tmp_path)
    assert load_pauses(path) == (IntakePauses(global_pause=kept), None)


def test_an_unreadable_file_is_kept_aside_before_a_resume_replaces_it(tmp_path: Path) -> None:
    """The unreadable content survives as `intake.json.corrupt.<ts>` (logged) when the next
    save replaces it; later saves keep nothing more."""
    path = intake_state_path(tmp_path)
    path.write_bytes(b"{torn by a disk fault")
    log = RecordingLog()
    gate = _gate(tmp_path, log)
    assert gate.control(Intake(action="resume"))[0]
    [aside] = tmp_path.glob("intake.json.corrupt.*")
    assert aside.read_bytes() == b"{torn by a disk fault"
    assert "intake_state_corrupt_kept" in log.names("warning")
    assert gate.control(Intake(action="pause", reason="x"))[0]
    assert len(list(tmp_path.glob("intake.json.corrupt.*"))) == 1


def test_poll_stops_sees_a_stopped_venue_and_unsent_reason_names_why(tmp_path: Path) -> None:
    """`poll_stops` (every 0.1 s in the OMS) returns the venues stopped since the last poll
    (once: the OMS then scans the book for that venue once, not every 0.1 s), logged once;
    `stopped_venues` stays the stopped set; `unsent_reason` then rejects that venue's
    queued orders with the stop's reason, the kill-switch and a closed session taking
    precedence; none once started again."""
    log = RecordingLog()
    gate = _gate(tmp_path, log)
    stops = tmp_path / "rt" / "stops.json"
    stops.parent.mkdir()
    assert gate.poll_stops() == {}
    assert unsent_reason(False, False, gate, "simB") is None
    write_stops(stops, {"connector.simB": OperatorStop("connector.simB", "m", 1.0, "simB")})
    assert gate.poll_stops().keys() == {"simB"} and gate.poll_stops() == {}
    assert gate.stopped_venues == {"simB"}
    assert len(log.events("venue_stop_seen")) == 1
    assert unsent_reason(False, False, gate, "simB") == DROPPED_STOPPED
    assert unsent_reason(False, False, gate, "simA") is None
    assert unsent_reason(True, False, gate, "simB") == DROPPED_UNSENT
    assert unsent_reason(False, True, gate, "simA") == DROPPED_OUT_OF_SESSION
    write_stops(stops, {})
    # started again: the next poll is up to 0.1 s away, but an order intake took meanwhile
    # (intake reads the file) is sent, not rejected as stopped
    assert unsent_reason(False, False, gate, "simB") is None
    assert gate.poll_stops() == {}
    assert unsent_reason(False, False, gate, "simB") is None


def test_a_stop_after_a_start_the_poll_missed_is_seen(tmp_path: Path) -> None:
    """Found by `make test` (test_cancel_before_stop_read): `start` and the next `stop`
    of a connector within one poll (0.1 s); the poll never saw the venue unstopped, and
    a stop was new only for a venue not in `stopped_venues`: the second stop went unseen,
    the link stayed ready, and a cancel went to the exited connector. A stop is new when
    it is not the one seen last."""
    gate = _gate(tmp_path, RecordingLog())
    stops = tmp_path / "rt" / "stops.json"
    stops.parent.mkdir()
    write_stops(stops, {"connector.simB": OperatorStop("connector.simB", "m", 1.0, "simB")})
    assert gate.poll_stops().keys() == {"simB"}
    gate.next_turn()
    write_stops(stops, {})  # `start`, not polled
    write_stops(stops, {"connector.simB": OperatorStop("connector.simB", "m", 2.0, "simB")})
    gate.next_turn()
    assert gate.poll_stops().keys() == {"simB"}  # seen: the link goes DISCONNECTED
    assert gate.poll_stops() == {}


def test_open_at_venue_counts_only_orders_that_reached_the_venue() -> None:
    """What `stop connector.V` checks: live orders at V (not those still at risk or queued
    unsent, not finished ones)."""
    book = OrderBook()
    for coid, venue in (("a1", "simA"), ("a2", "simA"), ("b1", "simB"), ("b2", "simB")):
        msg = SubmitOrder(
            client_order_id=coid, venue=venue, symbol="AAPL", side="BUY", qty=Decimal(10),
            order_type="LIMIT", price=Decimal("95"),
        )  # fmt: skip
        book.submit(msg, 1)
    assert open_at_venue(book) == {}  # all PENDING_RISK
    for coid in ("a1", "a2", "b1", "b2"):
        book.risk_verdict(RiskVerdict(client_order_id=coid, approved=True), 2)
    assert open_at_venue(book) == {}  # all PENDING_SUBMIT: queued, never sent
    book.apply_venue_status("a1", OrderStatus.ACCEPTED, 3)
    book.mark_unknown("a2", "no connector answer", 3)  # it may be at the venue
    book.apply_venue_status("b1", OrderStatus.REJECTED, 3)
    a2 = book.get("a2")
    assert a2 is not None and a2.status is OrderStatus.UNKNOWN
    assert open_at_venue(book) == {"simA": 2}
