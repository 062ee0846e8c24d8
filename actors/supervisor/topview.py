"""What `tradepulse top` shows: collect a sample of the running system, turn two samples
into a frame, render a frame with rich.

A sample (`Collector.collect`) is the supervisor's `status` reply (actors, venues,
kill-switch, intake, the metrics URL), one scrape of that URL (`topstats`) and, for each
actor pid, its CPU % and RSS read with psutil by this process (CPU over the interval
between two samples; the supervisor's own figure on the first). `build_frame` is pure: two
samples in, typed rows out (also the `--json` output); `render` / `render_text` draw it.
"""

from __future__ import annotations

import io
import time
import urllib.request
from dataclasses import asdict, dataclass, field
from typing import Any

import psutil
from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from actors.supervisor.topstats import Latency, MetricsSample, latency, merge_buckets, parse_metrics
from actors.supervisor.topstats import rate as counter_rate
from protocol.commands import Status
from protocol.config import SystemConfig
from protocol.control import ControlUnavailable, NotTheSupervisor, control_request

# --------------------------------------------------------------------------- samples


@dataclass(frozen=True)
class Usage:
    """One process as psutil sees it from here; None: not known (first look, gone)."""

    cpu_percent: float | None
    rss_bytes: int | None


@dataclass(frozen=True)
class Sample:
    at_s: float  # time.monotonic()
    wall_ts: float  # time.time()
    status: dict[str, Any] | None  # None: no supervisor answered (`error` says why)
    metrics: MetricsSample | None = None  # None: the scrape failed (`metrics_error`)
    usage: dict[int, Usage] = field(default_factory=dict)  # by pid
    error: str = ""
    metrics_error: str = ""
    refused: bool = False  # `error`: the answer came from a process not the supervisor


class Collector:
    """Samples the system of `cfg`; keeps a psutil handle per pid so CPU % covers the time
    since the previous sample."""

    def __init__(self, cfg: SystemConfig, *, timeout_s: float) -> None:
        self._cfg = cfg
        self._timeout_s = timeout_s
        self._procs: dict[int, psutil.Process] = {}

    def collect(self) -> Sample:
        at_s, wall_ts = time.monotonic(), time.time()
        try:
            reply = control_request(self._cfg, Status(), timeout_s=self._timeout_s)
        except ControlUnavailable as exc:
            return Sample(at_s, wall_ts, None, error=str(exc))
        except NotTheSupervisor as exc:  # its answer is not shown
            return Sample(at_s, wall_ts, None, error=str(exc), refused=True)
        if reply.status != "ok":
            return Sample(at_s, wall_ts, None, error=f"status: {reply.reason}")
        status = dict(reply.data)
        metrics, metrics_error = self._scrape(str(status.get("metrics_url") or ""))
        pids = [int(a["pid"]) for a in status.get("actors", []) if a.get("pid")]
        return Sample(at_s, wall_ts, status, metrics, self._usage(pids), "", metrics_error)

    def _scrape(self, url: str) -> tuple[MetricsSample | None, str]:
        if not url.startswith("http://"):
            return None, f"no metrics URL in status ({url!r})"
        try:
            with urllib.request.urlopen(url, timeout=self._timeout_s) as resp:  # loopback
                text = resp.read().decode("utf-8", "replace")
            return parse_metrics(text), ""
        except (OSError, ValueError) as exc:  # refused, timed out, not Prometheus text
            return None, f"{url}: {exc}"

    def _usage(self, pids: list[int]) -> dict[int, Usage]:
        usage: dict[int, Usage] = {}
        for pid in list(self._procs):
            if pid not in pids:
                del self._procs[pid]
        for pid in pids:
            proc = self._procs.get(pid)
            try:
                if proc is None:  # the first cpu_percent only starts the interval
                    proc = self._procs[pid] = psutil.Process(pid)
                    proc.cpu_percent(None)
                    usage[pid] = Usage(None, int(proc.memory_info().rss))
                else:
                    usage[pid] = Usage(proc.cpu_percent(None), int(proc.memory_info().rss))
            except psutil.Error:  # gone between status and now, or not ours to read
                self._procs.pop(pid, None)
        return usage


# --------------------------------------------------------------------------- frames


@dataclass(frozen=True)
class ActorRow:
    id: str
    state: str
    pid: int | None
    restarts: int
    heartbeat_age_s: float | None
    uptime_s: float
    cpu_percent: float | None
    rss_bytes: int | None


@dataclass(frozen=True)
class VenueRow:
    name: str
    session: str  # the supervisor's view: CONNECTED, DISCONNECTED, DOWN, ...
    detail: str
    in_session: bool | None  # inside its trading session (metric); None: not known
    fix: str  # the connector's FIX session state
    link: str  # the OMS's view: reconciled, reconcile_failing: ..., ...
    queue: int | None  # orders waiting in the OMS queue of the venue
    orders_per_s: float | None
    latency: Latency


