"""The embedded simulated venue: the pure core (matching engine, synthetic market maker,
crash-safe store) that the venue process wraps with a FIX 4.4 acceptor.

    store = SimStore.open(state_dir)          # flock; replays the log
    venue = Venue(name, sim_cfg, store, seed)  # rebuilt exactly as it was
    events = venue.new_order(...)              # persisted (page cache) before returned
    store.sync()                               # fsync, batched by the caller
    inspect(state_dir)                         # read-only ground truth, JSON-serialisable
    replay_events(state_dir, after_exec_seq)   # reports persisted but perhaps never sent
"""

from actors.venuesim.engine import Venue
from actors.venuesim.model import (
    NO_ORDER_ID,
    STATUS_EXEC_ID,
    CancelReject,
    CxlRejReason,
    CxlRejResponseTo,
    Event,
    ExecEvent,
    ExecType,
    Fill,
    Order,
    OrdRejReason,
    OrdStatus,
    Position,
)
from actors.venuesim.store import SimStore, exec_seq, inspect, replay_events

__all__ = [
    "NO_ORDER_ID",
    "STATUS_EXEC_ID",
    "CancelReject",
    "CxlRejReason",
    "CxlRejResponseTo",
    "Event",
    "ExecEvent",
    "ExecType",
    "Fill",
    "Order",
    "OrdRejReason",
    "OrdStatus",
    "Position",
    "SimStore",
    "Venue",
    "exec_seq",
    "inspect",
    "replay_events",
]
