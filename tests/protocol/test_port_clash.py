"""Two listeners the config pins to one port of one machine (simulators, the metrics
server, the core's end of the link) are refused at load, naming both and the port; what
binds nothing (a venue without a simulator, port 0) or binds on another machine (another
host group) or another address is accepted. No sockets: the ports are only numbers here."""

from __future__ import annotations

from pathlib import Path

import pytest

from protocol.config import SystemConfig, load_config
from protocol.exceptions import ConfigError

P = 47311  # any port: nothing binds in these tests
SIM = '[venues.sim]\nreference_prices = { AAPL = "100" }\n'
CCXT = '[venues.ccxt]\napi_key_env = "K"\nsecret_env = "S"\nsymbols = ["BTC/USDT"]\n'
LINK = '[link]\nconnect = "tcp://core.example:7100"\nallow_plaintext = true\n'
NO_METRICS = "[metrics]\nport = 0\n"


def _venue(name: str, port: int = P, *, sim: bool = True, extra: str = "", sim_extra: str = "",
           ccxt: bool = False) -> str:  # fmt: skip
    text = f'[[venues]]\nname = "{name}"\nport = {port}\n{extra}'
    if ccxt:
        text += 'kind = "ccxt"\n' + CCXT
    sim_table = SIM.replace("AAPL", '"BTC/USDT"') if ccxt else SIM  # a market per symbol
    return text + (sim_table + sim_extra if sim else "")


def _link(bind: str) -> str:
    return LINK + f'bind = "{bind}"\n'


def _load(tmp_path: Path, *parts: str, metrics_port: int | None = None) -> SystemConfig:
    path = tmp_path / "c.toml"
    path.write_text("".join(parts))
    return load_config(path, metrics_port=metrics_port)


def _refusal(tmp_path: Path, *parts: str, metrics_port: int | None = None) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        _load(tmp_path, *parts, metrics_port=metrics_port)
    return info.value


EDGE_A = 'host_group = "edge-a"\n'
EDGE_B = 'host_group = "edge-b"\n'


@pytest.mark.parametrize(
    ("parts", "field", "other"),
    [
        pytest.param((NO_METRICS, _venue("simA"), _venue("simB")),
                     "venues[simB].port", "venues[simA].port", id="two-fix-sims"),
        pytest.param((NO_METRICS, _venue("simA"), _venue("simB", sim_extra='runs_in = "simA"\n')),
                     "venues[simB].port", "venues[simA].port", id="runs-in-one-process"),
        pytest.param((NO_METRICS, _venue("simA"), _venue("bx", ccxt=True)),
                     "venues[bx].port", "venues[simA].port", id="fix-sim-and-ccxt-sim"),
        pytest.param((NO_METRICS, _venue("simA", extra='host = "0.0.0.0"\n'), _venue("simB")),
                     "venues[simB].port", "venues[simA].port", id="any-address-and-loopback"),
        pytest.param((NO_METRICS, _venue("simA", extra='host = "localhost"\n'), _venue("simB")),
                     "venues[simB].port", "venues[simA].port", id="localhost-is-loopback"),
        pytest.param((NO_METRICS, _venue("simA", extra='host = "::"\n'), _venue("simB")),
                     "venues[simB].port", "venues[simA].port", id="ipv6-any-is-dual-stack"),
        pytest.param((f"[metrics]\nport = {P}\n", _venue("simA")),
                     "venues[simA].port", "metrics.port", id="sim-on-the-metrics-port"),
        pytest.param((f'[metrics]\nhost = "0.0.0.0"\nport = {P}\n', _venue("simA")),
                     "venues[simA].port", "metrics.port", id="metrics-on-every-address"),
        pytest.param((NO_METRICS, _link(f"tcp://*:{P}"), _venue("simA"),
                      _venue("edgev", 0, sim=False, extra=EDGE_A)),
                     "venues[simA].port", "link.bind", id="sim-on-the-link-port"),
        pytest.param((f"[metrics]\nport = {P}\n", _link(f"tcp://127.0.0.1:{P}"),
                      _venue("edgev", 0, sim=False, extra=EDGE_A)),
                     "link.bind", "metrics.port", id="link-on-the-metrics-port"),
        pytest.param((f"[metrics]\nport = {P}\n", _link("tcp://*:7100"),
                      _venue("edgev", extra=EDGE_A)),
                     "venues[edgev].port", "metrics.port", id="edge-sim-on-the-edges-metrics"),
        pytest.param((NO_METRICS, _link("tcp://*:7100"), _venue("simA", extra=EDGE_A),
                      _venue("simB", extra=EDGE_A)),
                     "venues[simB].port", "venues[simA].port", id="two-sims-on-one-edge"),
    ],
)  # fmt: skip
def test_two_listeners_on_one_port_of_one_machine_are_refused_naming_both(
    tmp_path: Path, parts: tuple[str, ...], field: str, other: str
) -> None:
    """The later listener's key is the field; the message names the earlier one's key and
    the port, on one line."""
    err = _refusal(tmp_path, *parts)
    assert err.field == field, str(err)
    message = str(err)
    assert other in message and f"port {P}" in message and "\n" not in message, message


