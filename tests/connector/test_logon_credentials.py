"""Logon credentials against a simulated venue that requires a Username(553), as many real
venues do: the connector with `username_env` logs on (553 from the env var, never logged);
one without it is refused, and its venue state and log say why."""

from __future__ import annotations

import json
from typing import Any

import pytest

from protocol.messages import VenueConnState
from tests.connector.rig import ConnectorRig
from tests.connector.test_connector_process import STILL, venue_overrides

pytestmark = pytest.mark.integration
S = VenueConnState
USERNAME = "alice-tp-7f3c"


def strict_venue(**venue: Any) -> dict[str, Any]:
    """The still-market sim of the connector tests, refusing a Logon without our Username."""
    sim = STILL["venues"][0]["sim"] | {"require_username": USERNAME}
    return venue_overrides(sim=sim, **venue)


def logs(rig: ConnectorRig) -> str:
    return "\n".join(json.dumps(p.lines) + "\n".join(p.stderr) for p in rig.all_procs)


def test_username_from_the_env_var_logs_on_to_a_venue_that_requires_it() -> None:
    """`username_env` names the variable: the Logon carries 553 (and 554 from
    `password_env`), the venue accepts it, and neither value appears in any log line of
    the connector or the venue."""
    rig = ConnectorRig(strict_venue(username_env="TP_TEST_FIX_USER", password_env="TP_TEST_PW"))
    rig.env["TP_TEST_FIX_USER"] = USERNAME
    rig.env["TP_TEST_PW"] = "pw-5e1b-secret"
    try:
        rig.start()  # waits for CONNECTED
        assert rig.sim_control("status")["data"]["logons"] >= 1
        rig.pump_until(lambda: rig.connector.events("fix_logon"), 10.0, "fix_logon logged")
        assert not rig.connector.events("connect_failed")
        text = logs(rig)
        assert USERNAME not in text and "pw-5e1b-secret" not in text
    finally:
        rig.close()


def test_without_the_username_the_logon_is_refused_with_the_reason() -> None:
    """No `username_env`: the venue answers the Logon with a Logout saying the Username is
    required; the connector never reaches CONNECTED, logs `connect_failed` with that reason
    and, after `down_after_failures` attempts, reports DOWN with it as the detail."""
    rig = ConnectorRig(strict_venue(down_after_failures=2))
    try:
        rig.spawn("venuesim")
        rig.spawn("connector")
        down = rig.pump_until(
            lambda: rig.connector.events("venue_state", state="DOWN"), 15.0, "venue DOWN"
        )[0]
        assert "logon refused: Username(553) required" in down["detail"]
        failed = rig.connector.events("connect_failed")
        assert failed and all("Username(553) required" in e["reason"] for e in failed)
        assert (S.CONNECTED, rig.epochs["connector.simA"]) not in rig.states
        assert rig.sim_control("status")["data"]["logons"] == 0
    finally:
        rig.close()
