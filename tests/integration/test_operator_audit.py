"""Who ran what, and reloading the config, through the real system: the operator CLI's
commands are recorded with the kernel's uid / user / pid (never the client's word) in the
log and the audit file and the kill-switch history; `reload` and SIGHUP apply live changes
(risk refuses an order over a new limit without a restart) and refuse a bad file or a
restart-only change, with nothing applied; operator restarts count with reason="operator".
"""

from __future__ import annotations

import json
import os
import pwd
import signal
import stat
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import zmq

from actors.supervisor.audit import parse_loginuid, user_name
from protocol.codec import Sender, decode, encode
from protocol.commands import OperatorId, Reload
from protocol.exceptions import RiskRejected
from protocol.messages import ControlReply, ControlRequest
from protocol.paths import audit_log_path
from tests.helpers import SystemUnderTest, eventually, make_config, to_toml
from tests.system_ops import client, submit_when_open

pytestmark = pytest.mark.integration

VENUES = ("simA",)
USER = pwd.getpwuid(os.getuid()).pw_name


@pytest.fixture(scope="module")
def sut() -> Iterator[SystemUnderTest]:
    """One system for the module (each test leaves the config file as it found it)."""
    system = SystemUnderTest(venues=VENUES)
    try:
        yield system.start()
    finally:
        system.destroy()


def write_config(sut: SystemUnderTest, **overrides: Any) -> None:
    sut.config_path.write_text(to_toml(make_config(venues=VENUES, overrides=overrides)))


@pytest.fixture
def config_restored(sut: SystemUnderTest) -> Iterator[None]:
    original = sut.config_path.read_text()
    yield
    sut.config_path.write_text(original)
    mark = sut.mark()
    reply = sut.control("reload", reason="test teardown")
    assert reply.status == "ok", reply
    # the reload's last line (after its config_applied / config_reloaded) read before the
    # next test's mark: the reply can come before it, and the next test waits for (or
    # asserts the absence of) those same events since its mark
    sut.wait_event("operator_command", since=mark, command="reload", reason="test teardown")


def audit_records(sut: SystemUnderTest) -> list[dict[str, Any]]:
    path = audit_log_path(sut.state_dir)
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


def audited(sut: SystemUnderTest, **match: Any) -> dict[str, Any] | None:
    for record in reversed(audit_records(sut)):
        if all(record.get(k) == v for k, v in match.items()):
            return record
    return None


def cli_json(sut: SystemUnderTest, *args: str) -> tuple[int, dict[str, Any]]:
    out = sut.cli(*args, "--json")
    return out.returncode, json.loads(out.stdout)


def test_a_cli_restart_records_the_real_uid_and_user_and_counts_as_an_operator_restart(
    sut: SystemUnderTest,
) -> None:
    """`tradepulse restart` run as a separate process (not a child of the supervisor): the
    audit file (0600) and the `operator_command` line carry this uid, its user name and the
    CLI's pid; the restart moves tradepulse_actor_restarts_total{reason="operator"}."""
    mark = sut.mark()
    epoch = sut.epoch_of("heartbeat")
    reason = f"audit-{uuid.uuid4().hex[:6]}"
    code, reply = cli_json(sut, "restart", "heartbeat", "--reason", reason)
    assert code == 0, reply
    record = audited(sut, command="restart", reason=reason)
    assert record is not None, audit_records(sut)
    assert (record["uid"], record["user"], record["result"]) == (os.getuid(), USER, "ok")
    assert isinstance(record["pid"], int)
    assert record["pid"] not in (os.getpid(), sut.proc.pid if sut.proc else None)
    assert record["args"]["actor"] == "heartbeat"
    # the login uid (pam_loginuid, kept across sudo): the CLI inherits this process's
    login = parse_loginuid(Path("/proc/self/loginuid").read_text())
    assert (record["login_uid"], record["login_user"]) == (
        login,
        "" if login is None else user_name(login),
    )
    mode = stat.S_IMODE(audit_log_path(sut.state_dir).stat().st_mode)
    assert mode == 0o600
    line = sut.wait_event("operator_command", since=mark, command="restart", reason=reason)
    assert (line["uid"], line["user"], line["pid"]) == (os.getuid(), USER, record["pid"])
    eventually(lambda: sut.epoch_of("heartbeat") > epoch, 20, message="heartbeat restarted")
    count = sut.metric("tradepulse_actor_restarts_total", actor="heartbeat", reason="operator")
    assert count == 1


