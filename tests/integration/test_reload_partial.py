"""A reload one actor does not confirm, against the real supervisor: risk frozen (SIGSTOP)
while its section is sent. The reply (within the CLI's default deadline) names risk and
says the section was not applied; the running config keeps risk's old section, so the
retry after risk is back sends it again instead of answering "config unchanged"."""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Callable
from typing import Any

import pytest

from actors.supervisor.reload import ACK_TIMEOUT_S
from tests.helpers import SystemUnderTest, make_config, process_alive, to_toml

pytestmark = pytest.mark.integration

VENUES = ("simA",)
# risk frozen for a while must not be killed for a hang meanwhile
BASE: dict[str, Any] = {"supervisor": {"hang_missed_intervals": 1000}}


def test_a_section_risk_did_not_confirm_is_sent_again_by_the_next_reload(
    start_system: Callable[..., SystemUnderTest],
) -> None:
    sut = start_system(venues=VENUES, overrides=BASE)
    changed = BASE | {"risk": {"max_order_qty": "5"}, "heartbeat": {"interval_s": 0.5}}
    sut.config_path.write_text(to_toml(make_config(venues=VENUES, overrides=changed)))
    risk = sut.pid_of("risk")
    mark = sut.mark()
    os.kill(risk, signal.SIGSTOP)
    try:
        out = sut.cli("reload", "--reason", "partial", "--json")  # default --timeout-s 10
    finally:
        if process_alive(risk):
            os.kill(risk, signal.SIGCONT)
    assert out.returncode == 1, out.stdout + out.stderr
    reply = json.loads(out.stdout)
    assert "risk not applied" in reply["reason"]
    actors = reply["data"]["actors"]
    assert actors["risk"] == f"no answer within {ACK_TIMEOUT_S:g} s"
    assert actors["heartbeat"] == "applied heartbeat"
    event = sut.wait_event("config_reload_incomplete", since=mark)
    assert (event["applied"], event["not_applied"]) == (["heartbeat"], ["risk"])
    assert sut.metric("tradepulse_config_reloads_total", result="partial") == 1

    mark = sut.mark()
    out = sut.cli("reload", "--reason", "retry", "--json")
    assert out.returncode == 0, out.stdout + out.stderr
    retry = json.loads(out.stdout)
    assert [c["field"] for c in retry["data"]["changes"]] == ["risk.max_order_qty"]
    assert retry["data"]["actors"] == {"risk": "applied risk"}
    sut.wait_event("config_reloaded", since=mark)
    again = json.loads(sut.cli("reload", "--json").stdout)
    assert again["reason"] == "config unchanged"
