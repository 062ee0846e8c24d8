"""An older client, run by tests/integration/test_rolling_upgrade.py with PYTHONPATH set to
a copy of `protocol/` whose schema lacks fields the running core sends: it submits an order
that fills at once and follows it on the event stream; prints what it saw as JSON.

    python older_client.py CONFIG STATE_DIR RUNTIME_DIR CLIENT_ORDER_ID
"""

from __future__ import annotations

import json
import sys
import time

import protocol.client as client_module
from protocol.client import ExecutionClient, NotReady
from protocol.config import load_config
from protocol.messages import OrderEvent, OrderStatus

try:
    from protocol import compat
except ImportError:  # a library from before it (the test's proof that it fails without)
    compat = None  # type: ignore[assignment]


def main(argv: list[str]) -> int:
    config, state_dir, runtime_dir, coid = argv
    cfg = load_config(config, state_dir=state_dir, runtime_dir=runtime_dir)
    statuses: list[str] = []
    with ExecutionClient(cfg, retry_interval_s=0.2, timeout_s=10.0) as client:
        client.subscribe()
        deadline = time.monotonic() + 30.0
        while True:  # intake opens once the venue is reconciled
            try:
                ack = client.submit("simA", "AAPL", "BUY", "10", "LIMIT", price="100.05",
                                    client_order_id=coid)  # fmt: skip
                break
            except NotReady:
                if time.monotonic() > deadline:
                    raise
        while OrderStatus.FILLED.value not in statuses and time.monotonic() < deadline:
            for ev in client.events(timeout_s=1.0):
                if isinstance(ev, OrderEvent) and ev.order.client_order_id == coid:
                    statuses.append(ev.order.status.value)
        view = client.get_order(coid)
    out = {"protocol": client_module.__file__, "ack": ack.status.value, "events": statuses,
           "order": view.status.value, "cum_qty": str(view.cum_qty),
           "unknown": sorted(compat.unknown_fields()) if compat else []}  # fmt: skip
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
