"""One answer for a `RiskChecks` (several orders' checks in one message, the OMS's new
orders of one loop turn): each check goes through the same path as a `RiskCheck` alone
(`RiskActor._on_check`: the verdict cache, the hold while the exposure is rebuilt, the
evaluation), answering into its slot; the `RiskVerdicts` goes out when the last slot is
filled (a held check's later, with the others). One message each way instead of one per
order: the envelope, the sends and the wake-ups of each hop are per batch."""

from __future__ import annotations

from collections.abc import Callable

from protocol.messages import Message, RiskVerdict, RiskVerdicts

Answer = Callable[[Message], None]  # how a check is answered: a `Replier`, or a slot here


class BatchAnswer:
    def __init__(self, reply: Answer, client_order_ids: list[str]) -> None:
        self._reply = reply
        self._coids = client_order_ids
        self._verdicts: list[RiskVerdict | None] = [None] * len(client_order_ids)
        self._left = len(client_order_ids)

    def slot(self, i: int) -> Answer:
        """The answer of check `i`: its verdict (anything else fails it closed)."""
        return lambda body: self._fill(i, body)

    def _fill(self, i: int, body: Message) -> None:
        if self._verdicts[i] is not None:
            return  # answered already (a slot is answered once)
        if not isinstance(body, RiskVerdict):
            body = RiskVerdict(
                client_order_id=self._coids[i], approved=False, reason_code="risk_error",
                reason=f"risk could not check the order: {body.type}",
            )  # fmt: skip
        self._verdicts[i] = body
        self._left -= 1
        if self._left == 0:
            done = [v for v in self._verdicts if v is not None]
            self._reply(RiskVerdicts(verdicts=done))
