"""What `tradepulse run` needs, checked before a session (`tradepulse preflight`).

Each check returns `Check(name, status, detail)`; nothing here starts, locks or changes
anything the system keeps: dirs are probed (a temp file made and removed at once), not
created; the metrics port is bound and released; venues get a bare TCP connect.

- PASS: `run` will not stop on it. WARN: it will start, but the operator must know (the
  kill-switch is ENGAGED, a state dir `run` cannot make private). FAIL: `run` would refuse
  or the session would not trade (a missing credential, a dir it cannot create, the port
  taken, a venue unreachable, too little disk). SKIP: nothing to check (a venue with an
  embedded simulator, which the supervisor starts itself).
- A supervisor already running on the state dir is a FAIL: preflight is for before a
  session, and `run` would exit 3.
"""

from __future__ import annotations

import fcntl
import os
import socket
import stat
import tempfile
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from actors.link.bridge import check_link_size
from actors.risk import killswitch
from actors.supervisor.failclosed import marker_path
from actors.supervisor.host import check_owner, check_private, runtime_dir_is_shared
from actors.supervisor.restart_policy import placed_on
from protocol import paths
from protocol.ccxt_config import CcxtCfg
from protocol.config import SystemConfig, VenueCfg, check_venue_tls, missing_credentials
from protocol.curve_keys import link_keys
from protocol.exceptions import ConfigError
from protocol.link_config import CORE, edge_groups, tcp_address

Status = Literal["PASS", "WARN", "FAIL", "SKIP"]
# Free disk wanted in the state dir beyond the journal reserve and the FIX message logs'
# caps: room for one session's journal, snapshots and stores.
DISK_MARGIN_BYTES = 256 << 20
CONNECT_TIMEOUT_S = 2.0


@dataclass(frozen=True)
class Check:
    name: str
    status: Status
    detail: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def run_checks(
    cfg: SystemConfig,
    *,
    environ: Mapping[str, str] | None = None,
    connect_timeout_s: float = CONNECT_TIMEOUT_S,
    host_group: str = CORE,
) -> list[Check]:
    """Every check, in the order `run` meets them (the config itself loaded already), for
    the supervisor of `host_group`: its venues, and its end of the link if there is one."""
    local = placed_on(cfg, host_group)  # the venues this supervisor runs
    checks = [*credential_checks(local, environ), *tls_checks(local)]
    checks += [state_dir_check(cfg), supervisor_check(cfg), runtime_dir_check(cfg)]
    checks += [metrics_port_check(cfg), disk_check(cfg)]
    checks += link_checks(cfg, host_group, connect_timeout_s)
    with ThreadPoolExecutor(max_workers=max(1, min(8, len(local.venues)))) as pool:
        checks += pool.map(lambda v: venue_check(v, connect_timeout_s), local.venues)
    checks.append(kill_switch_check(cfg))
    return checks


def link_checks(cfg: SystemConfig, group: str, timeout_s: float) -> list[Check]:
    """This end of the link between hosts (none on a single host): its keys, and the core's
    port free to listen on, or (an edge) the core's endpoint accepting tcp."""
    if not edge_groups(cfg.venues):
        return []
    try:
        keys = link_keys(cfg.link, cfg.venues, group)
    except ConfigError as exc:
        checks = [Check("link_keys", "FAIL", str(exc))]
    else:
        if keys is None:
            checks = [Check("link_keys", "WARN", "allow_plaintext: the link runs without Curve")]
        else:
            peers = ", ".join(sorted(keys.peers.values()))
            checks = [Check("link_keys", "PASS", f"{group}'s key pair; accepts {peers}")]
    try:
        check_link_size(cfg.venues, group)
    except ConfigError as exc:  # (a row only when it fails: `run` refuses it, exit 2)
        checks.append(Check("link_size", "FAIL", str(exc)))
    if group == CORE:
        host, port = tcp_address(cfg.link.bind) or ("", 0)
        problem = port_problem(host, port)
        checks.append(Check("link_bind", "FAIL" if problem else "PASS", problem or cfg.link.bind))
        return checks
    host, port = tcp_address(cfg.link.connect) or ("", 0)
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            pass
    except OSError as exc:
        why = "no answer" if isinstance(exc, TimeoutError) else exc.strerror or exc
        checks.append(Check("link_connect", "FAIL", f"{cfg.link.connect}: {why}"))
    else:
        checks.append(Check("link_connect", "PASS", f"{cfg.link.connect} accepts tcp"))
    return checks


# ------------------------------------------------------------------ config-derived


