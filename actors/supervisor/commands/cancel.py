"""`tradepulse cancel ORDER_ID [--reason "..."]`, executed by the OMS: cancel one working
order as a client's CancelOrder would (the venue's cancel goes out; the order is
PENDING_CANCEL until the venue confirms). The runbook's "cancel them first" (before `stop
connector.V`, at the end of the day) in one command; `orders --open` lists what is working."""

from __future__ import annotations

import argparse

from actors.supervisor.commands.base import ControlCommand
from protocol import commands as wire
from protocol.messages import ControlReply


class Cancel(ControlCommand[wire.Cancel]):
    """cancel one working order (by its client order id)"""

    name = "cancel"
    model = wire.Cancel
    route = "oms"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("client_order_id", help="the order's id (`tradepulse orders --open`)")
        parser.add_argument("--reason", default="", help="why: logged and audited")

    def to_wire(self, ns: argparse.Namespace) -> wire.Cancel:
        return wire.Cancel(client_order_id=ns.client_order_id, reason=ns.reason)

    def format(self, reply: ControlReply) -> str:
        """One line: the order, its venue and status now (`--json`: the order's view)."""
        return f"{reply.status}: {reply.reason}"