def test_the_refusal_names_both_simulators_and_the_port(tmp_path: Path) -> None:
    message = str(_refusal(tmp_path, NO_METRICS, _venue("simA"), _venue("simB")))
    assert message == (
        f"venues[simB].port: venue simB's simulator and venue simA's simulator"
        f" (venues[simA].port) both listen on port {P} of 127.0.0.1 (host group core):"
        " one of them could never bind it"
    )


def test_a_metrics_port_given_on_the_command_line_is_checked_like_the_file(
    tmp_path: Path,
) -> None:
    """`--metrics-port` overrides the file before validation: onto a simulator's port, it
    is refused; the same file with the default metrics port loads."""
    _load(tmp_path, _venue("simA"))
    err = _refusal(tmp_path, _venue("simA"), metrics_port=P)
    assert err.field == "venues[simA].port" and "metrics.port" in str(err), str(err)


@pytest.mark.parametrize(
    "parts",
    [
        pytest.param((NO_METRICS, _venue("a", sim=False), _venue("b", sim=False)),
                     id="two-sessions-at-one-broker"),
        pytest.param((f"[metrics]\nport = {P}\n", _venue("a", sim=False)),
                     id="a-broker-on-the-metrics-port"),
        pytest.param((_venue("simA", 0), _venue("simB", 0, sim_extra='runs_in = "simA"\n')),
                     id="port-0-twice"),
        pytest.param(("[metrics]\nport = 0\n", _venue("simA", 0)), id="port-0-metrics-and-sim"),
        pytest.param((NO_METRICS, _venue("simA", extra='host = "127.0.0.2"\n'), _venue("simB")),
                     id="two-loopback-addresses"),
        pytest.param((NO_METRICS, _venue("simA", extra='host = "::1"\n'),
                      _venue("simB", extra='host = "0.0.0.0"\n')),
                     id="ipv6-loopback-and-ipv4-any"),
        pytest.param((NO_METRICS, _link("tcp://*:7100"), _venue("simA"),
                      _venue("simB", extra=EDGE_A)), id="core-and-edge-sims"),
        pytest.param((NO_METRICS, _link("tcp://*:7100"), _venue("simA", extra=EDGE_A),
                      _venue("simB", extra=EDGE_B)), id="two-edges"),
        pytest.param((NO_METRICS, _link(f"tcp://*:{P}"), _venue("edgev", extra=EDGE_A)),
                     id="link-port-and-an-edge-sim"),
        pytest.param((NO_METRICS, f'[link]\nbind = "tcp://*:{P}"\n', _venue("simA")),
                     id="link-unbound-without-edges"),
        pytest.param((f"[metrics]\nport = {P}\n", _venue("a", sim=False, extra=EDGE_A),
                      _link("tcp://*:7100")), id="metrics-on-two-machines"),
    ],
)  # fmt: skip
def test_what_binds_nothing_or_elsewhere_loads(tmp_path: Path, parts: tuple[str, ...]) -> None:
    """A venue without a simulator only connects out; port 0 takes any free port; another
    host group is another machine; another specific address is another listener; the link
    binds nothing while every venue is on the core."""
    assert _load(tmp_path, *parts).venues
