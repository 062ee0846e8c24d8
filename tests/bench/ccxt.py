"""The ccxt connector next to the FIX connector, on the same machine, in the same run.

One system (supervisor, risk, OMS, heartbeat) with two venues: `simA`, a FIX connector and
the FIX venue simulator (`actors.venuesim`), and `bx`, a ccxt connector (ccxt.pro's
`binance`) and the local Binance-like exchange (`actors.exchangesim`, HTTP + WebSocket).

1. Latency, one order in flight: the client library submits a resting limit buy and the
   clock stops when the client's event stream shows it ACCEPTED (client -> OMS -> risk ->
   OMS -> connector -> venue -> connector -> OMS -> client). FIX and ccxt orders alternate,
   so both series see the same machine. `stages` splits each with the OMS journal's stamps;
   `approved_to_venue_accepted` is the connector + venue leg as the OMS sees it.
2. CPU per order of each connector and each venue process: psutil cpu_times deltas over
   the series divided by the orders it sent there, raw and net of the process's idle
   rate (measured for IDLE_S before the series: beats, timers, the ccxt user-data stream).
3. PSS (`memory_full_info().pss`) of the connectors and venue processes, idle (after the
   start) and after the series.
4. Floors of the ccxt leg, measured while the system idles, against a second exchange
   simulator (same config, its own state and runtime dirs: the connector's user-data
   stream never sees these orders): the raw HTTP round trip of GET /api/v3/ping and of a
   signed POST /api/v3/order (aiohttp, keep-alive, HMAC as Binance wants), and ccxt's own
   `create_order` from this process (ccxt.pro binance, as the connector builds it). The
   FIX path measured in (1) is the reference of the ccxt path: `ratio_p50_ccxt_vs_fix`.

That ccxt is loaded in the ccxt connector only is a test, not a figure:
tests/connector/ccxt/test_import_isolation.py. `python -m tests.bench --only ccxt`;
TP_BENCH_CCXT_ORDERS orders per venue; TP_BENCH_CCXT_PROFILE=FILE writes a cProfile (pstats)
of the in-process adapter's orders there.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import psutil

from protocol.messages import OrderEvent, OrderStatus
from tests.bench._stats import describe, host_info, percentile
from tests.bench.oms import _config as oms_config
from tests.bench.oms import _stages
from tests.helpers import REPO_ROOT, SystemUnderTest, eventually
from tests.system_ops import client, submit_when_open

ORDERS = int(os.environ.get("TP_BENCH_CCXT_ORDERS", "500"))
WARMUP = 30
IDLE_S = 5.0
FLOOR_ROUNDS = 300
FIX, CCXT = "simA", "bx"
PAIR, PAIR_ID = "BTC/USDT", "BTCUSDT"
KEY_ENV, SECRET_ENV = "TP_BENCH_BX_KEY", "TP_BENCH_BX_SECRET"
KEY, SECRET = "k" * 64, "s" * 64
# resting buys: FIX 1 AAPL at 95.00 (market 99.99 / 100.01); ccxt 0.0005 BTC at 57,000.00
# (reference 60,000; on the LOT_SIZE step, 28.5 USDT over the 5 USDT min notional)
FIX_ORDER = {"qty": "1", "price": "95.00"}
CCXT_ORDER = {"qty": "0.0005", "price": "57000.00"}
ROLES = {
    "fix_connector": f"connector.{FIX}",
    "ccxt_connector": f"connector.{CCXT}",
    "venuesim": f"venuesim.{FIX}",
    "exchangesim": f"exchangesim.{CCXT}",
}


def _config() -> dict[str, Any]:
    """`tests.bench.oms`'s quiet venue with its limits out of the way, and the ccxt venue
    on its simulated exchange, both with rate limits no series reaches."""
    cfg = oms_config()
    ccxt_venue = {
        "name": CCXT,
        "kind": "ccxt",
        "rate_limit_per_s": 1_000_000.0,
        "rate_burst": 100_000,
        "ccxt": {
            "exchange": "binance", "api_key_env": KEY_ENV, "secret_env": SECRET_ENV,
            "symbols": [PAIR], "position_baseline": {"BTC": "1000"},
        },
        "sim": {"reference_prices": {PAIR: "60000.00"}},
    }  # fmt: skip
    cfg["venues"] = [*cfg["venues"], ccxt_venue]
    return cfg


def _ms(values: list[float]) -> dict[str, float]:
    return describe(values, scale=1e3) | {"p99": round(percentile(values, 99) * 1e3, 3)}


# --------------------------------------------------------------------------- processes


def _processes(sut: SystemUnderTest) -> dict[str, psutil.Process]:
    pids = {a["id"]: a["pid"] for a in sut.status()["actors"] if a["pid"]}
    return {role: psutil.Process(pids[actor]) for role, actor in ROLES.items()}


def _cpu_s(procs: Mapping[str, psutil.Process]) -> dict[str, float]:
    out = {}
    for role, p in procs.items():
        t = p.cpu_times()
        out[role] = t.user + t.system
    return out


def _pss_mib(procs: Mapping[str, psutil.Process]) -> dict[str, float]:
    return {role: round(p.memory_full_info().pss / 2**20, 1) for role, p in procs.items()}


# --------------------------------------------------------------------------- 1. latency


def latency(sut: SystemUnderTest, n: int) -> dict[str, Any]:
    """`n` orders per venue, one in flight, FIX and ccxt alternately: submit -> ACCEPTED on
    the client's event stream, in seconds, by venue; and the wall time of the series."""
    samples: dict[str, list[float]] = {FIX: [], CCXT: []}
    stamps: dict[str, dict[str, tuple[int, int, int]]] = {FIX: {}, CCXT: {}}
    with client(sut) as c:
        c.subscribe()
        started = time.monotonic()
        for i in range(n + WARMUP):
            for venue, symbol, order in ((FIX, "AAPL", FIX_ORDER), (CCXT, PAIR, CCXT_ORDER)):
                coid = f"lat-{venue}-{i:05d}"
                t0 = time.time_ns()
                c.submit(venue, symbol, "BUY", order["qty"], "LIMIT", price=order["price"],
                         tif="GTC", client_order_id=coid)  # fmt: skip
                t1 = time.time_ns()
                for ev in c.events(timeout_s=10.0):
                    if isinstance(ev, OrderEvent) and ev.order.client_order_id == coid:
                        if ev.order.status is OrderStatus.ACCEPTED:
                            break
                        if ev.order.status is not OrderStatus.PENDING_SUBMIT:
                            raise AssertionError(f"{coid}: {ev.order.status.value}")
                else:
                    raise AssertionError(f"{coid}: no ACCEPTED event in 10 s")
                if i >= WARMUP:
                    t2 = time.time_ns()
                    samples[venue].append((t2 - t0) / 1e9)
                    stamps[venue][coid] = (t0, t1, t2)
        wall_s = time.monotonic() - started
    return {
        "wall_s": wall_s,
        "orders_per_venue": n + WARMUP,
        "submit_to_accepted_event_ms": {v: _ms(s) for v, s in samples.items()},
        "stages_ms": {v: _stages(sut, stamps[v]) for v in (FIX, CCXT)},
    }


