"""What a FIX session (`actors.connector.fix.session.FixSession`) tells its caller: its
states and the events `receive()` and `tick()` return, and the logger it writes to."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Protocol

import simplefix

State = Literal["disconnected", "logon_sent", "active", "logout_sent", "closed"]


@dataclass(frozen=True, slots=True)
class AppMessage:
    """An application message, delivered once and in sequence order."""

    msg_type: str
    msg: simplefix.FixMessage
    poss_dup: bool
    seq: int


@dataclass(frozen=True, slots=True)
class LoggedOn:
    reset: bool  # both sides started again at 1


@dataclass(frozen=True, slots=True)
class LoggedOut:
    text: str


@dataclass(frozen=True, slots=True)
class Disconnect:
    """The caller must write what `data_to_send()` holds, close the socket, then call
    `connection_lost()`."""

    reason: str


@dataclass(frozen=True, slots=True)
class SessionRejectSent:
    ref_seq: int
    reason: int  # SessionRejectReason (373)
    text: str


@dataclass(frozen=True, slots=True)
class SessionRejectReceived:
    """The peer rejected our message `ref_seq` (RefMsgType, SessionRejectReason, Text and
    RefTagID as the Reject gave them)."""

    ref_seq: int
    ref_msg_type: str | None
    reason: int | None
    text: str
    ref_tag: int | None = None


SessionEvent = (
    AppMessage | LoggedOn | LoggedOut | Disconnect | SessionRejectSent | SessionRejectReceived
)


class Logger(Protocol):
    def debug(self, event: str, **kw: Any) -> Any: ...
    def info(self, event: str, **kw: Any) -> Any: ...
    def warning(self, event: str, **kw: Any) -> Any: ...
    def error(self, event: str, **kw: Any) -> Any: ...
