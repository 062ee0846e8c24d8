"""The reload's pure parts and its protocol with the actors, against a stub supervisor:
the diff names every changed leaf (venues by name); a bad file or any restart-only change
refuses the whole reload with nothing sent; a live change goes to the owning actors with
the operator, and the reply waits for their answers (or says who did not answer)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import structlog
from prometheus_client import REGISTRY
from structlog.testing import capture_logs

from actors.runtime.timers import Timers
from actors.supervisor import running_config
from actors.supervisor.reload import ACK_TIMEOUT_S, LIVE_SECTIONS, Reloader, config_diff
from actors.supervisor.restart_policy import ChildState
from protocol.commands import ApplyConfig, OperatorId
from protocol.config import SystemConfig, load_config, parse_config
from protocol.messages import ControlReply, ControlRequest
from protocol.redact import REDACTED
from tests.helpers import make_config, to_toml

ALICE = OperatorId(uid=1000, user="alice", pid=7)


class Host:
    def __init__(self, path: Path) -> None:
        self.config_path = str(path)
        self.overrides: dict[str, Any] = {}
        path.write_text(to_toml(make_config(venues=("simA",))))
        self.cfg: SystemConfig = load_config(path)
        self.states = {a: ChildState.RUNNING for a in ("risk", "oms", "heartbeat")}
        self.sent: list[tuple[str, ControlRequest]] = []

    def actor_ids(self) -> list[str]:
        return list(self.states)

    def actor_state(self, actor: str) -> ChildState | None:
        return self.states.get(actor)

    def forward(self, actor: str, request: ControlRequest) -> str:
        self.sent.append((actor, request))
        return f"fwd-{len(self.sent)}"

    def write(self, **overrides: Any) -> None:
        Path(self.config_path).write_text(
            to_toml(make_config(venues=("simA",), overrides=overrides))
        )


@pytest.fixture
def host(tmp_path: Path) -> Host:
    return Host(tmp_path / "config.toml")


def reloader(host: Host, timers: Timers | None = None) -> Reloader:
    return Reloader(host, timers or Timers(), structlog.get_logger())


def run(r: Reloader) -> list[ControlReply]:
    replies: list[ControlReply] = []
    r.reload(ALICE, "test", replies.append)
    return replies


def test_the_diff_names_each_changed_leaf_with_venues_by_name() -> None:
    old = parse_config(make_config(venues=("simA", "simB")))
    new = parse_config(
        make_config(
            venues=("simA", "simB"),
            overrides={"risk": {"max_order_qty": "5"}, "heartbeat": {"interval_s": 0.5}},
        )
        | {"venues": [{"name": "simA"}, {"name": "simB", "heartbeat_s": 9}]}
    )
    changes = {c.field: c for c in config_diff(old, new)}
    assert changes["risk.max_order_qty"].old == "10000" and changes["risk.max_order_qty"].new == "5"
    assert changes["risk.max_order_qty"].live and changes["heartbeat.interval_s"].live
    assert changes["venues[simB].heartbeat_s"].new == 9
    assert not changes["venues[simB].heartbeat_s"].live
    assert config_diff(old, old) == []


def test_removing_a_blackout_shows_the_list_it_was_and_no_leaf_as_changed_to_itself() -> None:
    """`[trading]` with one blackout -> `blackouts = []` (seen on a demo run): the reply
    showed `trading.blackouts: None -> []` (the old list was not None) and
    `trading.blackouts[0].days: None -> None` (a line for a leaf that did not change). Every
    line the reply prints says what the field was and what it is, and they differ."""
    blackout = {"start": "2026-12-06T11:03", "end": "2026-12-06T13:03", "reason": "audit"}
    old = parse_config(make_config(overrides={"trading": {"blackouts": [blackout]}}))
    new = parse_config(make_config(overrides={"trading": {"blackouts": []}}))
    changes = config_diff(old, new)
    assert changes, "the blackout's removal is a change"
    shown = [(c.field, str(c.old), str(c.new)) for c in changes]
    assert all(was != now for _, was, now in shown), shown
    assert all(not (field == "trading.blackouts" and was == "None") for field, was, _ in shown)


def test_a_venue_added_whole_shows_no_secret_of_its_table() -> None:
    """A venue on one side only is one field, its whole table (`venues[simB]: None ->
    {...}`): its secret members are redacted there too."""
    old = parse_config(make_config(venues=("simA",)))
    data = make_config(venues=("simA", "simB"))
    data["venues"][1].setdefault("dialect", {})["logon_fields"] = {"96": "S3CRET-PW"}
    (change,) = config_diff(old, parse_config(data))
    assert (change.field, change.old) == ("venues[simB]", None)
    assert change.new["dialect"]["logon_fields"] == {"96": REDACTED}
    assert "S3CRET" not in repr(change.to_dict())


def test_an_unchanged_file_changes_nothing(host: Host) -> None:
    (reply,) = run(reloader(host))
    assert (reply.status, reply.reason) == ("ok", "config unchanged")
    assert host.sent == []


def test_a_bad_file_is_refused_with_its_config_error(host: Host) -> None:
    host.write(risk={"max_open_orders_per_venue": 0})
    r = reloader(host)
    (reply,) = run(r)
    assert reply.status == "error"
    assert reply.reason.startswith("reload refused: config error: risk.max_open_orders_per_venue")
    assert host.sent == [] and r.running is host.cfg


def test_any_restart_only_change_refuses_the_whole_reload(host: Host) -> None:
    host.write(risk={"max_order_qty": "5"}, supervisor={"heartbeat_interval_s": 0.3})
    r = reloader(host)
    (reply,) = run(r)
    assert reply.status == "error"
    assert reply.reason == (
        "reload refused: needs a restart: supervisor.heartbeat_interval_s (nothing applied)"
    )
    fields = {c["field"]: c["live"] for c in reply.data["changes"]}
    assert fields == {"risk.max_order_qty": True, "supervisor.heartbeat_interval_s": False}
    assert host.sent == [] and r.running is host.cfg


def test_a_live_change_goes_to_its_actors_and_the_reply_waits_for_them(host: Host) -> None:
    host.write(risk={"max_order_qty": "5"}, heartbeat={"interval_s": 0.5})
    r = reloader(host)
    replies = run(r)
    assert replies == []  # not before the actors answer
    sent = {actor: req for actor, req in host.sent}
    assert set(sent) == {"risk", "heartbeat"}
    risk_cmd = sent["risk"].command
    assert isinstance(risk_cmd, ApplyConfig) and risk_cmd.section == "risk"
    assert risk_cmd.values["max_order_qty"] == "5"
    assert sent["risk"].operator == ALICE
    assert r.running is host.cfg  # not before the actors confirm it
    assert r.on_reply("fwd-1", ControlReply(status="ok", reason="applied"))
    assert replies == []
    assert not r.on_reply("someone-else", ControlReply(status="ok"))
    assert r.on_reply("fwd-2", ControlReply(status="ok", reason="applied"))
    assert r.running.risk.max_order_qty == 5 and r.running.heartbeat.interval_s == 0.5
    # what an automatic post-mortem bundle records from now (actors/supervisor/running_config)
    assert running_config.running(host.cfg) is r.running
    other = host.cfg.model_copy(
        update={"system": host.cfg.system.model_copy(update={"state_dir": "/elsewhere"})}
    )
    assert running_config.running(other) is other  # another system's (a later test's) own
    (reply,) = replies
    assert reply.status == "ok" and set(reply.data["actors"]) == {"risk", "heartbeat"}
    fields = [c["field"] for c in reply.data["changes"]]
    assert fields == ["heartbeat.interval_s", "risk.max_order_qty"]


def test_an_actor_that_does_not_answer_makes_it_an_error_naming_it(
    host: Host, monkeypatch: pytest.MonkeyPatch
) -> None:
    host.write(risk={"max_order_qty": "5"})
    timers = Timers()
    replies = run(reloader(host, timers))
    assert replies == []
    monkeypatch.setattr("actors.runtime.timers.time.monotonic", lambda: 1e12)  # much later
    timers.run_due()
    (reply,) = replies
    assert reply.status == "error"
    assert reply.data["actors"] == {"risk": f"no answer within {ACK_TIMEOUT_S:g} s"}


def test_a_down_owner_reads_the_file_when_it_starts(host: Host) -> None:
    host.write(heartbeat={"interval_s": 0.5})
    host.states["heartbeat"] = ChildState.DOWN
    (reply,) = run(reloader(host))
    assert reply.status == "ok" and host.sent == []
    assert "reads the file when it starts" in reply.data["actors"]["heartbeat"]


def test_every_live_section_is_a_config_section_or_the_trading_one_to_come() -> None:
    for section in LIVE_SECTIONS:
        assert section in SystemConfig.model_fields or section == "trading"


def _answer(r: Reloader, host: Host, **status_by_actor: str) -> None:
    for i, (actor, _) in enumerate(host.sent, start=1):
        if actor in status_by_actor:
            r.on_reply(f"fwd-{i}", ControlReply(status=status_by_actor[actor], reason="x"))


def test_a_section_an_actor_refused_is_not_recorded_and_the_retry_sends_it_again(
    host: Host,
) -> None:
    """risk refuses its section, heartbeat applies its own: the reply is an error counted
    `partial` and logged `config_reload_incomplete`; the running config holds the new
    heartbeat section only, so the retry of the same file sends risk's section again (not
    "config unchanged" while risk keeps the old limits)."""
    host.write(risk={"max_order_qty": "5"}, heartbeat={"interval_s": 0.5})
    r = reloader(host)
    partial = REGISTRY.get_sample_value("tradepulse_config_reloads_total", {"result": "partial"})
    replies: list[ControlReply] = []
    with capture_logs() as logs:
        r.reload(ALICE, "first", replies.append)
        _answer(r, host, risk="error", heartbeat="ok")
    (reply,) = replies
    assert reply.status == "error" and "risk not applied" in reply.reason
    (event,) = [e for e in logs if e["event"] == "config_reload_incomplete"]
    assert event["applied"] == ["heartbeat"] and event["not_applied"] == ["risk"]
    assert not [e for e in logs if e["event"] == "config_reloaded"]
    after = REGISTRY.get_sample_value("tradepulse_config_reloads_total", {"result": "partial"})
    assert (after or 0) == (partial or 0) + 1
    assert r.running.heartbeat.interval_s == 0.5 and r.running.risk.max_order_qty == 10000

    host.sent.clear()
    retry = run(r)
    assert retry == [] and [a for a, _ in host.sent] == ["risk"]
    _answer(r, host, risk="ok")
    (reply,) = retry
    assert reply.status == "ok" and r.running.risk.max_order_qty == 5
    host.sent.clear()
    assert run(r)[0].reason == "config unchanged" and host.sent == []


def test_a_section_whose_actor_did_not_answer_is_sent_again(
    host: Host, monkeypatch: pytest.MonkeyPatch
) -> None:
    host.write(risk={"max_order_qty": "5"})
    timers = Timers()
    r = reloader(host, timers)
    run(r)
    monkeypatch.setattr("actors.runtime.timers.time.monotonic", lambda: 1e12)
    timers.run_due()
    host.sent.clear()
    assert run(r) == [] and [a for a, _ in host.sent] == ["risk"]


def test_the_ack_timeout_is_well_inside_the_cli_default_deadline() -> None:
    """The reply (with who did not answer) must reach a CLI waiting its default 10 s."""
    assert ACK_TIMEOUT_S <= 5.0


def test_secret_values_never_appear_in_the_diff(host: Host) -> None:
    """A changed FIX RawData / password shows as `<redacted>` in the diff (the reply, the
    log line, the audit record all come from it); the field itself is still named."""
    data = make_config(venues=("simA",))
    old = parse_config(data)
    data["venues"][0].setdefault("dialect", {})["logon_fields"] = {"96": "S3CRET-RAWDATA"}
    new = parse_config(data)
    changes = {c.field: c.to_dict() for c in config_diff(old, new)}
    assert changes["venues[simA].dialect.logon_fields.96"]["new"] == REDACTED
    assert "S3CRET" not in repr(changes)
    both = parse_config(
        data | {"venues": [data["venues"][0] | {"dialect": {"logon_fields": {"96": "OTHER"}}}]}
    )
    (change,) = config_diff(new, both)
    assert (change.old, change.new) == (REDACTED, REDACTED)  # changed, but not shown


def test_a_reload_of_the_trading_days_start_goes_to_the_oms_too(host: Host) -> None:
    """`risk.day_start` goes to risk and to the OMS (it marks its positions' P&L at each
    trading day's start: `actors.oms.positions`), and both must confirm it; a change of
    risk's limits alone goes to risk only (above). Before, to risk only: the OMS marked by
    the old setting until its next start, and a risk started on the next day read every
    position filled since as approximate (`risk_trading_day_baseline_approximate`)."""
    host.write(risk={"day_start": "17:00", "max_order_qty": "5"})
    r = reloader(host)
    replies = run(r)
    sent = {actor: req.command for actor, req in host.sent}
    assert set(sent) == {"risk", "oms"}
    oms = sent["oms"]
    assert isinstance(oms, ApplyConfig) and oms.section == "risk"
    assert oms.values is not None and oms.values["day_start"] == "17:00"
    _answer(r, host, risk="ok")
    assert replies == [] and r.running is host.cfg  # not before the OMS confirms it too
    _answer(r, host, oms="ok")
    (reply,) = replies
    assert reply.status == "ok" and set(reply.data["actors"]) == {"risk", "oms"}