def test_an_identity_the_client_sends_is_replaced_by_the_kernels(sut: SystemUnderTest) -> None:
    """A client that puts someone else's uid, user and pid in its request is recorded with
    its own: the uid and pid of the process that connected (this test's)."""
    forged = OperatorId(uid=4242, user="mallory", pid=1)
    reason = f"forged-{uuid.uuid4().hex[:6]}"
    request = ControlRequest(command=Reload(reason=reason), operator=forged)
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    try:
        sock.connect(sut.cfg.control_endpoint)
        sock.send_multipart(encode(Sender("forger", 0).envelope(request)))
        assert sock.poll(10_000), "no reply"
        reply = decode(sock.recv_multipart()).body
    finally:
        sock.close(0)
        ctx.term()
    assert isinstance(reply, ControlReply) and reply.status == "ok", reply
    record = audited(sut, command="reload", reason=reason)
    assert record is not None
    assert (record["uid"], record["user"], record["pid"]) == (os.getuid(), USER, os.getpid())


def test_a_kill_switch_engage_and_reset_record_who_in_its_history(sut: SystemUnderTest) -> None:
    """`kill-switch engage` / `reset` via the CLI: `kill-switch status` names the operator
    (user, uid) of the engagement in force and of each history event."""
    code, reply = cli_json(sut, "kill-switch", "engage", "--reason", "audit drill")
    assert code == 0, reply
    try:
        code, status = cli_json(sut, "kill-switch", "status")
        assert code == 0 and status["data"]["engaged"], status
        who = f"{USER} (uid {os.getuid()}, pid "
        assert status["data"]["operator"].startswith(who)
        last = status["data"]["history"][-1]
        assert (last["action"], last["reason"]) == ("engage", "audit drill")
        assert last["operator"].startswith(who)
        table = sut.cli("kill-switch", "status").stdout
        assert "OPERATOR" in table and f"{USER} (uid {os.getuid()}" in table, table
        assert "audit drill" in table
    finally:
        code, reply = cli_json(sut, "kill-switch", "reset", "--reason", "drill over")
    assert code == 0, reply
    code, status = cli_json(sut, "kill-switch", "status")
    last = status["data"]["history"][-1]
    assert (last["action"], last["reason"]) == ("reset", "drill over")
    assert last["operator"].startswith(f"{USER} (uid {os.getuid()}")
    assert audited(sut, command="kill-switch", reason="drill over", result="ok") is not None


@pytest.mark.usefixtures("config_restored")
def test_a_reloaded_risk_limit_is_enforced_without_a_restart(sut: SystemUnderTest) -> None:
    """max_order_qty lowered in the file + `reload`: the reply shows the diff, risk is not
    restarted and refuses an order over the new limit (one under it still passes)."""
    risk_epoch = sut.epoch_of("risk")
    with client(sut) as c:
        submit_when_open(c, "simA", qty="10")  # within the limit in force
        write_config(sut, risk={"max_order_qty": "5"})
        mark = sut.mark()
        out = sut.cli("reload", "--reason", "tighten")
        assert out.returncode == 0, out.stdout + out.stderr
        assert "risk.max_order_qty: 10000 -> 5" in out.stdout
        assert "risk: applied risk" in out.stdout
        with pytest.raises(RiskRejected, match="max_order_qty 5"):
            c.submit("simA", "AAPL", "BUY", "10", "LIMIT", price="95.00", timeout_s=10)
        submit_when_open(c, "simA", qty="5")
    assert sut.epoch_of("risk") == risk_epoch
    event = sut.wait_event("config_reloaded", since=mark)
    assert event["changes"] == ["risk.max_order_qty: 10000 -> 5"]
    assert event["operator"].startswith(f"{USER} (uid {os.getuid()}")
    sut.wait_event("config_applied", since=mark, actor="risk", section="risk")
    record = audited(sut, command="reload", reason="tighten")
    assert record is not None and record["changes"][0]["field"] == "risk.max_order_qty"


@pytest.mark.usefixtures("config_restored")
def test_a_restart_only_change_refuses_the_whole_reload(sut: SystemUnderTest) -> None:
    """A file that changes a live field and a restart-only one: refused naming the
    restart-only field, exit 1, nothing applied (the next reload of the original file
    finds nothing to change)."""
    write_config(sut, risk={"max_order_qty": "5"}, oms={"request_timeout_s": 7.0})
    mark = sut.mark()
    code, reply = cli_json(sut, "reload")
    assert code == 1
    assert reply["reason"].startswith("reload refused: needs a restart: oms.request_timeout_s")
    assert "risk.max_order_qty" not in reply["reason"]
    sut.wait_event("config_reload_refused", since=mark)  # then the lines before it are read
    assert not sut.events("config_applied", since=mark)
    assert not sut.events("config_reloaded", since=mark)


