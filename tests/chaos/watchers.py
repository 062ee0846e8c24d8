"""Threads that watch a chaos run beside the load: `Monitor` samples the kill-switch and
reaps orphans re-parented to the harness; `Reconciler` runs operator reconciliation
passes under load.
"""

from __future__ import annotations

import threading
import time

from tests.chaos.system import ChaosSystem, reap_foreign_zombies


class Monitor(threading.Thread):
    """Samples status every `interval_s`: kill-switch state over time; reaps orphans
    re-parented to us after a supervisor kill."""

    def __init__(self, system: ChaosSystem, keep: set[int], interval_s: float = 0.25) -> None:
        super().__init__(name="monitor", daemon=True)
        self.system, self.keep, self.interval_s = system, keep, interval_s
        self.kill_switch: list[tuple[int, bool]] = []
        self.errors: list[str] = []
        self._stop_evt = threading.Event()

    def stop(self) -> None:
        self._stop_evt.set()

    def run(self) -> None:
        while not self._stop_evt.wait(self.interval_s):
            try:
                st = self.system.try_status(timeout_s=1.0)
                if st is not None:
                    self.kill_switch.append(
                        (time.time_ns(), bool(st["kill_switch"].get("engaged")))
                    )
                reap_foreign_zombies(self.keep)
            except Exception as exc:  # noqa: BLE001 - keep sampling; the error is reported
                self.errors.append(f"monitor: {type(exc).__name__}: {exc}")


class Reconciler(threading.Thread):
    """`reconcile --venue V` (applied) for each venue in turn every `every_s`; counts the
    passes answered (a pass asked while the OMS or supervisor is down just is not)."""

    def __init__(self, system: ChaosSystem, venues: tuple[str, ...], every_s: float) -> None:
        super().__init__(name="reconciler", daemon=True)
        self.system, self.venues, self.every_s = system, venues, every_s
        self.passes = 0
        self.skipped_in_flight = 0
        self._stop_evt = threading.Event()

    def stop(self) -> None:
        self._stop_evt.set()

    def run(self) -> None:
        n = 0
        while not self._stop_evt.wait(self.every_s):
            venue = self.venues[n % len(self.venues)]
            n += 1
            try:
                reply = self.system.control("reconcile", timeout_s=10.0, venue=venue, dry_run=False)
            except Exception:  # noqa: BLE001 - the supervisor may be down (a fault): next time
                continue
            if reply.status == "ok":
                self.passes += 1
                self.skipped_in_flight += int(reply.data.get("summary", {}).get("skipped", 0))
