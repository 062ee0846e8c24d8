"""Review rev21 of branch `weight4` (the merge of main's 'pending' / 'unsent' answers, the
mass cancel's gather and headroom): defects proven against the real adapter and the
simulated exchange (the rig of test_weight_budget, the fetch hook of test_weight_rev6)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from tests.connector.ccxt.test_weight_budget import _Rig
from tests.connector.ccxt.test_weight_rev4 import _open_at_exchange, _send, make_rig
from tests.connector.ccxt.test_weight_rev6 import Fetch, _hook_fetch

__all__ = ["make_rig"]  # the fixture, shared with rev4


def test_positions_asks_given_up_at_the_weight_gate_are_not_all_sent_later(
    make_rig: Callable[..., _Rig],
) -> None:
    """The weight budget is spent for the next ~7 s (another client on the IP, or our own
    burst). The heartbeat asks the venue's positions every beat while a divergence waits
    for confirmation (every 0.5 s in the chaos harness); its connector request times out
    after request_timeout_s (5 s here), and the connector's task keeps waiting at the
    gate: nothing bounds or joins them. Once the minute frees room, every one of them
    reads the balance (GET /api/v3/account, weight 20) and polls, for answers nobody
    waits for: the budget is spent again on abandoned requests, and the OMS's status
    queries and cancels wait behind them (a851195 lifted the sim's limit of
    test_ccxt_unsent_resubmit because of this). At most one balance read should go out
    for asks that waited together (joined), or none for asks past their caller's time."""
    rig = make_rig(poll_interval_s=60.0)  # the stream-down poll out of the way
    ids = _send(rig, 1)
    rig.run_until(lambda: _open_at_exchange(rig) == set(ids) and not rig.adapter.flows.gates)
    budget = rig.adapter.rest.budget
    free_in_s = 7.0  # past request_timeout_s (5 s): every caller below has given up
    spent = budget.budget - budget.used()
    budget._done.appendleft((time.monotonic() - budget.window_s + free_in_s, spent))
    budget._done_sum += spent
    assert budget.wait_s(20) > 5.0
    reads: list[float] = []

    async def hook(inner: Fetch, url: str, method: str, headers: Any, body: Any) -> Any:
        if method == "GET" and urlsplit(url).path.endswith("/api/v3/account"):
            reads.append(time.monotonic())
        return await inner(url, method, headers, body)

    _hook_fetch(rig, hook)
    asks, answers = 10, list[Any]()  # 5 s of the harness's beats
    for _ in range(asks):
        rig.adapter.positions(answers.append)
    rig.run_until(lambda: budget.waits >= asks, 5.0)
    waiting = sum(t.get_name() == "positions" for t in rig.adapter._tasks)
    rig.run_until(lambda: len(answers) == asks, 30.0)  # the room freed: all went
    assert len(reads) <= 1, (
        f"{waiting} positions asks waited at the gate past their caller's timeout, and "
        f"{len(reads)} balance reads (weight {20 * len(reads)}) went out for them once the "
        f"minute freed room"
    )
