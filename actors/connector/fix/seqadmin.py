"""The operator's override of a FIX session's next sequence numbers (`tradepulse fix seq`).

As QuickFIX allows (``setNextSenderMsgSeqNum`` / ``setNextTargetMsgSeqNum``), either
number may be set to any value, up or down, while the session runs or not: the operator
decides (a venue that reset its side, a store restored from a backup). The reason is
required and every change is logged at warning level (``fix_seq_set``, old and new
numbers, the reason, and who applied it). Effects on a live session: our next message
carries the new next-out; an inbound number below the new next-in ends the session
(MsgSeqNum too low), one above it opens a gap (ResendRequest). Lowering next-out drops
the kept messages from it on (see `FixStore.set_numbers`).

Three places apply it, all through `set_sequence`: the venue's connector (its running
store), the supervisor while that connector is not running, and the CLI while the system
is stopped (`open_and_set`: the store's lock says nobody else has it open).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from actors.connector.fix.events import Logger
from actors.connector.fix.store import STORE_NAME, FixStore


def set_sequence(
    store: FixStore,
    *,
    next_in: int | None,
    next_out: int | None,
    reason: str,
    log: Logger,
    applied_by: str,
) -> dict[str, Any]:
    """Apply the override to `store` (durable on return) and log it; the reply's data.
    ValueError for a number out of range (the wire model checks it first)."""
    old_in, old_out = store.next_in, store.next_out
    store.set_numbers(next_in, next_out)
    data: dict[str, Any] = {
        "old_next_in": old_in,
        "next_in": store.next_in,
        "old_next_out": old_out,
        "next_out": store.next_out,
        "reason": reason,
        "applied_by": applied_by,
    }
    log.warning("fix_seq_set", **data)
    return data


def open_and_set(
    directory: Path,
    *,
    next_in: int | None,
    next_out: int | None,
    reason: str,
    log: Logger,
    applied_by: str,
) -> dict[str, Any]:
    """`set_sequence` on the store in `directory`, opened (and locked) for the time of it:
    StateDirLocked while a connector holds it; FileNotFoundError when there is none."""
    if not (directory / STORE_NAME).exists():
        raise FileNotFoundError(f"no FIX store in {directory}")
    with FixStore(directory) as store:
        return set_sequence(
            store,
            next_in=next_in,
            next_out=next_out,
            reason=reason,
            log=log,
            applied_by=applied_by,
        )