def credential_checks(cfg: SystemConfig, environ: Mapping[str, str] | None) -> list[Check]:
    """One row per venue that names credential variables; every unset one is listed."""
    missing = missing_credentials(cfg, environ)
    env = os.environ if environ is None else environ
    rows: list[Check] = []
    for venue in cfg.venues:
        named = [var for _, var in venue.credential_vars]
        if not named:
            continue
        prefix = f"venues[{venue.name}]."
        unset = [f"{var} ({field})" for field, var in missing if field.startswith(prefix)]
        if unset:  # set, but holding an SOH: a paste error no FIX field can send
            soh = any("\x01" in env.get(v, "") for f, v in missing if f.startswith(prefix))
            why = "not set (or empty, or holds an SOH): " if soh else "not set: "
            rows.append(Check(f"credentials:{venue.name}", "FAIL", why + ", ".join(unset)))
        else:
            rows.append(Check(f"credentials:{venue.name}", "PASS", ", ".join(named) + " set"))
    return rows or [Check("credentials", "PASS", "no venue names a credential variable")]


def tls_checks(cfg: SystemConfig) -> list[Check]:
    """One row per venue that uses TLS (or whose simulator serves it)."""
    rows: list[Check] = []
    for venue in cfg.venues:
        if venue.tls is None and not (venue.sim and venue.sim.tls_cert_file):
            continue
        try:
            check_venue_tls(venue)
        except ConfigError as exc:
            rows.append(Check(f"tls:{venue.name}", "FAIL", str(exc)))
        else:
            rows.append(Check(f"tls:{venue.name}", "PASS", "certificate files load"))
    return rows or [Check("tls", "PASS", "no venue uses TLS")]


# ------------------------------------------------------------------ dirs


def _lstat(path: Path) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None


def _creatable(path: Path) -> str | None:
    """Why `path` (absent) could not be created by `mkdir -p`; None if it could."""
    parent = path.parent
    while _lstat(parent) is None and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        return f"cannot create {path}: {parent} is not a directory"
    if not os.access(parent, os.W_OK | os.X_OK):
        return f"cannot create {path}: {parent} is not writable by uid {os.geteuid()}"
    return None


def _writable(path: Path) -> str | None:
    """Why no file can be created in the dir `path`; None if one can (made and removed)."""
    try:
        fd, probe = tempfile.mkstemp(prefix=".preflight-", dir=path)
    except OSError as exc:
        return f"{path} is not writable: {exc.strerror}"
    os.close(fd)
    os.unlink(probe)
    return None


def state_dir_check(cfg: SystemConfig) -> Check:
    path = cfg.state_path
    st = _lstat(path)
    if st is None:
        problem = _creatable(path)
        if problem:
            return Check("state_dir", "FAIL", problem)
        return Check("state_dir", "PASS", f"{path} will be created (0700)")
    if not stat.S_ISDIR(st.st_mode):
        return Check("state_dir", "FAIL", f"{path} is not a directory")
    problem = _writable(path)
    if problem:
        return Check("state_dir", "FAIL", problem)
    try:
        check_owner(st, path, "system.state_dir")
    except ConfigError as exc:
        return Check("state_dir", "FAIL", str(exc))
    if st.st_uid != os.geteuid():
        mode = stat.S_IMODE(st.st_mode)
        if st.st_uid == 0 and paths.is_shared_mode(st.st_mode):  # a volume mounted for root
            detail = f"{path} writable, root's (mode {mode:o}): what run creates in it is private"
            return Check("state_dir", "PASS", detail)
        detail = f"{path} is owned by uid {st.st_uid}: run cannot make it private (0700)"
        return Check("state_dir", "WARN", detail)
    mode = stat.S_IMODE(st.st_mode)
    tighten = "" if mode == 0o700 else f" (mode {mode:o}: run makes it 0700)"
    return Check("state_dir", "PASS", f"{path} writable{tighten}")


def supervisor_check(cfg: SystemConfig) -> Check:
    """FAIL while a supervisor holds the state dir's lock (probed with a shared,
    non-blocking flock released at once; the lock file is never created here)."""
    lock = paths.supervisor_lock(cfg.state_path)
    try:
        fd = os.open(lock, os.O_RDONLY | os.O_CLOEXEC)
    except (FileNotFoundError, NotADirectoryError):
        return Check("supervisor", "PASS", "none running on this state dir")
    except OSError as exc:
        return Check("supervisor", "WARN", f"cannot probe {lock}: {exc.strerror}")
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        pid = os.read(fd, 32).decode(errors="replace").strip() or "?"
        detail = f"running (pid {pid}) on {cfg.state_path}: run would exit 3; stop it first"
        return Check("supervisor", "FAIL", detail)
    finally:
        os.close(fd)  # releases the probe's shared lock
    return Check("supervisor", "PASS", "none running on this state dir")


