"""The kill switch's mass cancel's fence on new orders, and the new-order POSTs on the wire
(`exchange.Rest.fence`). While a mass cancel runs, a new-order POST waiting at the weight
gate (or arriving there) is not sent (`NotSent`), whichever flow it belongs to (a submit, a
replace's new order); a flow that began before a mass cancel that ran meanwhile is not
sent either (`exchange.FENCE_EPOCH`: the `epoch` it started in). The mass cancel waits
for the POSTs already sent (`wire_clear`) and cancels whichever landed."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator


class Fence:
    """Mass cancels running (`count`) and begun so far (`epoch`), new-order POSTs sent and
    not answered yet (`orders_on_wire`)."""

    def __init__(self) -> None:
        self.count = 0
        self.epoch = 0
        self.raised = asyncio.Event()  # set while one runs: wakes an order at the gate
        self.orders_on_wire = 0
        self._wire_clear = asyncio.Event()
        self._wire_clear.set()

    @contextlib.asynccontextmanager
    async def up(self) -> AsyncIterator[None]:
        """While a mass cancel runs: no new-order POST leaves the gate (`refusal`)."""
        self.count += 1
        self.epoch += 1
        self.raised.set()
        try:
            yield
        finally:
            self.count -= 1
            if not self.count:
                self.raised.clear()

    def refusal(self, epoch: int | None) -> str:
        """Why a new-order POST of a flow begun in `epoch` (None: any) may not go now ("":
        it may)."""
        if self.count:
            return "a mass cancel runs (the kill switch)"
        if epoch is not None and epoch != self.epoch:
            return "a mass cancel ran meanwhile (the kill switch)"
        return ""

    def on_wire(self, orders: int) -> None:
        """`orders` new-order POSTs went out (negative: answered, or failed)."""
        if orders:
            self.orders_on_wire += orders
            if self.orders_on_wire:
                self._wire_clear.clear()
            else:
                self._wire_clear.set()

    async def wire_clear(self) -> None:
        """Until no new-order POST is on the wire."""
        await self._wire_clear.wait()
