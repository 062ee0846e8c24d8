"""What the venue's FIX shell needs from the actor loop (`actors.runtime.actor.Actor`
provides it)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol


class Loop(Protocol):
    """File descriptors to poll and timers: what the acceptor asks of the loop."""

    def add_fd(self, fd: int, handler: Callable[[], None], events: int = ...) -> None: ...
    def modify_fd(self, fd: int, events: int) -> None: ...
    def remove(self, sock_or_fd: Any) -> None: ...
    def call_later(self, delay_s: float, fn: Callable[[], None]) -> None: ...