# --------------------------------------------------------------------------- 4. floors


def _second_exchange(sut: SystemUnderTest) -> tuple[subprocess.Popen[bytes], str, Path]:
    """A second simulated exchange of venue `bx` (its own state and runtime dirs), and
    its base URL once it published its port."""
    from actors.connector.venue_address import ccxt_base_url

    state, runtime = sut.root / "fs", sut.root / "fr"
    proc = subprocess.Popen(
        [sys.executable, "-m", "actors.exchangesim", "run", "--config", str(sut.config_path),
         "--venue", CCXT, "--state-dir", str(state), "--runtime-dir", str(runtime)],
        cwd=REPO_ROOT, env={**os.environ, KEY_ENV: KEY, SECRET_ENV: SECRET},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    vcfg = sut.cfg.venue(CCXT)
    url = eventually(lambda: ccxt_base_url(vcfg, runtime), 20.0)
    return proc, url, runtime


def _signed(params: dict[str, str]) -> str:
    query = "&".join(f"{k}={v}" for k, v in params.items())
    signature = hmac.new(SECRET.encode(), query.encode(), hashlib.sha256).hexdigest()
    return f"{query}&signature={signature}"


async def _http_floors(url: str, n: int) -> dict[str, list[float]]:
    """GET /api/v3/ping and a signed POST /api/v3/order (a resting limit buy, as ccxt sends
    it: form body, RESULT answer), one in flight on one keep-alive connection."""
    import aiohttp

    out: dict[str, list[float]] = {"ping": [], "order": []}
    headers = {"X-MBX-APIKEY": KEY, "Content-Type": "application/x-www-form-urlencoded"}
    async with aiohttp.ClientSession(headers=headers) as http:
        for i in range(n + WARMUP):
            start = time.perf_counter()
            async with http.get(f"{url}/api/v3/ping") as r:
                await r.read()
                assert r.status == 200, r.status
            if i >= WARMUP:
                out["ping"].append(time.perf_counter() - start)
        for i in range(n + WARMUP):
            body = _signed({
                "symbol": PAIR_ID, "side": "BUY", "type": "LIMIT", "timeInForce": "GTC",
                "quantity": CCXT_ORDER["qty"], "price": CCXT_ORDER["price"],
                "newClientOrderId": f"raw-{i:05d}", "newOrderRespType": "RESULT",
                "timestamp": str(time.time_ns() // 1_000_000),
            })  # fmt: skip
            start = time.perf_counter()
            async with http.post(f"{url}/api/v3/order", data=body) as r:
                answer = await r.json()
                assert r.status == 200 and answer["status"] == "NEW", answer
            if i >= WARMUP:
                out["order"].append(time.perf_counter() - start)
    return out


async def _ccxt_floor(sut: SystemUnderTest, url: str, n: int) -> list[float]:
    """ccxt.pro binance's create_order from this process, built as the connector builds
    it: the library's own cost (params, signing, parsing the answer) on top of the HTTP."""
    from actors.connector.ccxt.exchange import new_exchange

    ccfg = sut.cfg.venue(CCXT).ccxt
    assert ccfg is not None
    ex = new_exchange(ccfg, {KEY_ENV: KEY, SECRET_ENV: SECRET}, url)
    samples = []
    try:
        await ex.load_markets()
        for i in range(n + WARMUP):
            start = time.perf_counter()
            order = await ex.create_order(
                PAIR, "limit", "buy", float(CCXT_ORDER["qty"]), float(CCXT_ORDER["price"]),
                {"clientOrderId": f"lib-{i:05d}", "timeInForce": "GTC"},
            )  # fmt: skip
            assert order["status"] == "open", order
            if i >= WARMUP:
                samples.append(time.perf_counter() - start)
    finally:
        await ex.close()
    return samples


def adapter_leg_s(sut: SystemUnderTest, url: str, n: int) -> tuple[list[float], float, float]:
    """The ccxt adapter in this process (no zmq hop, the connector's turn: intent synced,
    then sent) against the second exchange: PlaceOrder -> its `new` execution; the CPU
    seconds of this process per order; and the median count of fdatasyncs between the
    PlaceOrder and the execution reaching the listener (in series on the order's path;
    the connector's outbox adds one more after the listener). With
    TP_BENCH_CCXT_PROFILE=FILE, a cProfile of the measured orders is written there."""
    from actors.connector.ccxt.adapter import CcxtAdapter
    from protocol.messages import OrdType, PlaceOrder, Side, TimeInForce
    from tests.bench.connector import _ignore, _more_than, _Quiet
    from tests.connector.fix.support import RecordingListener, TestLoop

    loop, listener = TestLoop(), RecordingListener()
    adapter = CcxtAdapter(
        loop, listener, sut.cfg.venue(CCXT), store_dir=sut.root / "fa", log=_Quiet(),
        environ={KEY_ENV: KEY, SECRET_ENV: SECRET}, base_url=lambda: url,
    )  # fmt: skip
    loop.after_turn.append(adapter.flush)
    syncs = [0]
    real_fdatasync = os.fdatasync

    def counting_fdatasync(fd: int) -> None:
        syncs[0] += 1
        real_fdatasync(fd)

    synced_at_exec: list[int] = []
    listener.on_execs_hook = lambda _reports: synced_at_exec.append(syncs[0])
    in_series: list[int] = []
    profile_to = os.environ.get("TP_BENCH_CCXT_PROFILE")
    profiler = None
    samples = []
    try:
        adapter.connect()
        loop.run_until(lambda: listener.ups, 20.0)
        for i in range(n + WARMUP):
            if i == WARMUP:
                cpu0 = time.process_time()
                if profile_to:
                    import cProfile

                    profiler = cProfile.Profile()
                    profiler.enable()
            order = PlaceOrder(
                cl_ord_id=f"ad-{i:05d}", symbol=PAIR, side=Side.BUY,
                qty=Decimal(CCXT_ORDER["qty"]), order_type=OrdType.LIMIT,
                price=Decimal(CCXT_ORDER["price"]), tif=TimeInForce.GTC,
            )  # fmt: skip
            seen, synced = len(listener.execs), syncs[0]
            os.fdatasync = counting_fdatasync
            try:
                start = time.perf_counter()
                adapter.place(order, _ignore)
                adapter.flush()  # as the actor's turn does after a request
                loop.run_until(_more_than(listener.execs, seen), 10.0)
                elapsed = time.perf_counter() - start
            finally:
                os.fdatasync = real_fdatasync
            if i >= WARMUP:
                samples.append(elapsed)
                in_series.append(synced_at_exec[-1] - synced)
        cpu_s = (time.process_time() - cpu0) / n
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(profile_to)
    finally:
        adapter.close()
    return samples, cpu_s, statistics.median(in_series)


def floors(sut: SystemUnderTest, n: int) -> dict[str, Any]:
    proc, url, _ = _second_exchange(sut)
    try:
        sim = psutil.Process(proc.pid)
        http = asyncio.run(_http_floors(url, n))
        cpu0 = sim.cpu_times()
        lib = asyncio.run(_ccxt_floor(sut, url, n))
        cpu1 = sim.cpu_times()
        adapter, adapter_cpu_s, adapter_syncs = adapter_leg_s(sut, url, n)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    sim_ms = (cpu1.user + cpu1.system - cpu0.user - cpu0.system) / (n + WARMUP) * 1e3
    return {
        "raw_http_ping_ms": _ms(http["ping"]),
        "raw_http_signed_order_ms": _ms(http["order"]),
        "ccxt_create_order_in_process_ms": _ms(lib),
        "ccxt_adapter_in_process_ms": _ms(adapter),
        "ccxt_adapter_in_process_cpu_ms_per_order": round(adapter_cpu_s * 1e3, 3),
        "ccxt_adapter_fdatasyncs_before_exec": adapter_syncs,
        "exchangesim_cpu_ms_per_ccxt_order": round(sim_ms, 3),
    }


# --------------------------------------------------------------------------- the section


def run() -> dict[str, Any]:
    sut = SystemUnderTest(
        venues=(FIX,), overrides=_config(), env={KEY_ENV: KEY, SECRET_ENV: SECRET}
    )
    try:
        sut.start(timeout_s=60.0)
        with client(sut) as c:  # intake open at both venues (market orders: not left open)
            submit_when_open(c, FIX, qty="1", price=None, client_order_id="probe-fix")
            submit_when_open(c, CCXT, qty="0.001", price=None, client_order_id="probe-ccxt",
                             tif="IOC")  # fmt: skip
        procs = _processes(sut)
        pss_idle = _pss_mib(procs)
        cpu0, t0 = _cpu_s(procs), time.monotonic()
        time.sleep(IDLE_S)  # the idle rate of each process (not a synchronisation)
        cpu1, t1 = _cpu_s(procs), time.monotonic()
        lat = latency(sut, ORDERS)
        cpu2, t2 = _cpu_s(procs), time.monotonic()
        pss_after = _pss_mib(procs)
        floor = floors(sut, FLOOR_ROUNDS)
        load = round(os.getloadavg()[0], 2)
    finally:
        sut.destroy()
    orders = lat["orders_per_venue"]
    idle_rate = {r: (cpu1[r] - cpu0[r]) / (t1 - t0) for r in ROLES}
    raw = {r: (cpu2[r] - cpu1[r]) / orders * 1e3 for r in ROLES}
    net = {r: (cpu2[r] - cpu1[r] - idle_rate[r] * (t2 - t1)) / orders * 1e3 for r in ROLES}
    acc = lat["submit_to_accepted_event_ms"]
    return {
        "orders_per_venue": ORDERS,
        "submit_to_accepted_event_ms": acc,
        "stages_ms": lat["stages_ms"],
        "series_wall_s": round(lat["wall_s"], 2),
        "cpu_ms_per_order": {r: round(v, 3) for r, v in raw.items()},
        "cpu_ms_per_order_net_of_idle": {r: round(v, 3) for r, v in net.items()},
        "idle_cpu_pct": {r: round(v * 100, 2) for r, v in idle_rate.items()},
        "pss_idle_mib": pss_idle,
        "pss_after_mib": pss_after,
        "floors": floor,
        "ratio_p50_ccxt_vs_fix": round(acc[CCXT]["median"] / acc[FIX]["median"], 2),
        "ratio_p99_ccxt_vs_fix": round(acc[CCXT]["p99"] / acc[FIX]["p99"], 2),
        "ratio_p50_ccxt_vs_ccxt_in_process": round(
            acc[CCXT]["median"] / floor["ccxt_create_order_in_process_ms"]["median"], 2
        ),
        "ratio_p50_ccxt_vs_raw_http_order": round(
            acc[CCXT]["median"] / floor["raw_http_signed_order_ms"]["median"], 2
        ),
        "host": {**host_info(), "loadavg_1m": load},
        "ts": datetime.now().astimezone().isoformat(timespec="seconds"),
    }


def summary(r: dict[str, Any]) -> list[str]:
    acc, f = r["submit_to_accepted_event_ms"], r["floors"]

    def line(label: str, d: dict[str, Any]) -> str:
        return f"{label:<44} p50 {d['median']:>7.2f} ms  p99 {d['p99']:>7.2f} ms  (n={d['n']})"

    out = [
        line("submit -> ACCEPTED, FIX (simA)", acc[FIX]),
        line("submit -> ACCEPTED, ccxt (bx)", acc[CCXT]),
    ]
    for venue in (FIX, CCXT):
        leg = r["stages_ms"][venue].get("approved_to_venue_accepted")
        if leg:
            out.append(line(f"  {venue}: OMS approved -> venue accepted", leg))
    out += [
        line("ccxt adapter in-process, PlaceOrder -> new", f["ccxt_adapter_in_process_ms"]),
        line("ccxt create_order in-process (floor)", f["ccxt_create_order_in_process_ms"]),
        line("raw HTTP signed POST /order (floor)", f["raw_http_signed_order_ms"]),
        line("raw HTTP GET /ping (floor)", f["raw_http_ping_ms"]),
        f"ratio p50 ccxt / FIX {r['ratio_p50_ccxt_vs_fix']}, p99 {r['ratio_p99_ccxt_vs_fix']}; "
        f"ccxt / in-process ccxt {r['ratio_p50_ccxt_vs_ccxt_in_process']}; "
        f"ccxt / raw HTTP order {r['ratio_p50_ccxt_vs_raw_http_order']}",
        "CPU ms/order (net of idle): "
        + ", ".join(
            f"{k} {v} ({r['cpu_ms_per_order_net_of_idle'][k]})"
            for k, v in r["cpu_ms_per_order"].items()
        ),
        f"  exchange sim alone, ccxt in-process orders: "
        f"{f['exchangesim_cpu_ms_per_ccxt_order']} ms/order; ccxt adapter in-process "
        f"{f['ccxt_adapter_in_process_cpu_ms_per_order']} ms/order (this process), "
        f"{f['ccxt_adapter_fdatasyncs_before_exec']} fdatasyncs before its execution",
        "idle CPU %: " + ", ".join(f"{k} {v}" for k, v in r["idle_cpu_pct"].items()),
        "PSS MiB idle -> after: "
        + ", ".join(f"{k} {v} -> {r['pss_after_mib'][k]}" for k, v in r["pss_idle_mib"].items()),
        f"load {r['host']['loadavg_1m']}, series {r['series_wall_s']} s",
    ]
    return out
