"""What a venue link remembers of the cancels and replaces it handed to the connector.

- `acked`: the last cancel/replace ClOrdID the connector acknowledged sending, per order.
  A finished reconciliation pass queues again the cancels/replaces the venue has not
  confirmed, never one the connector already sent (`unconfirmed`); the entries of orders
  that ended are forgotten by the pass's walk (`walk`). A placement's ack is never kept: its
  id is never a pending cancel/replace's (issue 16: one per order, 25,000 a venue at
  1,500 orders/s until the next pass).
- `behind`: orders whose next request (a cancel or replace asked meanwhile) waited while
  their previous one was in flight: sent once that one is acknowledged (`answered`), after
  the commit of the turn the acknowledgement comes in (the order may have changed earlier
  in that turn: nothing is sent before its journal commit). Found by review: a cancel asked
  between the venue's New and the connector's Ack of the placement was dropped from the
  queue, and sent only by the next pass, seconds later.
"""

from __future__ import annotations

from collections.abc import Iterator

from actors.oms.order_book import OrderBook
from protocol.messages import OrderStatus

REQUEST_PENDING = (OrderStatus.PENDING_CANCEL, OrderStatus.PENDING_REPLACE)


class SentRequests:
    def __init__(self) -> None:
        self.acked: dict[str, str] = {}  # client_order_id -> last request ClOrdID sent
        self.behind: set[str] = set()  # client_order_ids: a request waits for the answer

    def answered(self, coid: str, kind: str, request_id: str, acked: bool) -> bool:
        """The answer to `coid`'s request `request_id` of `kind` came (`acked`: the connector
        sent it); whether a request of the order waited behind it (to send now if acked)."""
        if acked:
            if kind == "place_order":
                self.acked.pop(coid, None)
            else:
                self.acked[coid] = request_id
        if coid not in self.behind:
            return False
        self.behind.discard(coid)
        return acked

    def walk(self, book: OrderBook, venue: str, found: list[str]) -> Iterator[None]:
        """One step per order: the venue's orders with a cancel/replace pending go to
        `found`; acknowledged requests of orders ended (or no longer held) are forgotten."""
        for order in book.held_orders():
            if order.venue == venue and order.status in REQUEST_PENDING:
                found.append(order.client_order_id)
            yield None
        for coid in list(self.acked):
            if (o := book.held(coid)) is None or o.is_terminal:
                self.acked.pop(coid, None)
            yield None

    def unconfirmed(self, book: OrderBook, found: list[str]) -> list[str]:
        """Of `found`, the orders whose cancel/replace pending now the connector has not
        acknowledged sending."""
        out = []
        for coid in found:
            order = book.held(coid)
            if order is not None and order.status in REQUEST_PENDING:
                if self.acked.get(coid) != order.pending_cl_ord_id:
                    out.append(coid)
        return out
