"""The simulated exchange process: the Binance-like HTTP + WebSocket server of
`actors.exchangesim.server` on an asyncio loop stepped by the actor loop (`AsyncioBridge`).

Spawned by the supervisor as ``exchangesim.<venue>`` for every venue of kind "ccxt" with a
``[venues.sim]`` table, or alone with ``python -m actors.exchangesim run``. It is the
outside world: its state lives in ``<state_dir>/venues/<venue>/exchange/`` (one
append-only log, fsync'd before each answer), which our cold start never touches, and it
survives its own ``kill -9``.

Credentials: the values of the variables `[venues.ccxt] api_key_env` / `secret_env` name
(the supervisor passes them to this process); unset, the sim refuses to start (one line,
`sim_credentials_missing`, exit 2).

Port: `VenueCfg.port`, or with 0 the port of the previous incarnation (if still free) or
any free one; written atomically to ``<runtime_dir>/venuesim.<venue>.port`` before READY.

Control: ``status``, an exchange fault (`protocol.commands.ExchangeFault`, see
`actors.exchangesim.faults`) or `VenueFault` "clear", on the actor's ROUTER
(``python -m actors.exchangesim control``) or forwarded by the supervisor.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
import zlib
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any

from actors.exchangesim.auth import Credentials
from actors.exchangesim.book import Exchange
from actors.exchangesim.faults import FAULT_KINDS, FaultError, Faults
from actors.exchangesim.rest import RestApi
from actors.exchangesim.server import ExchangeServer
from actors.exchangesim.store import open_store
from actors.exchangesim.wsapi import WsApi
from actors.runtime.actor import Actor
from actors.runtime.aio import AsyncioBridge
from actors.runtime.durable import write_atomic
from actors.runtime.peer import Replier
from actors.venuesim.store import SimStore
from protocol.codec import Envelope
from protocol.commands import Command, ExchangeFault, Status, VenueFault
from protocol.config import SimCfg, VenueCfg
from protocol.messages import ControlReply, ControlRequest, ErrorCode, Message
from protocol.paths import read_sim_port, sim_port_file

EXIT_CONFIG = 2
SYNC_INTERVAL_S = 1.0
START_TIMEOUT_S = 10.0


def credentials(vcfg: VenueCfg, environ: dict[str, str]) -> Credentials | str:
    """The account's key and secret from the environment, or the line saying what is missing."""
    assert vcfg.ccxt is not None
    names = (vcfg.ccxt.api_key_env, vcfg.ccxt.secret_env)
    missing = [n for n in names if not environ.get(n)]
    if missing:
        return f"exchangesim {vcfg.name}: credential variable(s) {', '.join(missing)} unset"
    return Credentials(environ[names[0]], environ[names[1]])