@dataclass(frozen=True)
class Frame:
    wall_ts: float
    running: bool
    error: str = ""  # why nothing answers (running False)
    last_answer_s: float | None = None  # not running: seconds since the last answer
    supervisor_pid: int | None = None
    uptime_s: float = 0.0
    interval_s: float | None = None  # between the two samples; None: one sample only
    actors: tuple[ActorRow, ...] = ()
    venues: tuple[VenueRow, ...] = ()
    kill_switch: dict[str, Any] = field(default_factory=dict)
    intake: str = ""
    journal: str = ""
    orders_per_s: float | None = None
    fills_per_s: float | None = None
    latency: Latency = Latency()
    metrics_url: str = ""
    metrics_error: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def build_frame(prev: Sample | None, cur: Sample) -> Frame:
    """The frame of `cur`; rates and interval quantiles need `prev` (the last sample that
    had an answer), without it they are "since start" or unknown."""
    if cur.status is None:
        since = None if prev is None else round(cur.wall_ts - prev.wall_ts, 1)
        return Frame(cur.wall_ts, running=False, error=cur.error, last_answer_s=since)
    st = cur.status
    dt = None if prev is None else cur.at_s - prev.at_s
    was = prev.metrics if prev is not None else None
    now = cur.metrics
    actors = tuple(_actor_row(a, cur.usage) for a in st.get("actors", []))
    infos = {a.get("id"): a.get("info") or {} for a in st.get("actors", [])}
    oms = infos.get("oms", {})
    venues = tuple(
        _venue_row(name, v, infos.get(f"connector.{name}", {}), oms, was, now, dt)
        for name, v in (st.get("venues") or {}).items()
    )
    return Frame(
        wall_ts=cur.wall_ts,
        running=True,
        supervisor_pid=st.get("supervisor_pid"),
        uptime_s=float(st.get("uptime_s") or 0.0),
        interval_s=dt,
        actors=actors,
        venues=venues,
        kill_switch=dict(st.get("kill_switch") or {}),
        intake=str(st.get("intake", "unknown")),
        journal=str(oms.get("journal", "")),
        orders_per_s=_rate(_sum(was, "orders"), _sum(now, "orders"), dt),
        fills_per_s=_rate(_sum(was, "fills"), _sum(now, "fills"), dt),
        latency=_latency(was, now, None),
        metrics_url=str(st.get("metrics_url", "")),
        metrics_error=cur.metrics_error,
    )


def _sum(sample: MetricsSample | None, counter: str) -> float | None:
    """A per-venue counter (`orders`, `fills`) over every venue."""
    if sample is None:
        return None
    values: dict[str, float] = getattr(sample, counter)
    return sum(values.values())


def _rate(prev: float | None, cur: float | None, dt: float | None) -> float | None:
    return None if cur is None or dt is None else counter_rate(prev, cur, dt)


def _latency(was: MetricsSample | None, now: MetricsSample | None, venue: str | None) -> Latency:
    if now is None:
        return Latency()
    if venue is not None:  # no acks in the interval: unknown, not quietly since start
        lat = latency(None if was is None else was.latency.get(venue), now.latency.get(venue, {}))
        return Latency() if was is not None and lat.window != "interval" else lat
    before = None if was is None else merge_buckets(was.latency.values())
    return latency(before, merge_buckets(now.latency.values()))


def _actor_row(a: dict[str, Any], usage: dict[int, Usage]) -> ActorRow:
    pid = a.get("pid") or None
    mine = usage.get(pid) if pid else None
    cpu = mine.cpu_percent if mine and mine.cpu_percent is not None else a.get("cpu_percent")
    rss = mine.rss_bytes if mine and mine.rss_bytes else a.get("rss_bytes")
    return ActorRow(
        id=str(a.get("id")),
        state=str(a.get("state")),
        pid=pid,
        restarts=int(a.get("restarts") or 0),
        heartbeat_age_s=a.get("heartbeat_age_s"),
        uptime_s=float(a.get("uptime_s") or 0.0),
        cpu_percent=None if not pid or cpu is None else float(cpu),
        rss_bytes=int(rss) if pid and rss else None,
    )


def _venue_row(
    name: str,
    v: dict[str, Any],
    connector: dict[str, Any],
    oms: dict[str, Any],
    was: MetricsSample | None,
    now: MetricsSample | None,
    dt: float | None,
) -> VenueRow:
    queue = (oms.get("queues") or {}).get(name)
    orders = None if now is None else now.orders.get(name, 0.0)
    prev_orders = None if was is None else was.orders.get(name, 0.0)
    return VenueRow(
        name=name,
        session=str(v.get("state", "")),
        detail=str(v.get("detail", "")),
        in_session=None if now is None else now.in_session.get(name),
        fix=str(connector.get("fix_state", "-")),
        link=str((oms.get("venues") or {}).get(name, "-")),
        queue=None if queue is None else int(queue),
        orders_per_s=_rate(prev_orders, orders, dt),
        latency=_latency(was, now, name),
    )


# --------------------------------------------------------------------------- rendering


