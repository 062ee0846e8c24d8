"""A connector's state file shorter than its header (empty included) is refused as corrupt,
never taken as a new file. Each is created whole (temp file, fsync, rename) and never cut
below its header, so a short one was damaged: taken as new, an emptied exec outbox lost the
executions the venue had been told we hold, and an emptied FIX store restarted the session
at MsgSeqNum 1 with nothing to resend."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from actors.connector import ledger, outbox
from actors.connector.ccxt import intents
from actors.connector.fix import store
from protocol.exceptions import JournalCorrupt
from protocol.paths import OUTBOX_NAME

STORES: dict[str, tuple[str, bytes, Callable[[Path], object]]] = {
    "exec_outbox": (OUTBOX_NAME, outbox._MAGIC, outbox.ExecOutbox),  # noqa: SLF001
    "fix_store": (store.STORE_NAME, store._MAGIC, store.FixStore),  # noqa: SLF001
    "fill_ledger": (ledger.LEDGER_NAME, ledger._MAGIC, ledger.FillLedger),  # noqa: SLF001
    "intent_log": ("intents.log", intents._MAGIC, intents.IntentLog),  # noqa: SLF001
}


@pytest.mark.parametrize("kind", sorted(STORES))
@pytest.mark.parametrize("keep", [0, 3], ids=["empty", "part_of_header"])
def test_a_state_file_shorter_than_its_header_is_refused(
    tmp_path: Path, kind: str, keep: int
) -> None:
    name, header, open_store = STORES[kind]
    path = tmp_path / name
    path.write_bytes(header[:keep])
    with pytest.raises(JournalCorrupt, match="shorter than its header") as err:
        open_store(tmp_path)
    assert err.value.path == str(path)
    assert path.read_bytes() == header[:keep]  # left as it was found, for the operator


@pytest.mark.parametrize("kind", sorted(STORES))
def test_a_missing_state_file_is_a_new_one(tmp_path: Path, kind: str) -> None:
    name, header, open_store = STORES[kind]
    made = open_store(tmp_path)
    assert (tmp_path / name).read_bytes().startswith(header)
    close = getattr(made, "close", None)
    if close is not None:
        close()
    open_store(tmp_path)  # and it opens again
