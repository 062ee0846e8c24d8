"""Binance's WebSocket API (`/ws-api/v3`), the part ccxt's user-data stream uses, as a
plain function of one request message.

    {"id": ..., "method": "userDataStream.subscribe.signature",
     "params": {"apiKey": ..., "timestamp": ..., "signature": ...}}
      -> {"id": ..., "status": 200, "result": {"subscriptionId": N}, "rateLimits": [...]}
    then every user-data event arrives as {"subscriptionId": N, "event": {...}}

Also `ping`, `time` and `userDataStream.unsubscribe`. Errors are
{"id": ..., "status": 4xx, "error": {"code": -N, "msg": ...}}.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from actors.exchangesim.auth import Credentials
from actors.exchangesim.errors import ApiError

WS_RATE_LIMITS = [
    {
        "rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1,
        "limit": 6000, "count": 2,
    }
]  # fmt: skip


@dataclass(frozen=True, slots=True)
class WsAnswer:
    reply: dict[str, Any]
    subscribe: bool = False  # start the user-data stream on this connection
    unsubscribe: bool = False


class WsApi:
    def __init__(self, creds: Credentials, clock: Callable[[], int]) -> None:
        self.creds = creds
        self.clock = clock

    def handle(self, text: str) -> WsAnswer:
        try:
            msg = json.loads(text)
        except ValueError:
            msg = None
        if not isinstance(msg, dict) or not isinstance(msg.get("method"), str):
            return WsAnswer(_error(None, ApiError(-1000, "Malformed request.")))
        req_id = msg.get("id")
        params = msg.get("params") or {}
        method = msg["method"]
        try:
            if not isinstance(params, dict):
                raise ApiError(-1000, "Malformed request.")
            if method == "ping":
                return WsAnswer(_ok(req_id, {}))
            if method == "time":
                return WsAnswer(_ok(req_id, {"serverTime": self.clock()}))
            if method == "userDataStream.subscribe.signature":
                self.creds.check_ws(params, self.clock())
                return WsAnswer(_ok(req_id, {}), subscribe=True)
            if method == "userDataStream.unsubscribe":
                return WsAnswer(_ok(req_id, {}), unsubscribe=True)
            raise ApiError(-1000, f"Unsupported method '{method}'.")
        except ApiError as exc:
            return WsAnswer(_error(req_id, exc))


def _ok(req_id: object, result: dict[str, Any]) -> dict[str, Any]:
    return {"id": req_id, "status": 200, "result": result, "rateLimits": WS_RATE_LIMITS}


def _error(req_id: object, exc: ApiError) -> dict[str, Any]:
    return {"id": req_id, "status": exc.status, "error": exc.body()}


def event_frame(subscription_id: int, event: dict[str, Any]) -> dict[str, Any]:
    return {"subscriptionId": subscription_id, "event": event}