def runtime_dir_check(cfg: SystemConfig) -> Check:
    """What `prepare_runtime_dir` refuses (exit 2), without creating or changing anything:
    the configured dir, and in a shared one our private `SHARED_SUBDIR`."""
    base = cfg.runtime_base
    st = _lstat(base)
    if st is None:
        problem = _creatable(base)
        if problem:
            return Check("runtime_dir", "FAIL", problem)
        return Check("runtime_dir", "PASS", f"{base} will be created (0700)")
    try:
        shared = runtime_dir_is_shared(st, base)
    except ConfigError as exc:
        return Check("runtime_dir", "FAIL", str(exc))
    path = base / paths.SHARED_SUBDIR if shared else base
    own = _lstat(path)
    if own is None:  # shared, and our dir not made yet
        problem = _writable(base)
        if problem:
            return Check("runtime_dir", "FAIL", problem)
        mode = stat.S_IMODE(st.st_mode)
        detail = f"{base} is shared (uid {st.st_uid}, mode {mode:o}): {path} will be created"
        return Check("runtime_dir", "PASS", detail + " (0700)")
    if stat.S_ISLNK(own.st_mode):
        return Check("runtime_dir", "FAIL", f"{path} is a symlink; run refuses it")
    if not stat.S_ISDIR(own.st_mode):
        return Check("runtime_dir", "FAIL", f"{path} is not a directory")
    try:
        check_private(own, path, "system.runtime_dir")
    except ConfigError as exc:
        return Check("runtime_dir", "FAIL", str(exc))
    metrics = paths.metrics_dir(path)
    if _lstat(metrics) is not None and not (metrics / paths.METRICS_MARKER).is_file():
        detail = f"{metrics} was not created by tradepulse; run refuses it (left by an older build?"
        detail += " rm -r it)"
        return Check("runtime_dir", "FAIL", detail)
    problem = _writable(path)
    if problem:
        return Check("runtime_dir", "FAIL", problem)
    return Check("runtime_dir", "PASS", f"{path} private and writable")


# ------------------------------------------------------------------ network


def port_problem(host: str, port: int) -> str | None:
    """Why the metrics server could not listen on host:port (bound as it binds, with
    SO_REUSEADDR, then released); None if it can. Port 0 always can."""
    try:
        family, kind, proto, _, addr = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except socket.gaierror as exc:
        return f"cannot resolve {host}: {exc.strerror}"
    with socket.socket(family, kind, proto) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(addr)
            sock.listen(1)
        except OSError as exc:
            return f"cannot listen on {host}:{port}: {exc.strerror}"
    return None


def metrics_port_check(cfg: SystemConfig) -> Check:
    host, port = cfg.metrics.host, cfg.metrics.port
    if port == 0:
        return Check("metrics_port", "PASS", f"{host}:0 (any free port)")
    problem = port_problem(host, port)
    if problem:
        return Check("metrics_port", "FAIL", f"{problem} (metrics.port)")
    return Check("metrics_port", "PASS", f"{host}:{port} free")


def venue_check(venue: VenueCfg, timeout_s: float = CONNECT_TIMEOUT_S) -> Check:
    """A bare TCP connect to the venue (no TLS handshake, no Logon); for a ccxt venue, to
    its exchange's REST host (`ccxt_rest_address`)."""
    name = f"venue:{venue.name}"
    if venue.sim is not None:
        return Check(name, "SKIP", "embedded simulator, skipped (the supervisor starts it)")
    host, port = venue.host, venue.port
    if venue.ccxt is not None:
        try:
            host, port = ccxt_rest_address(venue.ccxt)
        except ValueError as exc:
            return Check(name, "FAIL", str(exc))
    where = f"{host}:{port}"
    if port == 0:
        return Check(name, "FAIL", "port 0 and no [venues.sim]: nothing to connect to")
    started = time.monotonic()
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            pass
    except TimeoutError:
        return Check(name, "FAIL", f"{where}: no answer within {timeout_s:g} s")
    except ConnectionRefusedError:
        return Check(name, "FAIL", f"{where}: connection refused")
    except socket.gaierror as exc:
        return Check(name, "FAIL", f"cannot resolve {host}: {exc.strerror}")
    except OSError as exc:
        return Check(name, "FAIL", f"{where}: {exc.strerror or exc}")
    ms = (time.monotonic() - started) * 1000
    tls = " (TLS not negotiated)" if venue.tls is not None else ""
    return Check(name, "PASS", f"{where} accepts TCP in {ms:.0f} ms{tls}")


