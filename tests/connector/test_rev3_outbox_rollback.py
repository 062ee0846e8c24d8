"""Review of the `unsent` branch (rev3): the runbook's rollback past this build says "wait
until every connector's `pending_execs` is 0, then shut down cleanly" - an older build
refuses an `unsent` execution. But the outbox keeps acknowledged records until it passes
`compact_bytes` (256 KiB), and an older build's loader validates every record, acked or
not: an `unsent` one acknowledged long ago still stops the older connector at its start
(JournalCorrupt "not an outbox record"). Fails on the branch as reviewed."""

from __future__ import annotations

from pathlib import Path

import msgpack

from actors.connector import outbox as fmt
from actors.connector.outbox import OUTBOX_NAME, ExecOutbox
from actors.runtime.frames import valid_frames
from protocol.messages import ExecReport


def _kinds_on_disk(directory: Path) -> list[str]:
    path = directory / OUTBOX_NAME
    data = path.read_bytes()
    kinds = []
    for frame in valid_frames(path, data, fmt._FRAME_MAGIC, len(fmt._MAGIC)):
        kind, body = msgpack.unpackb(frame.payload, raw=False)
        if kind == "x":
            kinds.append(body["kind"])
    return kinds


def test_a_clean_stop_with_nothing_pending_leaves_no_unsent_record_an_older_build_refuses(
    tmp_path: Path,
) -> None:
    outbox = ExecOutbox(tmp_path)
    unsent = ExecReport(venue="bn", exec_id="c1:unsent:1", kind="unsent", cl_ord_id="c1",
                        text="not sent: the session ended before it went out")  # fmt: skip
    outbox.add([unsent])
    outbox.flush()
    outbox.ack(["c1:unsent:1"])  # the OMS applied it: `pending_execs` 0
    outbox.close()  # the clean stop the runbook asks for
    assert not ExecOutbox(tmp_path).pending
    assert "unsent" not in _kinds_on_disk(tmp_path)
