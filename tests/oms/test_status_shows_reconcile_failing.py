"""`tradepulse status` shows the OMS's view of each venue next to the connector's: a
venue whose reconciliation keeps failing reads `reconcile_failing: <reason>`, not just
CONNECTED (issue 11, finding 3)."""

from __future__ import annotations

from actors.supervisor.commands import format_status


def test_status_table_shows_the_oms_view_of_each_venue() -> None:
    data = {
        "actors": [
            {
                "id": "oms",
                "pid": 1,
                "state": "READY",
                "epoch": 1,
                "restarts": 0,
                "uptime_s": 1.0,
                "heartbeat_age_s": 0.1,
                "rss_bytes": 0,
                "cpu_percent": 0,
                "info": {
                    "venues": {
                        "simA": "reconcile_failing: VENUE_REFUSED: session Reject of H",
                        "simB": "reconciled",
                    }
                },
            },
        ],  # fmt: skip
        "venues": {"simA": {"state": "CONNECTED"}, "simB": {"state": "CONNECTED"}},
        "intake": "open",
    }
    lines = format_status(data).splitlines()
    rows = [line.split(None, 2) for line in lines]
    assert ["simA", "CONNECTED", "reconcile_failing: VENUE_REFUSED: session Reject of H"] in rows
    assert ["simB", "CONNECTED", "reconciled"] in rows
    header = next(line for line in lines if line.startswith("VENUE"))
    simb = next(line for line in lines if line.startswith("simB"))
    assert header.index("OMS") == simb.index("reconciled")  # the columns line up