class ExchangeSimActor(Actor):
    kind = "exchangesim"
    guarded = False  # the outside world: its ROUTER serves the fault tools, no orders

    def setup(self) -> None:
        name = self.args.venue or self.actor_id.partition(".")[2]
        vcfg = self.cfg.venue(name)
        creds = credentials(vcfg, dict(os.environ))
        if isinstance(creds, str):
            self.log.error("sim_credentials_missing", reason=creds)
            print(creds, file=sys.stderr)
            raise SystemExit(EXIT_CONFIG)
        sim = vcfg.sim or SimCfg()
        self.venue_name = name
        self.store: SimStore = open_store(self.cfg.state_path, name)
        seed = int(self.args.extra.get("seed", zlib.crc32(name.encode())))
        try:
            self.exchange = Exchange(
                sim, self.store, seed, commission_rate=_decimal(self.args.extra.get("commission"))
            )
        except ValueError as exc:  # a market the config no longer has, or not BASE/QUOTE
            self.log.error("sim_config_invalid", reason=str(exc))
            print(f"exchangesim {name}: {exc}", file=sys.stderr)
            raise SystemExit(EXIT_CONFIG) from None
        self.faults = Faults()
        for kind, value in sim.faults.items():
            try:
                self.faults.apply(kind, value)
            except FaultError as exc:
                self.log.error("sim_fault_invalid", kind=kind, error=str(exc))
        rest = RestApi(self.exchange, creds, self.server_ms)
        self.server = ExchangeServer(rest, WsApi(creds, self.server_ms), self.faults, self.log)
        self.bridge = AsyncioBridge(self, self.log)
        previous = read_sim_port(self.cfg.runtime_path, name) if vcfg.port == 0 else None
        port = self._listen(vcfg.host, previous or vcfg.port, fallback=bool(previous))
        write_atomic(
            sim_port_file(self.cfg.runtime_path, name), f"{port}\n".encode(), durable=False
        )
        self.bridge.spawn(self._liquidity(sim.liquidity_interval_s), name="liquidity")
        self._synced_step = self.exchange.step
        self.call_every(SYNC_INTERVAL_S, self._sync)
        self.log.info(
            "sim_listening", host=vcfg.host, port=port, book_id=self.store.book_id,
            **self.exchange.snapshot(),
        )  # fmt: skip

    def _listen(self, host: str, port: int, *, fallback: bool) -> int:
        try:
            return self.bridge.run_until_complete(self.server.start(host, port), START_TIMEOUT_S)
        except OSError:
            if not fallback:
                raise
        return self.bridge.run_until_complete(self.server.start(host, 0), START_TIMEOUT_S)

    def server_ms(self) -> int:
        """The exchange's clock: wall time (ms) plus the `clock_skew_ms` fault."""
        return int(time.time() * 1000) + self.faults.clock_skew_ms

    async def _liquidity(self, interval_s: float) -> None:
        while True:
            await asyncio.sleep(interval_s)
            self.server.publish(self.exchange.liquidity_step(self.server_ms()))

    def _sync(self) -> None:
        """Quiet liquidity steps are written lazily (operations are fsync'd at once): flush
        the latest one now and then, and only if there is one."""
        if self.exchange.step != self._synced_step:
            self._synced_step = self.exchange.step
            self.store.sync()

    # ------------------------------------------------------------------ loop hooks

    def on_stop(self) -> None:
        try:
            self.bridge.run_until_complete(self.server.close(), START_TIMEOUT_S)
        except (TimeoutError, OSError) as exc:
            self.log.warning("sim_close_failed", error=str(exc))
        self.bridge.close()
        self.store.close()

    def send_supervisor(self, body: Message, corr_id: str = "") -> None:
        if not self.args.extra.get("standalone"):
            super().send_supervisor(body, corr_id)

    def heartbeat_info(self) -> dict[str, Any]:
        return {"subscribers": self.server.subscribers, "faults": self.faults.active()}

    # ------------------------------------------------------------------ control

    def on_request(self, env: Envelope, reply: Replier) -> None:
        if isinstance(env.body, ControlRequest):
            self.on_control(env.body.command, reply)
        else:
            reply.reject(ErrorCode.BAD_REQUEST, f"{self.kind} does not serve {env.type}")

    def on_control(self, command: Command, respond: Callable[[ControlReply], None]) -> None:
        if isinstance(command, Status):
            respond(ControlReply(status="ok", data=self.status()))
            return
        clear = isinstance(command, VenueFault) and command.command == "clear"
        if not (isinstance(command, ExchangeFault) or clear):
            known = ", ".join(("status", *FAULT_KINDS))
            respond(
                ControlReply(status="error", reason=f"unknown command {command.command!r}; {known}")
            )
            return
        assert isinstance(command, ExchangeFault | VenueFault)
        kind = command.command
        try:
            parsed = self.faults.apply(kind, command.value)
        except FaultError as exc:
            respond(ControlReply(status="error", reason=str(exc)))
            return
        data: dict[str, Any] = {"kind": kind, "value": parsed, "faults": self.faults.active()}
        if kind == "drop_ws":
            data["dropped"] = self.server.connections
            self.bridge.spawn(self.server.drop_ws(), name="drop_ws")
        self.log.info("sim_fault_applied", kind=kind, value=parsed)
        respond(ControlReply(status="ok", reason=f"{kind} applied", data=data))

    def status(self) -> dict[str, Any]:
        return {
            "venue": self.venue_name,
            "book_id": self.store.book_id,
            "subscribers": self.server.subscribers,
            "faults": self.faults.active(),
            "requests": dict(self.server.requests),
            "events_sent": self.server.events_sent,
            **self.exchange.snapshot(),
        }


def _decimal(value: object) -> Decimal | None:
    """`--commission`'s rate; None (the config's, else Binance's) when absent or unreadable."""
    try:
        return Decimal(str(value)) if value is not None else None
    except InvalidOperation:
        return None
