"""What FIX 4.4 requires of the application messages the simulated venue sends, as a table
(from /work/shared/FIX44_REFERENCE.txt: each message's required fields, and the required
field of a required component: Instrument -> Symbol 55), and the check every test that
sees the simulator's output runs (`problems`, `assert_conforms`)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

Fields = Mapping[int, object]

# MsgType -> tags FIX 4.4 requires in it
REQUIRED: Mapping[str, tuple[int, ...]] = {
    "8": (37, 17, 150, 39, 54, 151, 14, 6, 55),  # ExecutionReport (+ Instrument: Symbol)
    "9": (37, 11, 41, 39, 434),  # OrderCancelReject
    "r": (37, 530, 531),  # OrderMassCancelReport
    "AP": (721, 728, 715, 1, 581, 730, 731, 734),  # PositionReport
    "j": (372, 380),  # BusinessMessageReject
    "3": (45,),  # Reject
}
# MsgType -> tags that message type does not have
NOT_DEFINED: Mapping[str, tuple[int, ...]] = {
    "AP": (912,),  # LastRptRequested is no PositionReport field (TotalNumPosReports 727 is)
}
# Side(54) values FIX 4.4 defines
SIDES = frozenset("123456789ABCDEFG")


def problems(msg_type: str, fields: Fields) -> list[str]:
    """What is wrong with one message of `msg_type` holding `fields` (empty: conforms)."""
    if msg_type not in REQUIRED:
        return [f"MsgType {msg_type} is not in the conformance table"]
    found = [f"required tag {t} missing" for t in REQUIRED[msg_type] if t not in fields]
    found += [f"tag {t} not defined for {msg_type}" for t in NOT_DEFINED.get(msg_type, ())
              if t in fields]  # fmt: skip
    side = fields.get(54)
    if side is not None and str(side) not in SIDES:
        found.append(f"Side(54) {side!r} is no FIX 4.4 Side")
    return found


def assert_conforms(messages: Iterable[tuple[str, Fields]]) -> None:
    for msg_type, fields in messages:
        wrong = problems(msg_type, fields)
        assert not wrong, f"35={msg_type} {dict(fields)}: {wrong}"
