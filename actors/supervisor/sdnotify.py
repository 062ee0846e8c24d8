"""systemd's notify protocol for the supervisor (deploy/systemd: `Type=notify`).

The protocol is one datagram of newline-separated `KEY=value` lines to the AF_UNIX socket
named by `$NOTIFY_SOCKET` (a leading '@' names the abstract namespace). No library: it is a
`sendto`. What the supervisor says:

- `READY=1` once every actor is READY (the all-ready point that also starts the demo), with
  a `STATUS=` line;
- `STATUS=` whenever the one-line summary changes (checked every second from the loop):
  "starting: 3/7 actors running", "ready: 2/2 venues up, intake open",
  "kill-switch ENGAGED: <reason>; 2/2 venues up, intake open"; across hosts the core counts
  the venues on edges (up: the link to that edge up and the venue CONNECTED as its
  connector last told the OMS), "ready: 3/4 venues up (2 on edges, link edge-a up,
  edge-b down), intake open", and an edge says whose it is,
  "ready: 1/1 venues up (host group edge-a, link core up)";
- `WATCHDOG=1` from the supervisor's own loop (a timer) at half of `$WATCHDOG_USEC` when
  systemd set it (`WatchdogSec=` in the unit) for this pid: a loop that hangs stops pinging
  and systemd restarts the service;
- `STOPPING=1` when the shutdown begins; `RELOADING=1` and then `READY=1` around a reload
  (`reloading()` / `reloaded()`, for the SIGHUP reload).

Actors must not speak for the supervisor: `from_environ` removes the variables from the
environment before any child is spawned (`NotifyAccess=main` ignores them anyway). A socket
that is gone never fails the system: the datagram is dropped, counted
(`tradepulse_sd_notify_failures_total`) and logged (`sd_notify_failed`, at most once a
minute).
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable, Mapping, MutableMapping
from typing import Any

from actors.runtime import metrics
from actors.runtime.ratelog import LogBudget
from actors.runtime.timers import Timers
from protocol.link_config import CORE

StatusFn = Callable[[], dict[str, Any]]
ReadyHook = Callable[[dict[str, Any]], None]

STATUS_EVERY_S = 1.0  # how often the summary is recomputed (sent only when it changed)
_STATUS_MAX_CHARS = 200
_VARIABLES = ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")


def status_line(status: Mapping[str, Any], *, ready: bool) -> str:
    """The one-line summary systemd shows (`systemctl status tradepulse`)."""
    actors = status.get("actors", [])
    running = sum(a.get("state") == "running" for a in actors)
    if not ready:
        return f"starting: {running}/{len(actors)} actors running"
    venues = status.get("venues", {})
    up = sum(_venue_up(v) for v in venues.values())
    parts = [f"{up}/{len(venues)} venues up{_placement(status)}"]
    if status.get("host_group", CORE) == CORE:  # an edge has no OMS: the core's intake
        parts.append(f"intake {status.get('intake', 'unknown')}")
    stopped = [a["id"] for a in actors if a.get("state") != "running"]
    if stopped:
        parts.append("not running: " + " ".join(stopped))
    ks = status.get("kill_switch", {})
    head = f"kill-switch ENGAGED: {ks.get('reason', '')}" if ks.get("engaged") else "ready"
    line = f"{head}; {', '.join(parts)}" if ks.get("engaged") else f"{head}: {', '.join(parts)}"
    line = " ".join(line.split())  # a newline would start another KEY=value assignment
    return line[:_STATUS_MAX_CHARS]


def _venue_up(row: Mapping[str, Any]) -> bool:
    """CONNECTED as its connector reports it: here, or (a venue on an edge, seen from the
    core) to the OMS, with the link to that edge up."""
    link = row.get("link")
    if row.get("state") == "stopped":  # by an operator (`tradepulse stop`)
        return False
    if isinstance(link, Mapping):
        return link.get("state") == "up" and row.get("venue_state") == "CONNECTED"
    return row.get("state") == "CONNECTED"


def _placement(status: Mapping[str, Any]) -> str:
    """Across hosts: the core, " (2 on edges, link edge-a up, edge-b down)"; an edge,
    " (host group edge-a, link core up)"; one host, ""."""
    group = status.get("host_group", CORE)
    links: Mapping[str, Any] = status.get("links") or {}
    if group != CORE:
        return f" (host group {group}, link {CORE} {links.get(CORE, 'unknown')})"
    remote = [v for v in status.get("venues", {}).values() if isinstance(v.get("link"), Mapping)]
    if not remote:
        return ""
    groups = sorted({str(v.get("host_group")) for v in remote} | set(links))
    states = ", ".join(f"{g} {links.get(g, 'unknown')}" for g in groups)
    on = "1 on an edge" if len(remote) == 1 else f"{len(remote)} on edges"
    return f" ({on}, link {states})"


def socket_address(value: str) -> str:
    """`$NOTIFY_SOCKET` as an AF_UNIX address: '@name' is the abstract '\\0name'."""
    return "\0" + value[1:] if value.startswith("@") else value


def watchdog_interval_s(environ: Mapping[str, str], pid: int) -> float | None:
    """Half of `$WATCHDOG_USEC` if the watchdog is meant for `pid`, else None."""
    usec, for_pid = environ.get("WATCHDOG_USEC", ""), environ.get("WATCHDOG_PID", "")
    if not _whole(usec) or int(usec) == 0:
        return None
    if for_pid and (not _whole(for_pid) or int(for_pid) != pid):
        return None
    return int(usec) / 2e6


def _whole(text: str) -> bool:
    """ASCII digits that `int` takes: "²" is a digit to `isdigit` (int raised ValueError,
    and so did 5000 digits: the supervisor crashed at its start with a traceback)."""
    return text.isascii() and text.isdigit() and len(text) <= 18


class SystemdNotify:
    """The supervisor's side of sd_notify; every method is a no-op without a socket."""

    def __init__(self, address: str | None, watchdog_s: float | None, log: Any) -> None:
        self.address = address
        self.watchdog_s = watchdog_s if address else None
        self.log = log
        self.sent = 0  # datagrams sent (status, tests)
        self._ready = False
        self._last_status = ""
        self._budget = LogBudget(burst=1, window_s=60.0)
        self._sock: socket.socket | None = None
        if address:
            self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)

    @classmethod
    def from_environ(cls, environ: MutableMapping[str, str], log: Any) -> SystemdNotify:
        """Read and remove the systemd variables (children must not inherit them)."""
        value = environ.get("NOTIFY_SOCKET", "")
        watchdog_s = watchdog_interval_s(environ, os.getpid())
        for key in _VARIABLES:
            environ.pop(key, None)
        return cls(socket_address(value) if value else None, watchdog_s, log)

    @classmethod
    def for_loop(cls, timers: Timers, status: StatusFn, log: Any) -> SystemdNotify:
        """From `os.environ`, its timers on the supervisor's loop (`attach`)."""
        notify = cls.from_environ(os.environ, log)
        notify.attach(timers, status)
        return notify

    @property
    def enabled(self) -> bool:
        return self._sock is not None

    def attach(self, timers: Timers, status: StatusFn) -> None:
        """The watchdog ping and the status summary, as timers of the loop."""
        if not self.enabled:
            return
        if self.watchdog_s is not None:
            timers.call_every(self.watchdog_s, self._ping)
        timers.call_every(STATUS_EVERY_S, lambda: self._status_tick(status))
        self.log.info("sd_notify_enabled", watchdog_s=self.watchdog_s)

    def _status_tick(self, status: StatusFn) -> None:
        """The summary is cosmetic: a failure to build it never stops the supervisor."""
        try:
            self.update_status(status())
        except Exception as exc:  # noqa: BLE001 - e.g. an unreadable kill-switch file
            metrics.SD_NOTIFY_FAILURES.inc()
            if (skipped := self._budget.take()) is not None:
                self.log.warning(
                    "sd_notify_failed", error=repr(exc), sent="STATUS", suppressed=skipped
                )

    def _ping(self) -> None:
        self.send("WATCHDOG=1")

    def when_ready(self, hook: ReadyHook | None) -> ReadyHook | None:
        """Wrap the all-ready hook: `READY=1` first, then `hook`."""
        if not self.enabled:
            return hook

        def on_all_ready(status: dict[str, Any]) -> None:
            self.ready(status)
            if hook is not None:
                hook(status)

        return on_all_ready

    def ready(self, status: Mapping[str, Any]) -> None:
        self._ready = True
        self._last_status = status_line(status, ready=True)
        self.send("READY=1", f"STATUS={self._last_status}")

    def update_status(self, status: Mapping[str, Any]) -> None:
        line = status_line(status, ready=self._ready)
        if line != self._last_status:
            self._last_status = line
            self.send(f"STATUS={line}")

    def stopping(self) -> None:
        self.send("STOPPING=1", "STATUS=stopping")

    def reloading(self) -> None:
        """Before a reload applies the config (systemd 252, ExecReload=kill: not waited for)."""
        usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        self._last_status = "reloading"
        self.send("RELOADING=1", "STATUS=reloading", f"MONOTONIC_USEC={usec}")

    def reloaded(self, status: Mapping[str, Any]) -> None:
        """After a reload: `READY=1` if the system was ready before it; during startup (a
        SIGHUP before every actor is READY) only the status: `READY=1` waits for all-ready."""
        if self._ready:
            self.ready(status)
        else:
            self.update_status(status)

    def send(self, *assignments: str) -> bool:
        """One datagram; False (counted, logged at most once a minute) if it failed."""
        if self._sock is None or self.address is None:
            return False
        try:
            self._sock.sendto("\n".join(assignments).encode(), socket.MSG_DONTWAIT, self.address)
        except OSError as exc:
            metrics.SD_NOTIFY_FAILURES.inc()
            if (skipped := self._budget.take()) is not None:
                self.log.warning(
                    "sd_notify_failed", error=str(exc), sent=assignments[0], suppressed=skipped
                )
            return False
        self.sent += 1
        return True

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
