"""The heartbeat's compared times, kept across its restarts: `<runtime>/heartbeat_compared.json`
(`protocol.paths.heartbeat_compared_path`).

`tradepulse_position_compared_timestamp_seconds{venue}` (`gauges`) says when the venue's
positions were last compared with the OMS's, or since when a venue never compared has been
watched. It used to start at each incarnation's start, so every restart of the heartbeat (a
crash, an operator's `restart`) gave a venue never compared another 300 s before
PositionsNotCompared, and a heartbeat restarted often enough never alerted (review revcmp).
Now an incarnation starts each venue's gauge at the time this file holds:

- no file: the first incarnation of this supervisor run (the supervisor removes the file at
  start, as it does the metrics: one run's worth, like `operator_stops.json`): now;
- a venue the file does not name (added to the config since): now; one it names that the
  config no longer has: left out of the next save;
- a time after now (the wall clock stepped back since it was saved): now;
- an unreadable file (bad JSON, a wrong shape, an I/O error): every venue at 0, "not
  compared for as long as anyone knows", logged `position_compared_state_unreadable`. Fail
  closed: the alert fires at its next evaluation for a venue not compared by then. Every
  venue is asked at the first beat, so a healthy one is compared a beat or two after the
  start, before a warning's 30 s group_wait notifies anyone, while a venue that was not
  being compared alerts at once. "now" would grant every venue 300 s again, silently: the
  defect this file removes. The file is rewritten at the start, so this happens once.

Writes: the whole file, replaced at once (`durable.write_atomic`: a kill -9 at any moment
leaves the old or the new file, never a torn one), not fsynced (a machine crash ends the run,
and a fresh run removes the file anyway). Written at the start, when the venues differ from
the file's, and when a venue's time is `SAVE_LAG_S` or more away from the file's: a venue
compared (or excused) every beat costs one write per `SAVE_LAG_S`, not one per beat. After a
crash a venue's time is at most that much older than its gauge was (the alert comes at most
that much early, never late); a stop (`on_stop`: an operator's restart) saves them exactly.
A write that fails is logged `position_compared_save_failed` and tried again `SAVE_LAG_S`
later (at a beat).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Annotated, Literal

import structlog
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from actors.runtime.durable import remove_stale_temps, write_atomic

SAVE_LAG_S = 30.0  # a tenth of the alert's 300 s (and the default venue interval)

UnixTime = Annotated[float, Field(strict=True, ge=0, allow_inf_nan=False)]


class ComparedTimes(BaseModel):
    """The file's content: venue -> unix time (compared, excused, or first watched)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: Literal[1] = 1
    venues: dict[str, UnixTime] = {}


def load_times(
    path: Path, venues: Iterable[str], now: float
) -> tuple[dict[str, float], str | None]:
    """Each venue's time to start its gauge at, and what is wrong with an unreadable file
    (then every venue at 0: the module docstring)."""
    remove_stale_temps(path)  # a write cut short by a crash (one writer: this actor)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return dict.fromkeys(venues, now), None
    except OSError as exc:
        problem = f"{type(exc).__name__}: {exc}"
    else:
        try:
            saved = ComparedTimes.model_validate_json(raw).venues
        except ValidationError as exc:
            problem = f"{exc.error_count()} error(s): {exc.errors()[0]['msg']}"
        else:
            return {v: min(saved.get(v, now), now) for v in venues}, None
    return dict.fromkeys(venues, 0.0), problem


class ComparedFile:
    """The file as one incarnation writes it: what it last wrote, and when to write again."""

    def __init__(
        self,
        path: Path,
        log: structlog.typing.FilteringBoundLogger,
        lag_s: float = SAVE_LAG_S,
        clock: Callable[[], float] = time.monotonic,  # when to retry a failed write
    ) -> None:
        self.path, self.lag_s = path, lag_s
        self._log, self._clock = log, clock
        self._saved: dict[str, float] | None = None  # None: not written (yet, or the last failed)
        self._retry_at = 0.0  # monotonic: after a failed write, not before
        self.writes = 0  # attempted, failed ones included

    def changed(self, times: Mapping[str, float]) -> None:
        """A beat or a venue's time moved: write if due (the module docstring)."""
        saved = self._saved
        if saved is None:
            due = self._clock() >= self._retry_at
        else:
            due = saved.keys() != times.keys() or any(
                abs(t - saved[v]) >= self.lag_s for v, t in times.items()
            )
        if due:
            self.save(times)

    def flush(self, times: Mapping[str, float]) -> None:
        """Write what the file does not hold yet, exactly (at a stop)."""
        if self._saved != times:
            self.save(times)

    def save(self, times: Mapping[str, float]) -> None:
        snapshot = dict(times)
        self.writes += 1
        try:
            write_atomic(
                self.path, ComparedTimes(venues=snapshot).model_dump_json().encode(), durable=False
            )
        except OSError as exc:
            self._saved, self._retry_at = None, self._clock() + self.lag_s
            self._log.error("position_compared_save_failed", path=str(self.path), error=str(exc))
        else:
            self._saved = snapshot
