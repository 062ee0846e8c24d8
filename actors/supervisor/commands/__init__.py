"""The operator commands, one unit each, and the one table that registers them.

`supervisor.py` builds its argparse subcommands from `TABLE`, the control plane routes a
`ControlRequest` by its command's model (`for_request`), and the CLI prints a reply with
the command's own `format`. Adding a command: its wire model in `protocol.commands`, a
unit here (a module and a line in `TABLE`), and the actor that executes it.
"""

from __future__ import annotations

from typing import Any

from actors.supervisor.commands.base import ControlCommand, ControlHost, OperatorCommand
from actors.supervisor.commands.cancel import Cancel
from actors.supervisor.commands.exposure import Exposure
from actors.supervisor.commands.fix import Fix
from actors.supervisor.commands.intake import Intake
from actors.supervisor.commands.journal import Journal
from actors.supervisor.commands.keys import Keys
from actors.supervisor.commands.kill_switch import KillSwitch
from actors.supervisor.commands.positions import Positions
from actors.supervisor.commands.postmortem import Postmortem
from actors.supervisor.commands.preflight import Preflight
from actors.supervisor.commands.reconcile import Reconcile
from actors.supervisor.commands.reload import Reload
from actors.supervisor.commands.restart import Restart
from actors.supervisor.commands.shutdown import Shutdown
from actors.supervisor.commands.status import Status, format_status
from actors.supervisor.commands.stop_start import Start, Stop
from actors.supervisor.commands.top import Top
from actors.supervisor.commands.views import Fills, Orders
from protocol.commands import Command

TABLE: tuple[OperatorCommand, ...] = (
    Status(),
    Shutdown(),
    Restart(),
    KillSwitch(),
    Exposure(),
    Intake(),
    Reconcile(),
    Cancel(),
    Journal(),
    Fix(),
    Preflight(),
    Top(),
    Orders(),
    Fills(),
    Positions(),
    Reload(),
    Postmortem(),
    Stop(),
    Start(),
    Keys(),
)
BY_NAME: dict[str, OperatorCommand] = {c.name: c for c in TABLE}
_BY_MODEL: dict[type[Any], ControlCommand[Any]] = {
    c.model: c for c in TABLE if isinstance(c, ControlCommand)
}


def for_request(command: Command) -> ControlCommand[Any] | None:
    """The unit that handles `command` at the supervisor; None: not a supervisor command
    (a simulated venue's fault, sent to the venue itself)."""
    return _BY_MODEL.get(type(command))


__all__ = ["TABLE", "BY_NAME", "ControlCommand", "ControlHost", "for_request", "format_status"]