@pytest.mark.usefixtures("config_restored")
def test_a_changed_secret_is_named_but_never_shown(sut: SystemUnderTest) -> None:
    """A reload whose file changes a venue's FIX RawData (96) logon field: refused (venues
    need a restart), the field named in the reply, but its value is `<redacted>` in the
    reply, the `operator_command` and `config_reload_refused` lines and the audit file."""
    secret = f"S3CRET-{uuid.uuid4().hex[:8]}"
    data = make_config(venues=VENUES)
    data["venues"][0]["dialect"] = {"logon_fields": {"96": secret}}
    sut.config_path.write_text(to_toml(data))
    mark = sut.mark()
    out = sut.cli("reload", "--reason", "rotate rawdata", "--json")
    assert out.returncode == 1, out.stdout + out.stderr
    reply = json.loads(out.stdout)
    fields = {c["field"]: c for c in reply["data"]["changes"]}
    assert fields["venues[simA].dialect.logon_fields.96"]["new"] == "<redacted>"
    line = sut.wait_event("operator_command", since=mark, command="reload", reason="rotate rawdata")
    refused = sut.wait_event("config_reload_refused", since=mark)
    record = audited(sut, command="reload", reason="rotate rawdata")
    assert record is not None
    for shown in (out.stdout, json.dumps(line), json.dumps(refused), json.dumps(record)):
        assert secret not in shown
    assert secret not in audit_log_path(sut.state_dir).read_text()


@pytest.mark.usefixtures("config_restored")
def test_a_bad_config_file_is_refused_and_the_system_keeps_running(
    sut: SystemUnderTest,
) -> None:
    """A file that does not validate: the CLI refuses it itself (exit 2, the field named:
    it reads the file to find the system); the supervisor, asked by a client that has the
    config already or by SIGHUP, refuses it naming the field; every actor keeps running."""
    assert sut.proc is not None
    pids = sut.pids()
    write_config(sut, risk={"max_open_orders_per_venue": 0})
    out = sut.cli("reload")
    assert out.returncode == 2
    assert "config error: risk.max_open_orders_per_venue" in out.stderr
    first = sut.mark()
    reply = sut.control("reload")
    assert reply.status == "error"
    assert reply.reason.startswith("reload refused: config error: risk.max_open_orders_per_venue")
    # its line read before the next mark: the reply can come before it (make test under load)
    sut.wait_event("config_reload_refused", since=first)
    sut.config_path.write_text("this is [not toml")
    mark = sut.mark()
    os.kill(sut.proc.pid, signal.SIGHUP)
    refused = sut.wait_event("config_reload_refused", since=mark)
    assert "not valid TOML" in refused["error"]
    status = sut.status()
    assert {a["id"]: a["pid"] for a in status["actors"]} == pids
    assert all(a["state"] == "running" for a in status["actors"])


@pytest.mark.usefixtures("config_restored")
def test_sighup_reloads_like_the_reload_command(sut: SystemUnderTest) -> None:
    """SIGHUP to the supervisor: the heartbeat actor takes its new interval live (no
    restart), `config_reloaded` is logged and audited as SIGHUP; the system keeps running."""
    assert sut.proc is not None
    epoch = sut.epoch_of("heartbeat")
    write_config(sut, heartbeat={"interval_s": 0.5, "divergence_beats": 4})
    mark = sut.mark()
    os.kill(sut.proc.pid, signal.SIGHUP)
    event = sut.wait_event("config_reloaded", since=mark)
    assert event["operator"] == "SIGHUP"
    assert set(event["changes"]) == {
        "heartbeat.interval_s: 1.0 -> 0.5",
        "heartbeat.divergence_beats: 3 -> 4",
    }
    applied = sut.wait_event("config_applied", since=mark, actor="heartbeat")
    assert set(applied["fields"]) == {"interval_s", "divergence_beats"}
    assert sut.epoch_of("heartbeat") == epoch

    # audited once every actor answered (after `config_reloaded`)
    def this_reload() -> dict[str, Any] | None:
        for r in audit_records(sut):
            fields = [c["field"] for c in r.get("changes") or []]
            if r.get("via") == "sighup" and "heartbeat.interval_s" in fields:
                return r
        return None

    record = eventually(this_reload, 10, message="the SIGHUP reload audited")
    assert (record["command"], record["result"], record["uid"]) == ("reload", "ok", None)
