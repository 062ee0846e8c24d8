"""KillSwitchFollower (actors/oms/kill_switch_follower.py): the OMS's view of the switch.
The state file is the truth (a change the supervisor made while risk was down is seen by
polling it); risk's stream event engages at once but a reset is taken only from the file;
an engagement drops every venue's queued never-sent orders; an engage the OMS asks of risk
is asked again until risk answers."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import structlog

from actors.oms.intake import RISK_RETRY_S
from actors.oms.kill_switch_follower import KillSwitchFollower, SwitchHost
from actors.risk import killswitch
from protocol.codec import Envelope
from protocol.messages import KillSwitchCommand, Message


class _Link:
    def __init__(self) -> None:
        self.drops = 0

    def drop_unsent(self) -> None:
        self.drops += 1


class _Risk:
    def __init__(self) -> None:
        self.asked: list[tuple[Message, Callable[[Envelope | None], None], float]] = []

    def request(
        self, body: Message, callback: Callable[[Envelope | None], None], timeout_s: float
    ) -> str:
        self.asked.append((body, callback, timeout_s))
        return str(len(self.asked))


class _Host:
    def __init__(self, state_path: Path) -> None:
        self.cfg = SimpleNamespace(
            state_path=state_path, oms=SimpleNamespace(request_timeout_s=2.0)
        )
        self.log = structlog.get_logger()
        self.risk = _Risk()
        self.venues = {"simA": _Link(), "simB": _Link()}
        self.later: list[tuple[float, Callable[[], None]]] = []

    def call_later(self, delay_s: float, fn: Callable[[], None]) -> None:
        self.later.append((delay_s, fn))

    def follower(self) -> KillSwitchFollower:
        return KillSwitchFollower(cast(SwitchHost, self))

    def drops(self) -> list[int]:
        return [link.drops for link in self.venues.values()]


def _path(tmp_path: Path) -> Path:
    return killswitch.kill_switch_path(tmp_path)


def test_the_state_file_at_start_and_its_changes_are_followed(tmp_path: Path) -> None:
    """Engaged at start by the file (no drop then: the queues are empty); a reset written to
    the file is seen at the next poll, and a new engagement there drops every venue's
    never-sent orders once."""
    killswitch.engage(_path(tmp_path), "earlier", "operator")
    host = _Host(tmp_path)
    ks = host.follower()
    assert ks.engaged and host.drops() == [0, 0]
    killswitch.reset(_path(tmp_path), "all clear", "desk")
    ks.poll()
    assert not ks.engaged and host.drops() == [0, 0]
    ks.poll()  # the file unchanged: nothing happens
    killswitch.engage(_path(tmp_path), "supervisor", "supervisor")
    ks.poll()
    assert ks.engaged and host.drops() == [1, 1]
    ks.poll(force=True)  # read again, no change: no second drop
    assert host.drops() == [1, 1]


def test_risks_event_engages_at_once_but_a_reset_is_taken_from_the_file(tmp_path: Path) -> None:
    """An `engaged` event engages and drops at once (before the file is read); a reset event
    while the file still says engaged (a stale event) changes nothing; an event without
    `engaged` is ignored."""
    host = _Host(tmp_path)
    ks = host.follower()
    assert not ks.engaged
    ks.on_event({"action": "status"})
    assert not ks.engaged and host.drops() == [0, 0]
    ks.on_event({"engaged": True})
    assert ks.engaged and host.drops() == [1, 1]
    killswitch.engage(_path(tmp_path), "risk", "risk")
    ks.on_event({"engaged": False})  # stale: the file says engaged
    assert ks.engaged and host.drops() == [1, 1]
    killswitch.reset(_path(tmp_path), "all clear", "desk")
    ks.on_event({"engaged": False})
    assert not ks.engaged


def test_an_engage_is_asked_of_risk_again_until_it_answers(tmp_path: Path) -> None:
    """`engage` counts as engaged at once and sends an engage command to risk; a lost answer
    schedules the same request after RISK_RETRY_S; an answer schedules nothing."""
    host = _Host(tmp_path)
    ks = host.follower()
    ks.engage("unmatched_fill")
    assert ks.engaged
    ((body, answered, timeout_s),) = host.risk.asked
    assert body == KillSwitchCommand(action="engage", reason="unmatched_fill", source="oms")
    assert timeout_s == 2.0
    answered(None)  # risk restarting: no answer
    assert [delay for delay, _ in host.later] == [RISK_RETRY_S]
    host.later[0][1]()
    assert len(host.risk.asked) == 2 and host.risk.asked[1][0] == body
    host.risk.asked[1][1](cast(Any, object()))  # answered
    assert len(host.later) == 1


def test_a_switch_file_removed_is_asked_of_risk_to_engage_until_it_answers(
    tmp_path: Path,
) -> None:
    """Engaged; the file is removed while risk is down (stopped, restarting): only risk
    writes it back (`killswitch.engage_removed`), so the restarted risk read it missing,
    "never engaged", and nobody wrote it again: the next start of the OMS read it the same.
    The OMS, which saw the file, reads the removal ENGAGED and asks risk to engage, again
    until risk answers: risk writes the file back engaged once it is up."""
    killswitch.engage(_path(tmp_path), "desk halt", "operator")
    host = _Host(tmp_path)
    ks = host.follower()
    _path(tmp_path).unlink()
    ks.poll()
    assert ks.engaged
    [(cmd, answered, _timeout)] = host.risk.asked
    assert isinstance(cmd, KillSwitchCommand) and cmd.action == "engage"
    assert "removed while running" in (cmd.reason or "")
    answered(None)  # risk down: asked again
    assert [delay for delay, _fn in host.later] == [RISK_RETRY_S]
    ks.poll()  # still missing: asked once, not at every poll
    assert len(host.risk.asked) == 1
