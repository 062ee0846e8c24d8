"""`tradepulse status` as people read it (`format_status`)."""

from __future__ import annotations

from actors.supervisor.commands import format_status


def test_the_table_names_the_supervisor_pid_the_runbook_sends_sighup_to() -> None:
    """The runbook's reload ("`status` shows the pid", then `kill -HUP <supervisor pid>`)
    and its "find the other supervisor (`tradepulse status`)": the table says which pid is
    the supervisor's; only `--json` (`supervisor_pid`) and `top` did."""
    out = format_status({"actors": [], "supervisor_pid": 4242, "uptime_s": 61.6}).splitlines()
    assert "supervisor: pid 4242, up 62s" in out
    assert not any(line.startswith("supervisor:") for line in format_status({}).splitlines())