def ccxt_rest_address(ccfg: CcxtCfg) -> tuple[str, int]:
    """(host, port) of a ccxt venue's REST API: its `base_url`, else the exchange class's
    own public API URL (its testnet's with `sandbox`), as the connector's exchange has it.
    ValueError naming why there is none (an unknown exchange id, no testnet)."""
    url = ccfg.base_url
    if not url:
        import ccxt  # the REST classes (~0.5 s): only a ccxt venue's preflight pays it

        cls = getattr(ccxt, ccfg.exchange, None)
        if cls is None:
            raise ValueError(f"ccxt has no exchange {ccfg.exchange!r}")
        exchange = cls()
        if ccfg.sandbox:
            try:
                exchange.set_sandbox_mode(True)
            except Exception:  # noqa: BLE001 - NotSupported, or TypeError with no urls['test']
                raise ValueError(f"{ccfg.exchange} has no sandbox (testnet) in ccxt") from None
        api = exchange.urls.get("api")
        urls = [api] if isinstance(api, str) else list((api or {}).values())
        public = api.get("public") if isinstance(api, dict) else None
        url = next((u for u in [public, *urls] if isinstance(u, str) and "://" in u), "")
        if not url:
            raise ValueError(f"ccxt's {ccfg.exchange} names no REST URL")
    parts = urlsplit(url)
    default = 443 if parts.scheme in ("https", "wss") else 80
    return parts.hostname or "", parts.port or default


# ------------------------------------------------------------------ disk, kill-switch


def disk_needed(cfg: SystemConfig) -> int:
    """Free bytes wanted in the state dir: the sum of `disk_parts`."""
    return sum(disk_parts(cfg).values())


def disk_parts(cfg: SystemConfig) -> dict[str, int]:
    """What the state dir must hold, each part at its cap: the OMS journal reserve, every
    FIX message log (twice for a simulated venue, which keeps its own side's), the log
    files (`logging.file`), the kept post-mortem bundles and one bundle being staged (each
    staged file up to 1.5 x `postmortem_max_bytes`: postmortem.Bundle, plus the packed
    archive; `postmortem_on_kill_switch`), and `DISK_MARGIN_BYTES`."""
    fix_logs = 0
    for venue in (v for v in cfg.venues if v.kind == "fix"):  # a ccxt venue keeps none
        cap = venue.message_log.max_file_bytes * venue.message_log.keep_files
        fix_logs += cap * (2 if venue.sim is not None else 1)
    parts = {"journal reserve": cfg.oms.journal_reserve_bytes, "FIX message logs": fix_logs}
    log = cfg.logging
    if log.file:
        parts["log files"] = log.max_file_bytes * log.keep_files
    if log.postmortem_on_kill_switch:
        parts["kept bundles"] = log.postmortem_max_bytes * log.postmortem_keep
        staged_files = 2 + sum(v.kind == "fix" for v in cfg.venues)  # log, journal, FIX logs
        parts["bundle staging"] = log.postmortem_max_bytes * (3 * staged_files // 2 + 1)
    parts["margin"] = DISK_MARGIN_BYTES
    return parts


def _free_bytes(path: Path) -> int:
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def disk_check(cfg: SystemConfig, free_bytes: Callable[[Path], int] = _free_bytes) -> Check:
    path = cfg.state_path
    while _lstat(path) is None and path != path.parent:
        path = path.parent  # the dir it will be created in
    try:
        free = free_bytes(path)
    except OSError as exc:
        return Check("disk", "FAIL", f"cannot stat the file system of {path}: {exc.strerror}")
    parts = disk_parts(cfg)
    need = sum(parts.values())
    detail = f"{_mib(free)} free in {path}, need {_mib(need)}"
    detail += " (" + " + ".join(f"{name} {_mib(n)}" for name, n in parts.items()) + ")"
    return Check("disk", "PASS" if free >= need else "FAIL", detail)


def _mib(n: int) -> str:
    return f"{n / (1 << 20):,.0f} MiB"


def kill_switch_check(cfg: SystemConfig) -> Check:
    """ENGAGED (or an unclean exit that engages it at start) is a WARN with the reason; a
    state dir this user cannot enter is a FAIL naming it (the rest of the table stands)."""
    try:
        return _kill_switch_check(cfg)
    except OSError as exc:
        where = exc.filename or cfg.state_path
        detail = f"cannot read {where}: {exc.strerror or exc}: run preflight as the service user"
        return Check("kill_switch", "FAIL", detail)


def _kill_switch_check(cfg: SystemConfig) -> Check:
    path = paths.kill_switch_path(cfg.state_path)
    marker = marker_path(cfg.state_path)
    if marker.exists():
        detail = "an unclean critical exit is recorded: run engages it before any actor starts"
        return Check("kill_switch", "WARN", detail)
    if not path.is_file():
        return Check("kill_switch", "PASS", "off (no kill-switch file yet)")
    state = killswitch.load(path)
    if not state.engaged:
        return Check("kill_switch", "PASS", "off")
    since = datetime.fromtimestamp(state.ts_ns / 1e9, UTC).isoformat(timespec="seconds")
    detail = f"ENGAGED since {since} by {state.source}: {state.reason}"
    return Check("kill_switch", "WARN", detail + " (new orders refused until reset)")
