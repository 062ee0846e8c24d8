"""Operator commands on the wire (`protocol.commands`): one typed model per command inside a
`ControlRequest`; an unknown command or a bad argument is a ProtocolError that says what was
wrong, at the sender or at decode, never a KeyError."""

from __future__ import annotations

from typing import Any

import msgpack
import pytest

from actors.venuesim.faults import FAULT_KINDS
from protocol.codec import Sender, decode, encode
from protocol.commands import (
    COMMAND_NAMES,
    Intake,
    KillSwitch,
    Reconcile,
    Restart,
    Shutdown,
    Start,
    Status,
    Stop,
    VenueFault,
    parse_command,
)
from protocol.exceptions import ProtocolError
from protocol.messages import ControlRequest

EVERY_COMMAND = [
    Status(),
    Shutdown(),
    Restart(actor="connector.simA", force=True, reason="mass cancel unanswered"),
    KillSwitch(action="engage", reason="desk halt"),
    Intake(action="pause", reason="desk break"),
    Intake(action="pause", venue="simA", reason="venue incident"),
    Stop(actor="connector.simA", reason="venue maintenance"),
    Start(actor="connector.simA"),
    Reconcile(venue="simA", dry_run=False),
    VenueFault(command="hang", value=0.8),
    VenueFault(command="duplicate_exec", value="on"),
    VenueFault(command="drop_session"),
]


@pytest.mark.parametrize("command", EVERY_COMMAND, ids=lambda c: c.command)
def test_every_command_round_trips_in_a_control_request(command: Any) -> None:
    """The typed command comes back as the same model with the same arguments."""
    env = Sender("ctl-test", 0).envelope(ControlRequest(command=command))
    back = decode(encode(env)).body
    assert isinstance(back, ControlRequest)
    assert type(back.command) is type(command) and back.command == command


def test_parse_command_builds_the_model_by_name() -> None:
    assert parse_command("restart", {"actor": "oms"}) == Restart(actor="oms")
    assert parse_command("reconcile", {"venue": "simA"}).dry_run is True  # type: ignore[union-attr]
    assert parse_command("reject_next", {"value": 2}) == VenueFault(command="reject_next", value=2)
    assert parse_command("status") == Status()


@pytest.mark.parametrize(
    ("name", "args", "says"),
    [
        ("no-such", {}, "unknown command 'no-such'; commands: status, shutdown, restart"),
        ("restart", {}, "restart: 'actor': Field required"),
        ("restart", {"actor": "oms", "bogus": 1}, "'bogus': Extra inputs are not permitted"),
        ("kill-switch", {"action": "explode"}, "kill-switch: 'action': Input should be"),
        ("intake", {"action": "stop"}, "intake: 'action'"),
        ("intake", {"action": "pause"}, "a pause needs a reason"),
        ("intake", {"action": "pause", "reason": "  "}, "a pause needs a reason"),
        ("kill-switch", {"action": "reset"}, "a reset needs a reason (--reason)"),
        ("kill-switch", {"action": "reset", "reason": " "}, "a reset needs a reason"),
        ("kill-switch", {"action": "reset", "reason": "\r\n"}, "a reset needs a reason"),
        ("stop", {}, "stop: 'actor': Field required"),
    ],
)
def test_an_unknown_command_or_bad_argument_is_a_protocol_error(
    name: str, args: dict[str, Any], says: str
) -> None:
    with pytest.raises(ProtocolError) as info:
        parse_command(name, args)
    assert says in str(info.value)


def test_a_reason_with_control_characters_is_kept_printable_never_refused() -> None:
    """A pasted newline split the REASON column of `status` over lines, and an escape
    sequence in a reason (`\x1b[2J`) drove the terminal of every operator who ran `status`:
    a line break is a space, any other control character U+FFFD; an engage still goes."""
    engage = parse_command("kill-switch", {"action": "engage", "reason": "feed\ndown\x1b[2J\x9b"})
    assert engage == KillSwitch(action="engage", reason="feed down\ufffd[2J\ufffd")
    pause = parse_command("intake", {"action": "pause", "reason": "a\tb"})
    assert pause.reason == "a b"  # type: ignore[union-attr]


def test_decoding_a_request_with_an_unknown_command_is_a_protocol_error() -> None:
    """What an older or newer CLI might send: decode names the field, never a KeyError."""
    env = Sender("ctl-test", 0).envelope(ControlRequest(command=Status()))
    obj = msgpack.unpackb(encode(env)[0], raw=False)
    obj["body"]["command"] = {"command": "no-such", "venue": "simA"}
    with pytest.raises(ProtocolError, match="control_request: field 'command'"):
        decode([msgpack.packb(obj, use_bin_type=True)])


def test_every_fault_kind_is_a_command_name() -> None:
    """The venue reads its fault kinds from the wire's FaultKind (one list); each is a
    command name the control request accepts."""
    assert set(FAULT_KINDS) <= set(COMMAND_NAMES)
