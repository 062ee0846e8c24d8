"""`[venues.sim] runs_in`: several simulated venues in one process. The config names what is
wrong at load; the supervisor spawns one `venuesim.<host>` for the host and its guests,
and every guest's connector waits for that process. No processes."""

from __future__ import annotations

from pathlib import Path

import pytest

from actors.supervisor.restart_policy import StartQueue, child_specs, start_plan, unknown_actor
from protocol.config import SystemConfig, load_config
from protocol.exceptions import ConfigError
from protocol.sim_config import sim_guests, sim_process_of

SIM = '[venues.sim]\nreference_prices = { AAPL = "100" }\n'
CCXT = '[venues.ccxt]\napi_key_env = "K"\nsecret_env = "S"\nsymbols = ["BTC/USDT"]\n'
CCXT_SIM = '[venues.sim]\nreference_prices = { "BTC/USDT" = "100" }\n'  # a market per symbol


def _venue(name: str, runs_in: str = "", extra: str = "", sim: bool = True) -> str:
    text = f'[[venues]]\nname = "{name}"\n{extra}'
    if sim:
        text += (CCXT_SIM if "ccxt" in extra else SIM) + (
            f'runs_in = "{runs_in}"\n' if runs_in else ""
        )
    return text


def _load(tmp: Path, *venues: str) -> SystemConfig:
    path = tmp / "c.toml"
    path.write_text("".join(venues))
    return load_config(path)


def _error(tmp: Path, *venues: str) -> str:
    with pytest.raises(ConfigError) as info:
        _load(tmp, *venues)
    return str(info.value)


def test_guests_run_in_their_hosts_process_and_their_connectors_wait_for_it(
    short_tmp: Path,
) -> None:
    cfg = _load(
        short_tmp, _venue("a"), _venue("b", "a"), _venue("c"), _venue("d", "a"), _venue("e", "c")
    )
    assert [sim_process_of(v) for v in cfg.venues] == ["a", "a", "c", "a", "c"]
    assert sim_guests(cfg.venues, "a") == ("b", "d") and sim_guests(cfg.venues, "b") == ()
    specs = child_specs(cfg)
    sims = [(s.id, s.guests) for s in specs if s.kind == "venuesim"]
    assert sims == [("venuesim.a", ("b", "d")), ("venuesim.c", ("e",))]
    assert {s.id for s in specs if s.kind == "connector"} == {f"connector.{v}" for v in "abcde"}
    at_once, queue = start_plan(specs)
    assert at_once == ["venuesim.a", "venuesim.c"]
    assert queue.stages[0][1:] == [
        ["venuesim.a", "connector.a"], ["venuesim.a", "connector.b"],
        ["venuesim.c", "connector.c"], ["venuesim.a", "connector.d"],
        ["venuesim.c", "connector.e"],
    ]  # fmt: skip


def test_one_process_ready_moves_every_chain_waiting_for_it() -> None:
    """The start queue names a shared head once, and its READY moves every chain behind it
    (one chain only would leave the other venues' connectors unspawned: a start that never
    completes)."""
    q = StartQueue([[["risk", "oms"], ["sim.a", "conn.a"], ["sim.a", "conn.b"]], [["hb"]]])
    assert q.heads() == ["risk", "sim.a"]
    assert q.leave("sim.a") and q.heads() == ["risk", "conn.a", "conn.b"]
    assert not q.leave("sim.a")
    assert q.leave("conn.b") and q.leave("conn.a") and q.leave("risk") and q.leave("oms")
    assert q.heads() == ["hb"]


@pytest.mark.parametrize(
    ("venues", "expected"),
    [
        ((_venue("a"), _venue("b", "nowhere")), "names no FIX venue with a sim"),
        ((_venue("a", sim=False), _venue("b", "a")), "names no FIX venue with a sim"),
        ((_venue("a"), _venue("b", "b")), "must run in its own process"),
        ((_venue("a"), _venue("b", "a"), _venue("c", "b")), "must run in its own process"),
        ((_venue("a", extra='kind = "ccxt"\n' + CCXT), _venue("b", "a")), "FIX simulators only"),
        (
            (_venue("a"), _venue("b", "a", extra='host_group = "edge-1"\n')),
            "that venue is on host group 'core'",
        ),
    ],
    ids=["unknown", "no-sim", "itself", "chain", "ccxt-host", "other-host-group"],
)
def test_a_wrong_runs_in_is_refused_at_load_naming_the_venue(
    short_tmp: Path, venues: tuple[str, ...], expected: str
) -> None:
    message = _error(short_tmp, *venues)
    assert "sim.runs_in" in message and expected in message, message
    assert "venue 'b'" in message or "venue 'c'" in message, message


def test_a_ccxt_venue_cannot_be_a_guest(short_tmp: Path) -> None:
    guest = '[[venues]]\nname = "bx"\nkind = "ccxt"\n' + CCXT + CCXT_SIM + 'runs_in = "a"\n'
    message = _error(short_tmp, _venue("a"), guest)
    assert "venue 'bx'" in message and "FIX simulators only" in message, message
    # 'a' is a FIX venue with a sim: what is wrong is bx's kind, not the venue it names
    assert "names no FIX venue" not in message and "ccxt" in message, message


def test_an_operator_naming_a_guests_simulator_is_told_the_process_it_runs_in(
    short_tmp: Path,
) -> None:
    specs = child_specs(_load(short_tmp, _venue("a"), _venue("b", "a"), _venue("c")))
    assert unknown_actor("venuesim.b", specs) == (
        "unknown actor 'venuesim.b': venue 'b''s simulator runs in venuesim.a "
        "(sim.runs_in; its venues stop and start together)"
    )
    assert unknown_actor("venuesim.x", specs).startswith("unknown actor 'venuesim.x'; actors: ")
    assert unknown_actor("connector.b", specs).startswith("unknown actor 'connector.b'; actors")


def test_a_shared_sim_process_has_a_start_timeout_for_each_of_its_venues(short_tmp: Path) -> None:
    """A simulator process is READY once every one of its venues is set up, each replaying
    its whole engine log (about 30 us an order): one venue's `start_timeout_s` for all of
    them would kill a process with enough history before its READY, and again at every
    restart (all its venues down). It gets the timeout once for each venue it runs."""
    cfg = _load(short_tmp, _venue("a"), _venue("b", "a"), _venue("c", "a"), _venue("d"))
    timeouts = {s.id: s.start_timeout_s for s in child_specs(cfg)}
    base = cfg.supervisor.start_timeout_s
    assert timeouts["venuesim.a"] == 3 * base
    assert timeouts["venuesim.d"] == timeouts["connector.b"] == timeouts["oms"] == base
