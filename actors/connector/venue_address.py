"""Where a connector finds its venue: the configured address, or for an embedded
simulated venue the port its process published in the runtime dir."""

from __future__ import annotations

from pathlib import Path

from actors.connector.fix.adapter import Address
from protocol.config import VenueCfg
from protocol.paths import sim_port_file


def ccxt_base_url(vcfg: VenueCfg, runtime_dir: Path) -> str | None:
    """Where a ccxt venue is: its `base_url`, the exchange's own URLs (""), or for a
    simulated exchange the port it published (None while it has not)."""
    if vcfg.ccxt is not None and vcfg.ccxt.base_url:
        return vcfg.ccxt.base_url
    if vcfg.sim is None:
        return ""
    address = venue_address(vcfg, runtime_dir)
    return None if address is None else f"http://{address[0]}:{address[1]}"


def venue_address(vcfg: VenueCfg, runtime_dir: Path) -> Address | None:
    """The venue's TCP address now: host/port from config, or for a simulated venue with
    port 0 the port its process published (None while it has not: not up yet)."""
    if vcfg.sim is None or vcfg.port != 0:
        return (vcfg.host, vcfg.port)
    try:
        text = sim_port_file(runtime_dir, vcfg.name).read_text().strip()
    except FileNotFoundError:
        return None
    if not text.isdigit() or not 0 < int(text) < 65536:
        return None
    return (vcfg.host, int(text))
