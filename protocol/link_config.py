"""Placement and the link between hosts: `[[venues]] host_group` and the `[link]` table
(re-exported by `protocol.config`; docs/architecture.md, "Across hosts").

Each venue's connector (and its embedded simulator) runs on the supervisor of its host
group: `core` (the default: the one that also runs risk, the OMS and the heartbeat) or an
edge group (`tradepulse run --host-group edge-a`). The core binds `[link] bind`, an edge
connects to `[link] connect`, over tcp with CurveZMQ: each supervisor's key pair is
`<keys_dir>/<its host group>.key_secret`, the core accepts exactly the public keys
`<keys_dir>/<group>.key` of the edge groups its venues name, an edge only `core.key`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Protocol

from pydantic import BaseModel, ConfigDict, Field, StrictBool

from protocol.exceptions import ConfigError

CORE = "core"
GROUP_PATTERN = r"[a-z0-9][a-z0-9_-]{0,23}"
HostGroup = Annotated[str, Field(pattern=f"^{GROUP_PATTERN}$")]
_TCP = re.compile(r"^tcp://(\*|[A-Za-z0-9_.:\[\]-]+):(\d{1,5})$")


class _Cfg(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class EdgeCfg(_Cfg):
    # the dead-man switch: an edge that has not heard the core for this long cancels the
    # open orders of its venues (FIX mass cancel)
    core_loss_cancel_s: Annotated[float, Field(gt=0, le=3600, allow_inf_nan=False)] = 30.0


class LinkCfg(_Cfg):
    bind: str = ""  # the core's listening endpoint, tcp://<address>:<port>
    connect: str = ""  # where the edges reach the core, tcp://<host>:<port>
    keys_dir: str = ""  # this host's key pair and the peers' public keys (protocol.curve_keys)
    allow_plaintext: StrictBool = False  # tcp without Curve: only on a trusted network, warned
    ping_interval_s: Annotated[float, Field(gt=0, le=10, allow_inf_nan=False)] = 0.5
    down_after_s: Annotated[float, Field(gt=0, le=60, allow_inf_nan=False)] = 3.0
    hwm: Annotated[int, Field(ge=10, le=1_000_000)] = 10_000  # messages queued per peer, each way
    edge: EdgeCfg = EdgeCfg()

    @property
    def keys_path(self) -> Path:
        return Path(self.keys_dir).resolve()


class Placed(Protocol):
    """A venue as placement sees it (`protocol.config.VenueCfg`)."""

    @property
    def name(self) -> str: ...
    @property
    def host_group(self) -> str: ...


def edge_groups(venues: Iterable[Placed]) -> list[str]:
    """The edge host groups the venues name, sorted (the core's peers)."""
    return sorted({v.host_group for v in venues} - {CORE})


def venues_of(venues: Iterable[Placed], group: str) -> list[str]:
    """The venues placed on `group`."""
    return [v.name for v in venues if v.host_group == group]


def check_link(link: LinkCfg, venues: Iterable[Placed]) -> None:
    """A `ConfigError` naming the field when venues are placed off the core and the link is
    not fully described (or an endpoint is not tcp://host:port)."""
    for key in ("bind", "connect"):
        value = getattr(link, key)
        if value and not _valid_tcp(value):
            raise ConfigError(f"link.{key}", f"{value!r} is not tcp://<host>:<port>")
    edges = edge_groups(venues)
    if not edges:
        return
    why = f"required: venues are placed on {', '.join(edges)}"
    for key in ("bind", "connect"):
        if not getattr(link, key):
            raise ConfigError(f"link.{key}", why)
    if not link.keys_dir and not link.allow_plaintext:
        raise ConfigError("link.keys_dir", f"{why} (or allow_plaintext = true)")


def check_host_group(group: str, venues: Iterable[Placed]) -> None:
    """`--host-group`: the core, or a group some venue is placed on."""
    known = edge_groups(venues)
    if group != CORE and group not in known:
        named = ", ".join(known) or "none"
        raise ConfigError("host_group", f"{group!r}: no venue is placed on it (edges: {named})")


def bind_address(link: LinkCfg, venues: Iterable[Placed]) -> tuple[str, int] | None:
    """(host, port) the core's link listens on; None when no venue is placed off the core."""
    return tcp_address(link.bind) if edge_groups(venues) else None


def tcp_address(endpoint: str) -> tuple[str, int] | None:
    """(host, port) of `tcp://host:port` (`*`: every address); None if it is not one."""
    m = _TCP.match(endpoint)
    if m is None:
        return None
    host = m.group(1).strip("[]")
    return ("0.0.0.0" if host == "*" else host), int(m.group(2))


def _valid_tcp(endpoint: str) -> bool:
    m = _TCP.match(endpoint)
    return m is not None and 0 < int(m.group(2)) < 65536
