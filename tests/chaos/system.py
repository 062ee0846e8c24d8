"""The system under chaos: the real supervisor (restartable after kill -9), its log captured
to a file, and health as the nemesis and the checker see it (the venues' ground truth and
the OMS journal are read with `tests.system_ops`, as every system test reads them).

Built on `tests.helpers.SystemUnderTest`. The differences: the supervisor's stdout goes to
a file (a soak logs millions of lines) and only the events the harness reads are kept in
memory; `kill_supervisor()` + `warm_restart()` replace the supervisor on the same state dir.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any

import psutil

from actors.oms.kill_switch_follower import INTAKE_HALTED
from protocol.control import ControlUnavailable
from protocol.link_config import CORE
from tests.chaos.xview import exchange_view
from tests.helpers import SystemUnderTest, eventually, kill_and_reap, process_alive
from tests.system_ops import inspect_venue

# log events the harness keeps in memory (everything goes to the log file)
KEPT_EVENTS = frozenset(
    {
        "reconcile_skipped_in_flight",
        "supervisor_started",
        "system_ready",
        "actor_spawned",
        "actor_ready",
        "actor_exited",
        "actor_hung",
        "actor_gave_up",
        "actor_restarting",
        "actor_start_timeout",
        "venue_state",
        "warm_start",
        "cold_start",
        "kill_switch",
        "unmatched_fill",
        "bad_message",
        "reconcile_escalation",
        "exec_refused",
        "order_resubmitted",
        "order_adopted",
        "request_failed",
        "control_failed",
        "supervisor_gone",
        "loop_shutdown",
        "reconnect",
        "position_divergence",
        "heartbeat_missing",
        "kill_switch_requested",  # the heartbeat's (its reason says why)
        "trade_bust_unknown_fill",  # a venue's bust the OMS escalated, not applied
        # the link between the core and an edge (topology core+edge)
        "link_up",
        "link_down",
        "core_lost",
        "core_lost_cancels_done",
    }
)
_MAX_KEPT = 500_000


class ChaosSystem(SystemUnderTest):
    """One deployment (state dir) whose supervisor may be killed and started again."""

    def __init__(
        self,
        root: Path,
        overrides: dict[str, Any],
        log_path: Path,
        env: Mapping[str, str] | None = None,
        *,
        host_group: str = CORE,
        launcher: Sequence[str] = (),
    ) -> None:
        root.mkdir(parents=True, exist_ok=True)
        run_args = [] if host_group == CORE else ["--host-group", host_group]
        super().__init__(
            overrides=overrides, root=root, env=env, launcher=launcher, run_args=run_args
        )
        self.host_group = host_group
        # the edge supervisor (topology core+edge), attached to the core's ChaosSystem: its
        # status joins the core's (`try_status`), its venues' truth is read there
        self.edge: ChaosSystem | None = None
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self.log_path = log_path
        self._log: IO[str] = log_path.open("a", encoding="utf-8")
        self._log_lock = threading.Lock()
        self.level_counts: Counter[tuple[str, str, str]] = Counter()  # (level, actor, event)
        self.protocol_error_lines = 0  # `bad_message` events and lines naming ProtocolError
        self.supervisor_pids: list[int] = []
        self.venues = [v.name for v in self.cfg.venues]  # the whole deployment's
        self.local_venues = [v.name for v in self.cfg.venues if v.host_group == host_group]
        self.leftovers: list[int] = []  # old actors still alive 10 s after a supervisor kill

    # ------------------------------------------------------------------ log capture

    def _on_stdout(self, line: str) -> None:
        with self._log_lock:
            if not self._log.closed:
                self._log.write(line + "\n")
        try:
            obj = json.loads(line)
        except ValueError:
            obj = None
        if not isinstance(obj, dict):
            if "ProtocolError" in line:
                self.protocol_error_lines += 1
            return
        event, level = str(obj.get("event", "")), str(obj.get("level", ""))
        if level in ("warning", "error", "critical") or event in KEPT_EVENTS:
            self.level_counts[(level, str(obj.get("actor", "")), event)] += 1
        if event == "bad_message" or "ProtocolError" in line:
            self.protocol_error_lines += 1  # a frame some actor could not decode
        if event in KEPT_EVENTS:
            obj["_ts_ns"] = time.time_ns()
            with self._cond:
                if len(self.lines) < _MAX_KEPT:
                    self.lines.append(obj)
                self._cond.notify_all()

    def _on_stderr(self, line: str) -> None:
        with self._log_lock:
            if not self._log.closed:
                self._log.write("[stderr] " + line + "\n")
        with self._cond:
            if len(self.stderr_lines) < 10_000:
                self.stderr_lines.append(line)

    def close_log(self) -> None:
        with self._log_lock:
            self._log.close()

    # ------------------------------------------------------------------ lifecycle

    def start(self, *, wait_ready: bool = True, timeout_s: float = 60.0) -> ChaosSystem:
        super().start(wait_ready=False)
        assert self.proc is not None
        self.supervisor_pids.append(self.proc.pid)
        if wait_ready:
            self.wait_healthy(timeout_s)
        return self

    def tree_pids(self) -> set[int]:
        """The supervisor and every process under it."""
        if self.proc is None or self.proc.poll() is not None:
            return set()
        try:
            sup = psutil.Process(self.proc.pid)
            return {sup.pid, *(p.pid for p in sup.children(recursive=True))}
        except psutil.NoSuchProcess:
            return set()

    def kill_supervisor(self) -> set[int]:
        """kill -9 of the supervisor alone; returns the pids that were under it."""
        assert self.proc is not None
        under = self.tree_pids() - {self.proc.pid}
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)
        return under

    def warm_restart(self, old_children: set[int], timeout_s: float = 60.0) -> None:
        """Start `supervisor.py run` again on the same state dir once the old incarnation's
        actors are gone (they die with their supervisor; stragglers past 10 s are killed
        and show up as orphans in the checker through `leftovers`)."""
        deadline = time.monotonic() + 10.0
        while any(process_alive(p) for p in old_children) and time.monotonic() < deadline:
            time.sleep(0.02)
        self.leftovers += [p for p in old_children if process_alive(p)]
        if self.leftovers:
            kill_and_reap(self.leftovers)
        self._join_pumps()
        self.proc = None
        self._threads = []
        self.start(wait_ready=True, timeout_s=timeout_s)

    # ------------------------------------------------------------------ health

    def healthy(self, st: dict[str, Any]) -> bool:
        """Every actor running, every venue CONNECTED and reconciled, intake open (or halted
        by the kill-switch, which the nemesis may engage on purpose); with an edge attached,
        the edge too (its actors running, the link up both ways). An edge's own status: its
        actors running, its venues CONNECTED, the link to the core up."""
        if not st["actors"] or any(a["state"] != "running" or not a["pid"] for a in st["actors"]):
            return False
        if self.host_group != CORE:
            return _link_up(st, CORE) and all(
                st["venues"].get(v, {}).get("state") == "CONNECTED" for v in self.local_venues
            )
        if self.edge is not None:  # the edge healthy by its own rule, the core's link up too
            edge = st.get("edge")
            if not (edge and self.edge.healthy(edge) and _link_up(st, self.edge.host_group)):
                return False
        if any(st["venues"].get(v, {}).get("state") != "CONNECTED" for v in self.venues):
            return False
        oms = next(a for a in st["actors"] if a["id"] == "oms")
        info = oms.get("info") or {}
        if any((info.get("venues") or {}).get(v) != "reconciled" for v in self.venues):
            return False
        return info.get("intake") in ("open", INTAKE_HALTED)

    def try_status(self, timeout_s: float = 2.0) -> dict[str, Any] | None:
        """This supervisor's status (None: not answering). With an edge attached, the edge's
        joins it: its actors as `<group>/<actor>` rows, its venues' rows in place of the
        core's `remote (link ...)` ones, and the edge's whole status under `edge` (None
        while the edge supervisor does not answer)."""
        st = self._own_status(timeout_s)
        if st is None or self.edge is None:
            return st
        edge = self.edge._own_status(timeout_s)
        st["edge"] = edge
        if edge is not None:
            group = self.edge.host_group
            st["actors"] = [
                *st["actors"],
                *({**a, "id": f"{group}/{a['id']}"} for a in edge["actors"]),
            ]
            st["venues"] = {**st["venues"], **edge["venues"]}
        return st

    def _own_status(self, timeout_s: float) -> dict[str, Any] | None:
        if self.proc is None or self.proc.poll() is not None:
            return None
        try:
            return self.status(timeout_s=timeout_s)
        except (ControlUnavailable, AssertionError):
            return None

    def side_of(self, venue: str) -> ChaosSystem:
        """The supervisor that runs `venue` (its simulator's control socket, its state)."""
        if self.edge is not None and venue in self.edge.local_venues:
            return self.edge
        return self

    def wait_healthy(self, timeout_s: float) -> dict[str, Any]:
        def ok() -> dict[str, Any] | None:
            self._assert_running()
            st = self.try_status()
            return st if st is not None and self.healthy(st) else None

        return eventually(ok, timeout_s, interval_s=0.05, message=self.describe)

    # ------------------------------------------------------------------ ground truth

    def ground_truth(self, venue: str) -> dict[str, Any]:
        """The venue's own record of every order and its positions, in the checker's shape:
        a FIX venue simulator's inspection as it is, a simulated exchange's through
        `xview.exchange_view` (read-only CLIs, safe while the venues run)."""
        side = self.side_of(venue)
        if side is not self:
            return side.ground_truth(venue)
        vcfg = self.cfg.venue(venue)
        if vcfg.ccxt is None:
            return inspect_venue(self, venue)
        res = self.run_tool(
            ["-m", "actors.exchangesim", "inspect", *self.cli_args(), "--venue", venue, "--json"]
        )
        if res.returncode != 0:
            raise RuntimeError(f"exchangesim inspect {venue}: exit {res.returncode}: {res.stderr}")
        baseline = {a: str(q) for a, q in vcfg.ccxt.position_baseline.items()}
        return exchange_view(json.loads(res.stdout), baseline, list(vcfg.ccxt.symbols))

    def journal_records(self) -> list[dict[str, Any]]:
        res = self.cli("journal", "inspect", "--json", timeout_s=120.0)
        if res.returncode != 0:
            raise RuntimeError(f"journal inspect failed ({res.returncode}): {res.stderr[-2000:]}")
        return [json.loads(line) for line in res.stdout.splitlines() if line.strip()]

    # ------------------------------------------------------------------ processes

    def ours(self) -> list[psutil.Process]:
        """Every live process that belongs to this deployment (by its runtime dir in the
        environment or the root in its command line), wherever it was re-parented."""
        me, root = os.getpid(), str(self.root)
        found = []
        for p in psutil.process_iter(["pid", "cmdline", "status"]):
            if p.pid == me or p.info["status"] == psutil.STATUS_ZOMBIE:
                continue
            try:
                cmd = " ".join(p.info["cmdline"] or ())
                env = p.environ() if root not in cmd else {}
            except psutil.Error:
                continue
            if root in cmd or root in env.get("PROMETHEUS_MULTIPROC_DIR", ""):
                found.append(p)
        return found

    def orphans(self, load_pids: set[int]) -> list[str]:
        """Processes of this deployment that are not under the current supervisor."""
        tree = self.tree_pids()
        out = []
        for p in self.ours():
            if p.pid in tree or p.pid in load_pids:
                continue
            try:
                out.append(f"{p.pid} ppid={p.ppid()} {' '.join(p.cmdline())[:100]}")
            except psutil.Error:
                continue
        return out

    def zombies(self) -> list[str]:
        """Zombies under the supervisor (it must reap its children)."""
        out = []
        for pid in self.tree_pids():
            try:
                p = psutil.Process(pid)
                if p.status() == psutil.STATUS_ZOMBIE:
                    out.append(f"{pid} ppid={p.ppid()}")
            except psutil.Error:
                continue
        return out


def _link_up(st: dict[str, Any], peer: str) -> bool:
    """The link actor's row says the link to `peer` is up."""
    row = next((a for a in st["actors"] if a["id"] == "link"), None)
    info = (row or {}).get("info") or {}
    return bool(((info.get("link") or {}).get(peer) or {}).get("state") == "up")


def reap_foreign_zombies(keep: set[int]) -> int:
    """Reap our zombie children except `keep` (Popen objects we wait on ourselves): orphans
    re-parented to this process (a child subreaper) after a supervisor kill -9."""
    reaped = 0
    for child in psutil.Process().children():
        if child.pid in keep:
            continue
        try:
            if child.status() == psutil.STATUS_ZOMBIE:
                os.waitpid(child.pid, os.WNOHANG)
                reaped += 1
        except (psutil.Error, ChildProcessError):
            pass
    return reaped
