"""The post-mortem bundle: one private .tar.gz with what an incident review needs.

    MANIFEST.json        every file's size and sha256, the time range, host, version, what
                         is missing and why, what was truncated
    config.json          the effective config, secrets redacted (`redact`), and the names
                         of the credential variables (never their values)
    kill_switch.json     the kill-switch state and its history
    status.json          `tradepulse status` (only while the system runs)
    metrics.txt          the supervisor's /metrics (only while the system runs)
    logs/tradepulse.log  the log lines of the range (actors/supervisor/logfiles.py)
    journal.jsonl        the OMS journal records of the range, one JSON object a line
    fix/<venue>.log      each FIX venue's messages of the range, readable (`fix log`)

It reads the state dir itself, so it works whether the system runs or not; what it cannot
get (status and metrics of a stopped system, a venue that never connected) is listed in
the manifest's `missing`. Its size is bounded (`max_bytes`, the content before
compression): the small files always go in; the rest share the remaining budget, each
cut to its newest lines if it must be (listed in `truncated`).
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import json
import os
import shutil
import socket
import tarfile
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

from actors.connector.fix import msgview
from actors.connector.fix.msglog import log_files as fix_log_files
from actors.connector.fix.msglog import redact as redact_fix
from actors.connector.fix.msglog import utc_iso
from actors.risk import killswitch
from actors.runtime.when import parse_when_s
from actors.supervisor.logfiles import lines_between, utc_stamp
from protocol import paths
from protocol.config import SystemConfig
from protocol.control import ControlUnavailable, NotTheSupervisor, control_request
from protocol.exceptions import TradePulseError
from protocol.redact import NOT_SECRET_SUFFIXES, SECRET_FIX_TAGS, SECRET_WORDS, redact

DEFAULT_MAX_BYTES = 200 << 20
MANIFEST = "MANIFEST.json"
_SMALL = ("config.json", "kill_switch.json", "status.json", "metrics.txt")
_MANIFEST_RESERVE = 64 << 10


def parse_time(text: str, now_s: float) -> float:
    """Seconds since the epoch from "now", an age (`90s`, `10m`, `2h`, `1d`: that long
    ago) or an ISO 8601 time (UTC unless it says otherwise); ValueError."""
    if text.strip().lower() == "now":
        return now_s
    return parse_when_s(text, now_s)


def record_time(record: dict[str, Any]) -> float | None:
    """When a journal record happened (its `ts_ns`, or its order's last update)."""
    data = record.get("data")
    if not isinstance(data, dict):
        return None
    ts_ns = data.get("ts_ns")
    order = data.get("order")
    if not isinstance(ts_ns, int) and isinstance(order, dict):
        ts_ns = order.get("ts_updated_ns") or order.get("ts_created_ns")
    return ts_ns / 1e9 if isinstance(ts_ns, int) and ts_ns > 0 else None


def fair_shares(sizes: dict[str, int], budget: int) -> dict[str, int]:
    """Bytes kept of each file: all of the small ones, an equal share of what is left
    for the rest (water-filling: a file under its share gives the rest to the others)."""
    kept: dict[str, int] = {}
    remaining = max(budget, 0)
    ordered = sorted(sizes.items(), key=lambda kv: kv[1])
    for i, (name, size) in enumerate(ordered):
        share = remaining // (len(ordered) - i)
        kept[name] = min(size, share)
        remaining -= kept[name]
    return kept


class Bundle:
    """The files of one bundle, staged in a private directory before they are packed. A
    file never keeps more than its newest `cap_bytes` or so (no file may take more of the
    bundle anyway), so staging a day of logs needs at most 1.5 x `cap_bytes` of disk a file;
    `original_bytes` counts what each file had before."""

    def __init__(self, staging: Path, cap_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.staging = staging
        self.cap_bytes = cap_bytes
        self.names: list[str] = []
        self.missing: list[dict[str, str]] = []
        self.original_bytes: dict[str, int] = {}

    def add_json(self, name: str, data: Any) -> None:
        self.add_lines(name, [json.dumps(data, indent=2, default=str).encode()])

    def add_lines(self, name: str, lines: Iterable[bytes]) -> int:
        """Stream `lines` into `name`; returns how many there were."""
        path = self.staging / name
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        count = total = 0
        fh = open(path, "wb")  # noqa: SIM115 - reopened when its head is cut off
        try:
            for line in lines:
                fh.write(line + b"\n")
                count += 1
                total += len(line) + 1
                if fh.tell() > self.cap_bytes + self.cap_bytes // 2:
                    fh.close()
                    _keep_tail(path, self.cap_bytes)
                    fh = open(path, "ab")  # noqa: SIM115 - closed in finally
        finally:
            fh.close()
        if count:
            self.names.append(name)
            self.original_bytes[name] = total
        else:  # nothing: the manifest's `missing` says why
            path.unlink()
        return count

    def lack(self, item: str, why: str) -> None:
        self.missing.append({"item": item, "why": why})


def collect(
    cfg: SystemConfig, bundle: Bundle, since_s: float, until_s: float, timeout_s: float = 5.0
) -> bool:
    """Stage every part of the bundle; returns whether the system was running (it had
    `timeout_s` to answer `status`, and as long for /metrics)."""
    bundle.add_json("config.json", _config_part(cfg))
    try:
        bundle.add_json(
            "kill_switch.json", killswitch.load(paths.kill_switch_path(cfg.state_path)).model_dump()
        )
    except (OSError, TradePulseError) as exc:
        bundle.lack("kill_switch.json", f"unreadable: {exc}")
    running = _live_parts(cfg, bundle, timeout_s)
    parts: list[tuple[str, Callable[[], None]]] = [
        ("logs/tradepulse.log", lambda: _log_part(cfg, bundle, since_s, until_s)),
        ("journal.jsonl", lambda: _journal_part(cfg, bundle, since_s, until_s)),
    ]
    for venue in (v for v in cfg.venues if v.kind == "fix"):  # a ccxt venue has no FIX log
        name = venue.name
        parts.append((f"fix/{name}.log", partial(_fix_part, cfg, bundle, name, since_s, until_s)))
    for item, part in parts:
        try:
            part()
        except (OSError, ValueError, TradePulseError) as exc:  # one part lost, not the bundle
            bundle.lack(item, f"unreadable: {type(exc).__name__}: {exc}")
    return running


def _log_part(cfg: SystemConfig, bundle: Bundle, since_s: float, until_s: float) -> None:
    log_dir = paths.logs_dir(cfg.state_path)
    if not log_dir.is_dir():
        bundle.lack("logs/tradepulse.log", f"no log files ({log_dir}); logging.file is off?")
    elif bundle.add_lines("logs/tradepulse.log", lines_between(log_dir, since_s, until_s)) == 0:
        bundle.lack("logs/tradepulse.log", "no log line in the range")


def _config_part(cfg: SystemConfig) -> dict[str, Any]:
    credentials = {
        f"venues[{v.name}].{key}": var for v in cfg.venues for key, var in v.credential_vars
    }
    return {
        "config": redact(cfg.model_dump(mode="json")),
        "credential_variables": credentials,
        "redaction_rule": (
            f"fields named *{'*, *'.join(SECRET_WORDS)}* (not *{', *'.join(NOT_SECRET_SUFFIXES)}),"
            f" logon fields {', '.join(sorted(SECRET_FIX_TAGS, key=int))}"
        ),
    }


def _live_parts(cfg: SystemConfig, bundle: Bundle, timeout_s: float) -> bool:
    """status.json and metrics.txt from the running system."""
    try:
        reply = control_request(cfg, "status", {}, timeout_s=timeout_s)
    except (ControlUnavailable, NotTheSupervisor) as exc:  # the latter's answer not kept
        why = f"system not running or not answering ({exc})"
        bundle.lack("status.json", why)
        bundle.lack("metrics.txt", why)
        return False
    bundle.add_json("status.json", reply.model_dump(exclude={"type"}))
    url = str(reply.data.get("metrics_url") or "")
    if not url:
        bundle.lack("metrics.txt", "the supervisor serves no metrics URL")
        return True
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as resp:  # noqa: S310 - our own /metrics
            bundle.add_lines("metrics.txt", [resp.read()])
    except OSError as exc:
        bundle.lack("metrics.txt", f"GET {url} failed: {exc}")
    return True


def _journal_part(cfg: SystemConfig, bundle: Bundle, since_s: float, until_s: float) -> None:
    directory = paths.oms_dir(cfg.state_path)
    if not directory.is_dir():
        bundle.lack("journal.jsonl", f"no OMS journal ({directory})")
        return
    from actors.oms.journal import inspect as inspect_journal

    problems: list[str] = []

    def lines() -> Iterator[bytes]:
        try:
            for item in inspect_journal(directory):
                yield from _journal_line(item, since_s, until_s)
        except (OSError, TradePulseError) as exc:  # JournalCorrupt: what came before it
            problems.append(f"{type(exc).__name__}: {exc}")

    if bundle.add_lines("journal.jsonl", lines()) == 0 and not problems:
        bundle.lack("journal.jsonl", "no journal record in the range")
    for problem in problems:
        bundle.lack("journal.jsonl", f"read stopped: {problem}")


def _journal_line(item: dict[str, Any], since_s: float, until_s: float) -> Iterator[bytes]:
    where = {"file": Path(str(item["file"])).name, "offset": item["offset"]}
    if item["kind"] == "snapshot":  # the whole book: its size, not its content
        data = item["data"]
        summary = {k: (len(v) if isinstance(v, list | dict) else v) for k, v in data.items()}
        yield json.dumps({"ts": None, "kind": "snapshot", **where, "summary": summary}).encode()
        return
    ts = record_time(item)
    if ts is not None and not since_s <= ts <= until_s:
        return
    stamp = utc_stamp(ts) if ts is not None else None
    line = {"ts": stamp, "kind": item["kind"], **where, "data": item["data"]}
    yield json.dumps(line, default=str).encode()


def _fix_part(
    cfg: SystemConfig, bundle: Bundle, venue: str, since_s: float, until_s: float
) -> None:
    directory = paths.fix_message_log_dir(cfg.state_path, venue)
    name = f"fix/{venue}.log"
    if not fix_log_files(directory):
        bundle.lack(name, f"no FIX message log for venue {venue} (it never connected)")
        return
    until = utc_iso(until_s)
    found = (  # redacted again: a log written before a tag joined the log's own set
        msgview.describe(e._replace(raw=redact_fix(e.raw, SECRET_FIX_TAGS))).encode(
            "utf-8", "replace"
        )
        for e in msgview.entries(directory, utc_iso(since_s))
        if e.ts <= until
    )
    if bundle.add_lines(name, found) == 0:
        bundle.lack(name, "no FIX message in the range")


def pack(bundle: Bundle, out: Path, max_bytes: int, manifest: dict[str, Any]) -> dict[str, Any]:
    """Write `out` (0600, atomically): the manifest, then every staged file, each within
    its share of `max_bytes` (its newest lines kept). Returns the manifest."""
    sizes = {n: (bundle.staging / n).stat().st_size for n in bundle.names}
    original = {n: max(bundle.original_bytes.get(n, 0), sizes[n]) for n in bundle.names}
    small = sum(s for n, s in sizes.items() if n in _SMALL)
    rest = {n: s for n, s in sizes.items() if n not in _SMALL}
    kept = {n: s for n, s in sizes.items() if n in _SMALL}
    kept |= fair_shares(rest, max_bytes - _MANIFEST_RESERVE - small)
    files: list[dict[str, Any]] = []
    truncated: list[dict[str, Any]] = []
    starts: dict[str, int] = {}
    for name in bundle.names:
        start = _tail_start(bundle.staging / name, sizes[name] - kept[name])
        starts[name] = start
        length = sizes[name] - start
        files.append(
            {"name": name, "bytes": length, "sha256": _sha256(bundle.staging / name, start)}
        )
        if length < original[name]:
            truncated.append({"name": name, "original_bytes": original[name], "kept_bytes": length})
    manifest |= {"files": files, "truncated": truncated, "missing": bundle.missing}
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        with os.fdopen(fd, "wb") as raw, tarfile.open(fileobj=raw, mode="w:gz") as tar:
            _add(tar, MANIFEST, json.dumps(manifest, indent=2).encode())
            for name, start in starts.items():
                with open(bundle.staging / name, "rb") as fh:
                    fh.seek(start)
                    tar.addfile(_info(name, sizes[name] - start), fh)
        os.replace(tmp, out)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return manifest


def write_bundle(
    cfg: SystemConfig,
    out: Path,
    since_s: float,
    until_s: float,
    max_bytes: int,
    *,
    timeout_s: float = 5.0,
    config_source: str = "the config file, read when the bundle was written",
) -> dict[str, Any]:
    """Collect and pack one bundle into `out`; returns its manifest (OSError if it cannot
    be written). `config_source` says in the manifest where `cfg` (config.json) came from."""
    out = out.resolve()
    staging = Path(tempfile.mkdtemp(prefix=".postmortem-", dir=out.parent))
    try:
        bundle = Bundle(staging, max_bytes)
        running = collect(cfg, bundle, since_s, until_s, timeout_s)
        manifest: dict[str, Any] = {
            "created_at": utc_stamp(time.time()),
            "range": {"since": utc_stamp(since_s), "until": utc_stamp(until_s)},
            "host": socket.gethostname(),
            "version": _version(),
            "state_dir": str(cfg.state_path),
            "system_running": running,
            "config_source": config_source,
            "max_bytes": max_bytes,
        }
        return pack(bundle, out, max_bytes, manifest)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _keep_tail(path: Path, keep_bytes: int) -> None:
    """Cut `path` down to its newest whole lines within `keep_bytes`."""
    start = _tail_start(path, path.stat().st_size - keep_bytes)
    tmp = path.with_name(path.name + ".tail")
    with open(path, "rb") as src, open(tmp, "wb") as dst:
        src.seek(start)
        shutil.copyfileobj(src, dst, 1 << 20)
    os.replace(tmp, path)


def _tail_start(path: Path, cut: int) -> int:
    """Where the newest lines start once `cut` bytes must go: the line after byte `cut`."""
    if cut <= 0:
        return 0
    with open(path, "rb") as fh:
        fh.seek(cut)
        fh.readline()  # the rest of the line cut through
        return fh.tell()


def _sha256(path: Path, start: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        fh.seek(start)
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _info(name: str, size: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = size, 0o600, int(time.time())
    return info


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    import io

    tar.addfile(_info(name, len(data)), io.BytesIO(data))


def _version() -> str:
    try:
        return importlib.metadata.version("tradepulse-live")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"