def render(frame: Frame) -> RenderableType:
    """The screen: a header (kill-switch, intake, orders, latency), actors, venues."""
    clock = time.strftime("%H:%M:%S", time.localtime(frame.wall_ts))
    if not frame.running:
        seen = "" if frame.last_answer_s is None else f" (last answer {frame.last_answer_s}s ago)"
        return Group(
            Text(f"tradepulse top  {clock}", style="bold"),
            Text(f"NOT RUNNING{seen}: {frame.error}", style="bold red"),
            Text("asking again every interval", style="dim"),
        )
    every = "-" if frame.interval_s is None else f"{frame.interval_s:.1f}s"
    head = Text(
        f"tradepulse top  {clock}  supervisor pid {frame.supervisor_pid}  "
        f"up {_duration(frame.uptime_s)}  interval {every}",
        style="bold",
    )
    return Group(head, _status_line(frame), _orders_line(frame), _actors(frame), _venues(frame))


def render_text(frame: Frame, *, width: int = 120) -> str:
    """The screen as plain text (no colour), `width` columns: tests and non-TTY output."""
    out = io.StringIO()
    console = Console(file=out, width=width, color_system=None, force_terminal=False)
    console.print(render(frame))
    return "".join(line.rstrip() + "\n" for line in out.getvalue().splitlines())


def _status_line(frame: Frame) -> Text:
    ks = frame.kill_switch
    line = Text("kill-switch: ")
    if ks.get("engaged"):
        line.append(f"ENGAGED ({ks.get('source') or '?'}: {ks.get('reason') or ''})", "bold red")
    else:
        line.append("off", "green")
    line.append("   intake: ")
    line.append(frame.intake, "green" if frame.intake == "open" else "bold yellow")
    if frame.journal == "low":  # actors/oms/journal_space.py
        line.append("   journal: LOW (new orders refused)", "bold red")
    return line


def _orders_line(frame: Frame) -> Text:
    lat = frame.latency
    window = {"interval": "last interval", "since start": "since start"}.get(lat.window, "no acks")
    text = (
        f"orders {_per_s(frame.orders_per_s)}/s  fills {_per_s(frame.fills_per_s)}/s  "
        f"submit->ack p50 {_ms(lat.p50_s)} p99 {_ms(lat.p99_s)} ({window})"
    )
    line = Text(text)
    if frame.metrics_error:
        line.append(f"   metrics unavailable: {frame.metrics_error}", "yellow")
    return line


def _actors(frame: Frame) -> Table:
    table = Table(title="actors", title_justify="left", expand=False, box=None, pad_edge=False)
    for name in ("ACTOR", "STATE", "PID", "RESTARTS", "HB AGE", "UPTIME", "CPU%", "RSS"):
        table.add_column(name, justify="left" if name in ("ACTOR", "STATE") else "right")
    for a in frame.actors:
        table.add_row(
            a.id,
            Text(a.state, "green" if a.state == "running" else "bold yellow"),
            str(a.pid or "-"),
            Text(str(a.restarts), "yellow" if a.restarts else ""),
            "-" if a.heartbeat_age_s is None else f"{a.heartbeat_age_s:.2f}s",
            _duration(a.uptime_s),
            "-" if a.cpu_percent is None else f"{a.cpu_percent:.1f}",
            "-" if not a.rss_bytes else f"{a.rss_bytes / 1048576:.1f}M",
        )
    return table


def _venues(frame: Frame) -> Table:
    table = Table(title="venues", title_justify="left", expand=False, box=None, pad_edge=False)
    # the numbers first, never wrapped; the free text (reasons) last, wrapped if it must
    for name in ("VENUE", "SESSION", "HOURS", "FIX", "QUEUE", "ORD/S", "P50", "P99"):
        right = name in ("QUEUE", "ORD/S", "P50", "P99")
        table.add_column(name, justify="right" if right else "left", no_wrap=True)
    table.add_column("OMS LINK", min_width=10)
    table.add_column("DETAIL")
    for v in frame.venues:
        hours = "-" if v.in_session is None else ("in" if v.in_session else "out")
        table.add_row(
            v.name,
            Text(v.session, "green" if v.session == "CONNECTED" else "bold red"),
            hours,
            v.fix,
            "-" if v.queue is None else str(v.queue),
            _per_s(v.orders_per_s),
            _ms(v.latency.p50_s),
            _ms(v.latency.p99_s),
            Text(v.link, "green" if v.link == "reconciled" else "yellow"),
            v.detail,
        )
    return table


def _per_s(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.1f}ms"


def _duration(seconds: float) -> str:
    s = int(seconds)
    if s < 60:
        return f"{seconds:.0f}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


class FrameSequence:
    """Frames of successive samples: each against the last sample that had an answer, but
    the first answer after an outage starts afresh (the supervisor may be a new one, its
    counters restarted), so no rate spans a gap."""

    def __init__(self) -> None:
        self._last: Sample | None = None
        self._gap = False

    def next(self, cur: Sample) -> Frame:
        if cur.status is None:
            self._gap = True
            return build_frame(self._last, cur)
        frame = build_frame(None if self._gap else self._last, cur)
        self._last, self._gap = cur, False
        return frame
