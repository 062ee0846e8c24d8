"""New orders acknowledged to the OMS as sent but not on the wire yet: each waits at the
weight gate (`exchange.Rest.attach`: the request weight, the ORDERS count, a Retry-After)
and can stay there for seconds. A cancel of such an order must not overtake it (the
cancel is not paced by ORDERS: it went first, drew "unknown order", and the order went
out afterwards and rested), nor may a mass cancel leave one to go out after it.

So each submit task is registered here when it is spawned (`expect`, in the turn the OMS
is told it is sent) and its requests say when one leaves the gate (`exchange.ON_WIRE`,
called just before a request is sent: `mark_on_wire`). Until then the order can be
withdrawn (`withdraw`: its task is cancelled, at the await where it waits or before it
ran at all, so it is never sent); once on the wire, a cancel waits for the submit's end
(`settled`) and then goes. An order sent before (a resend looked up first: it may be at
the exchange already) is never withdrawn, only waited for.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Final

# how the OMS's reason of an order the connector never sent begins (its checkers read it):
# withdrawn at the gate (CANCELLED), or held there past its bound (REJECTED)
WITHDRAWN: Final = "withdrawn before it reached the exchange"
NOT_SENT: Final = "not sent:"


@dataclass
class Gate:
    """One submit: its task, whether its create may still be withdrawn."""

    task: asyncio.Task[object]
    withdrawable: bool
    on_wire: bool = False
    finished: asyncio.Event = field(default_factory=asyncio.Event)


class Gates:
    """The submits spawned and not over yet, by client order id."""

    def __init__(self) -> None:
        self._gates: dict[str, Gate] = {}

    def __contains__(self, cl_ord_id: object) -> bool:
        return cl_ord_id in self._gates

    def __len__(self) -> int:
        return len(self._gates)

    def expect(self, cl_ord_id: str, task: asyncio.Task[object], *, withdrawable: bool) -> None:
        """`task` submits `cl_ord_id` (a submit of it already running keeps its gate: the
        second one only finds it in flight)."""
        if cl_ord_id in self._gates:
            return
        gate = self._gates[cl_ord_id] = Gate(task, withdrawable)
        task.add_done_callback(lambda _t: self._leave(cl_ord_id, gate))

    def mark_on_wire(self, cl_ord_id: str) -> None:
        """A request of `cl_ord_id`'s submit goes out now: it is not withdrawn any more."""
        gate = self._gates.get(cl_ord_id)
        if gate is not None and gate.task is asyncio.current_task():
            gate.on_wire = True

    def withdraw(self, cl_ord_id: str) -> bool:
        """Stop `cl_ord_id`'s submit if no request of it has gone out: True (it never
        will), False (no such submit, or it went out, or it may be at the exchange)."""
        gate = self._gates.get(cl_ord_id)
        if gate is None or gate.on_wire or not gate.withdrawable:
            return False
        gate.task.cancel()  # it waits at an await before the send, or has not run
        self._leave(cl_ord_id, gate)
        return True

    def withdrawable(self) -> list[str]:
        """Client ids whose submit has sent nothing and may be withdrawn."""
        return [c for c, g in self._gates.items() if g.withdrawable and not g.on_wire]

    async def settled(self, cl_ord_id: str) -> None:
        """Until `cl_ord_id`'s submit (if one runs) is over."""
        gate = self._gates.get(cl_ord_id)
        if gate is not None:
            await gate.finished.wait()

    async def all_settled(self) -> None:
        """Until every submit running now is over."""
        for gate in list(self._gates.values()):
            await gate.finished.wait()

    def _leave(self, cl_ord_id: str, gate: Gate) -> None:
        if self._gates.get(cl_ord_id) is gate:
            del self._gates[cl_ord_id]
        gate.finished.set()
