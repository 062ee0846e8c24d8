"""The simulated exchange's HTTP + WebSocket server (aiohttp): Binance's REST paths
(`actors.exchangesim.rest`) and the WebSocket API with its user-data stream
(`actors.exchangesim.wsapi`), with the faults of `actors.exchangesim.faults` applied.

Everything runs on one asyncio loop (the actor steps it; tests run it directly). Each
WebSocket connection has one writer task and queue, so replies and events go out in order;
`publish()` is synchronous and may be called from anywhere on that loop's thread.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from typing import Any

import structlog
from aiohttp import WSMsgType, web

from actors.exchangesim.errors import RATE_LIMIT_MSG
from actors.exchangesim.faults import HOLD_S, RETRY_AFTER_S, Faults
from actors.exchangesim.rest import Request, RestApi
from actors.exchangesim.wire import in_microseconds
from actors.exchangesim.wsapi import WsApi, event_frame

WS_PATH = "/ws-api/v3"
ORDER_PATH = "/api/v3/order"  # POST: a create (`delay_create_ms`); POST, DELETE: `html_answer`
HTML_PAGE = "<html><head><title>502 Bad Gateway</title></head><body>bad gateway</body></html>"
PING_INTERVAL_S = 20.0  # Binance pings every 20 s and drops a connection that never pongs
SHUTDOWN_S = 1.0  # at close, handlers still running (a withheld answer) are cancelled
_Item = tuple[float, str]  # (monotonic time it is due, text)


class _Session:
    """One WebSocket connection: its writer task and, once subscribed, its stream id."""

    def __init__(self, ws: web.WebSocketResponse) -> None:
        self.ws = ws
        self.queue: asyncio.Queue[_Item | None] = asyncio.Queue()
        self.subscription: int | None = None
        self.subscriptions_made = 0  # Binance numbers a connection's subscriptions from 0
        self.writer = asyncio.get_running_loop().create_task(self._write())

    def put(self, text: str, due: float = 0.0) -> None:
        self.queue.put_nowait((due, text))

    async def _write(self) -> None:
        while (item := await self.queue.get()) is not None:
            due, text = item
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            if self.ws.closed:
                return
            try:
                await self.ws.send_str(text)
            except (ConnectionError, RuntimeError):
                return


class ExchangeServer:
    def __init__(self, rest: RestApi, ws_api: WsApi, faults: Faults, log: Any = None) -> None:
        self.rest = rest
        self.ws_api = ws_api
        self.faults = faults
        self.log = log or structlog.get_logger("exchangesim")
        self._sessions: set[_Session] = set()
        self.requests: Counter[str] = Counter()  # "METHOD /path" -> how many
        self.events_sent = 0
        self.app = web.Application()
        self.app.router.add_get(WS_PATH, self._ws)
        self.app.router.add_route("*", "/api/{tail:.*}", self._rest)
        self._runner: web.AppRunner | None = None
        self._held: set[asyncio.Task[None]] = set()

    async def start(self, host: str, port: int) -> int:
        """Listen; returns the bound port (`port` 0: any free one)."""
        self._runner = web.AppRunner(
            self.app, access_log=None, handle_signals=False, shutdown_timeout=SHUTDOWN_S
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port, reuse_address=True)
        await site.start()
        server = site._server  # noqa: SLF001 - aiohttp exposes the bound port nowhere else
        assert isinstance(server, asyncio.base_events.Server)
        return int(server.sockets[0].getsockname()[1])

    async def close(self) -> None:
        for s in list(self._sessions):
            s.queue.put_nowait(None)
            await s.ws.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # ------------------------------------------------------------------ user data

    @property
    def subscribers(self) -> int:
        return sum(1 for s in self._sessions if s.subscription is not None)

    def publish(self, events: list[dict[str, Any]]) -> None:
        """Push user-data events to every subscribed connection (faults: delay, twice, in
        microseconds, cut short)."""
        if not events:
            return
        due = time.monotonic() + self.faults.delay_trade_events_ms / 1000.0
        garbled = [self.faults.take("garble_events") for _ in events]
        for s in self._sessions:
            if s.subscription is None:
                continue
            for event, garble in zip(events, garbled, strict=True):
                sent = in_microseconds(event) if self.faults.timestamps_us else event
                text = json.dumps(event_frame(s.subscription, sent))
                if garble:  # truncated JSON: a frame cut short by a broken proxy
                    text = text[: len(text) // 2]
                s.put(text, due)
                self.events_sent += 1
                if self.faults.duplicate_trade_events and event.get("e") == "executionReport":
                    s.put(text, due)
                    self.events_sent += 1

    @property
    def connections(self) -> int:
        return len(self._sessions)

    async def drop_ws(self) -> None:
        """Close every WebSocket now (the `drop_ws` fault)."""
        for s in list(self._sessions):
            s.subscription = None
            s.queue.put_nowait(None)
        await asyncio.gather(
            *(s.ws.close(code=1001, message=b"drop_ws") for s in list(self._sessions)),
            return_exceptions=True,
        )

    # ------------------------------------------------------------------ handlers

    async def _rest(self, request: web.Request) -> web.StreamResponse:
        self.requests[f"{request.method} {request.path}"] += 1
        if self.faults.take("http_5xx"):
            return web.Response(status=503, text="Service Unavailable.")
        if self.faults.take("rate_limit"):
            headers = {"Retry-After": str(RETRY_AFTER_S)}
            body = {"code": -1003, "msg": RATE_LIMIT_MSG}
            return web.json_response(body, status=429, headers=headers)
        text = await request.text()
        if request.method == "POST" and request.path == ORDER_PATH and self.faults.delay_create_ms:
            self.log.info("sim_create_delayed", delay_ms=self.faults.delay_create_ms)
            await asyncio.sleep(self.faults.delay_create_ms / 1000.0)  # the create lands late
        req = Request(
            method=request.method,
            path=request.path,
            query=request.rel_url.raw_query_string,
            body=text,
            api_key=request.headers.get("X-MBX-APIKEY"),
        )
        resp = self.rest.handle(req)
        self.publish(resp.events)
        order_request = req.path == ORDER_PATH and req.method in ("POST", "DELETE")
        if order_request and self.faults.take("html_answer"):  # processed, answered by a proxy
            self.log.info("sim_answer_html", method=req.method, path=req.path)
            return web.Response(status=200, text=HTML_PAGE, content_type="text/html")
        if resp.order_placed and self.faults.take("timeout_after_accept"):
            self.log.info("sim_answer_withheld", path=req.path, hold_s=HOLD_S)
            await asyncio.sleep(HOLD_S)
        body = in_microseconds(resp.body) if self.faults.timestamps_us else resp.body
        return web.json_response(body, status=resp.status)

    async def _ws(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(autoping=True, heartbeat=PING_INTERVAL_S)
        await ws.prepare(request)
        session = _Session(ws)
        self._sessions.add(session)
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                answer = self.ws_api.handle(msg.data)
                if answer.subscribe:  # no await until the reply is queued: no event first
                    session.subscription = session.subscriptions_made
                    session.subscriptions_made += 1
                    answer.reply["result"]["subscriptionId"] = session.subscription
                elif answer.unsubscribe:
                    session.subscription = None
                session.put(json.dumps(answer.reply))
        finally:
            self._sessions.discard(session)
            session.queue.put_nowait(None)
        return ws
