"""The OMS's view of the kill-switch: engaged or not, and asking risk to engage it.

The state file (`actors.risk.killswitch`, polled every `KillSwitchWatcher.POLL_S`) is the
truth; risk's `kill_switch` stream event is only the fast path. A switch the supervisor
engaged or reset while risk was down publishes no event at all. When the switch engages,
orders approved but never sent are not sent now: every venue link drops its queued ones
(`drop_unsent`). The OMS engages it itself on a trade its book cannot account for
(`engage`: asked of risk, again until risk answers).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import partial
from typing import Any, Protocol

from actors.oms.intake import RISK_RETRY_S
from actors.risk import killswitch
from protocol.codec import Envelope
from protocol.config import SystemConfig
from protocol.messages import KillSwitchCommand, Message

# intake as `status` shows it while the switch is engaged: risk refuses every new order,
# whatever else holds intake (an operator pause, a closed window), until an operator resets it
INTAKE_HALTED = "halted: kill-switch engaged"


class _Risk(Protocol):
    def request(
        self, body: Message, callback: Callable[[Envelope | None], None], timeout_s: float
    ) -> str: ...


class _Queue(Protocol):
    def drop_unsent(self) -> None:
        """Reject the queued new orders the host will not send now."""
        ...


class SwitchHost(Protocol):
    """What the follower needs of the OMS (`actors.oms.actor.OmsActor`); `risk` and
    `venues` are read only once the switch is engaged or changes, after setup."""

    @property
    def cfg(self) -> SystemConfig: ...

    @property
    def log(self) -> Any: ...

    @property
    def risk(self) -> _Risk: ...

    @property
    def venues(self) -> Mapping[str, _Queue]: ...

    def call_later(self, delay_s: float, fn: Callable[[], None]) -> None: ...


class KillSwitchFollower:
    def __init__(self, host: SwitchHost) -> None:
        self.host = host
        self._watch = killswitch.KillSwitchWatcher(killswitch.kill_switch_path(host.cfg.state_path))
        state = self._watch.poll(force=True)
        self.engaged = state is not None and state.engaged

    def engage(self, reason: str) -> None:
        """Ask risk to engage; ask again until it answers (it may be restarting)."""
        self.engaged = True
        cmd = KillSwitchCommand(action="engage", reason=reason, source="oms")

        def answered(reply: Envelope | None) -> None:
            if reply is None:
                self.host.log.warning("kill_switch_request_lost", reason=reason)
                self.host.call_later(RISK_RETRY_S, partial(self.engage, reason))

        self.host.risk.request(cmd, answered, self.host.cfg.oms.request_timeout_s)

    def poll(self, *, force: bool = False) -> None:
        """Read the state file if it changed (always with `force`)."""
        state = self._watch.poll(force=force)
        if state is not None and state.engaged != self.engaged:
            self.host.log.info("kill_switch_seen", engaged=state.engaged, via="state_file")
            self._changed(state.engaged)
        if state is not None and self._watch.removed:
            # risk writes it back engaged, if it saw the removal: not if it was down then
            # (a restart read "missing: never engaged"), so it is asked, until it answers
            self.engage(f"{killswitch.STATE_UNREADABLE}: {self._watch.path} removed while running")

    def on_event(self, data: Mapping[str, Any]) -> None:
        """Risk's `kill_switch` stream event."""
        if "engaged" not in data:
            return
        if data["engaged"]:
            self._changed(True)  # at once; a late or stale one is harmless
        else:  # a reset: the state file says (an old event can arrive after a newer
            self.poll(force=True)  # engagement)

    def _changed(self, engaged: bool) -> None:
        """The switch changed. Orders approved but never sent are not sent now."""
        self.engaged = engaged
        if engaged:
            for link in self.host.venues.values():
                link.drop_unsent()
