"""The connector's crash-safe exec outbox: what the OMS has not acked survives a crash."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import msgpack
import pytest

from actors.connector.outbox import ExecOutbox
from actors.runtime.frames import encode_frame
from actors.runtime.idring import IdRing
from protocol.exceptions import JournalCorrupt
from protocol.messages import ExecKind, ExecReport, OrderStatus
from protocol.paths import OUTBOX_NAME


def report(i: int, kind: ExecKind = "fill") -> ExecReport:
    return ExecReport(
        venue="v",
        exec_id=f"X{i}",
        kind=kind,
        cl_ord_id=f"c{i}",
        last_qty=Decimal("1.5"),
        last_px=Decimal("100.01"),
        cum_qty=Decimal(i),
    )


def test_unacked_executions_survive_a_crash_in_order(tmp_path: Path) -> None:
    """Synced executions not acked are reloaded by the next incarnation, in venue order;
    acked ones are not (even when the ack record was only flushed, not fsynced)."""
    box = ExecOutbox(tmp_path)
    box.add([report(i) for i in range(1, 6)])
    box.sync()
    box.ack(["X2", "X4"])
    box.flush()
    # no close(): the process dies here
    again = ExecOutbox(tmp_path)
    assert list(again.pending) == ["X1", "X3", "X5"]
    assert again.pending["X3"] == report(3)


def test_duplicates_and_recently_acked_are_not_added_again(tmp_path: Path) -> None:
    """A FIX resend (PossDup) of a pending or already-acked execution is not new."""
    box = ExecOutbox(tmp_path)
    assert box.add([report(1), report(2)]) == [report(1), report(2)]
    assert box.add([report(1)]) == []
    box.ack(["X1"])
    assert box.add([report(1)]) == []
    box.sync()
    again = ExecOutbox(tmp_path)
    assert again.add([report(1)]) == [] and list(again.pending) == ["X2"]


def test_ack_returns_only_ids_that_were_pending(tmp_path: Path) -> None:
    box = ExecOutbox(tmp_path)
    box.add([report(1)])
    assert box.ack(["X1", "nope"]) == ["X1"]
    assert box.ack(["X1"]) == []


def test_torn_tail_is_cut_and_the_rest_kept(tmp_path: Path) -> None:
    box = ExecOutbox(tmp_path)
    box.add([report(1), report(2)])
    box.sync()
    box.close()
    path = tmp_path / OUTBOX_NAME
    data = path.read_bytes()
    path.write_bytes(data[:-5])  # the last record was being written
    again = ExecOutbox(tmp_path)
    assert list(again.pending) == ["X1"]
    again.add([report(3)])
    again.close()
    assert list(ExecOutbox(tmp_path).pending) == ["X1", "X3"]


def test_corrupt_record_before_good_ones_is_an_error(tmp_path: Path) -> None:
    box = ExecOutbox(tmp_path)
    box.add([report(1), report(2), report(3)])
    box.close()
    path = tmp_path / OUTBOX_NAME
    data = bytearray(path.read_bytes())
    data[20] ^= 0xFF  # inside the first record's payload
    path.write_bytes(bytes(data))
    with pytest.raises(JournalCorrupt):
        ExecOutbox(tmp_path)


def test_damaged_length_in_the_middle_is_an_error_not_a_torn_tail(tmp_path: Path) -> None:
    """A length field hit by corruption must not make the records behind it look like a
    torn tail: cutting them would lose executions the venue counts as delivered."""
    box = ExecOutbox(tmp_path)
    box.add([report(1), report(2), report(3)])
    box.close()
    path = tmp_path / OUTBOX_NAME
    data = bytearray(path.read_bytes())
    data[len(b"TPOUTB2\n") + 2] = 0x7F  # first frame's length: now past the end of the file
    path.write_bytes(bytes(data))
    with pytest.raises(JournalCorrupt, match="valid record follows"):
        ExecOutbox(tmp_path)
    assert path.read_bytes() == bytes(data)  # nothing cut


def test_outbox_of_an_older_format_is_refused_by_name(tmp_path: Path) -> None:
    (tmp_path / OUTBOX_NAME).write_bytes(b"TPOUTB1\n" + bytes(12))
    with pytest.raises(JournalCorrupt, match="format b'1' of an older build"):
        ExecOutbox(tmp_path)


def _v2_file(records: list[tuple[str, object]]) -> bytes:
    """An outbox as the format-2 build wrote it: its header, then the same frames."""
    frames = [encode_frame(msgpack.packb(list(r), use_bin_type=True), b"TX") for r in records]
    return b"".join([b"TPOUTB2\n", *frames])


def test_format_2_outbox_is_upgraded_with_its_fix_status_codes_mapped(tmp_path: Path) -> None:
    """An outbox of the build that kept FIX OrdStatus (39) codes is read, not refused: the
    pending reports get our status ('2' -> FILLED, '' -> None), an acked one stays acked,
    and the file is format 3 from then on."""
    old = [report(i).model_dump(mode="json") | {"ord_status": c} for i, c in ((1, "2"), (2, "0"))]
    old.append(report(3).model_dump(mode="json") | {"ord_status": ""})
    path = tmp_path / OUTBOX_NAME
    path.write_bytes(_v2_file([("x", old[0]), ("x", old[1]), ("x", old[2]), ("a", ["X2"])]))

    upgraded = ExecOutbox(tmp_path)
    assert {k: r.ord_status for k, r in upgraded.pending.items()} == {
        "X1": OrderStatus.FILLED,
        "X3": None,
    }
    upgraded.close()
    assert path.read_bytes().startswith(b"TPOUTB3\n")
    again = ExecOutbox(tmp_path)
    assert list(again.pending) == ["X1", "X3"]
    assert again.pending["X1"].ord_status is OrderStatus.FILLED


def test_file_is_truncated_once_everything_is_acked(tmp_path: Path) -> None:
    box = ExecOutbox(tmp_path, compact_bytes=0)
    box.add([report(i) for i in range(50)])
    box.sync()
    big = (tmp_path / OUTBOX_NAME).stat().st_size
    box.ack([f"X{i}" for i in range(50)])
    box.sync()
    assert (tmp_path / OUTBOX_NAME).stat().st_size < big / 10
    box.add([report(99)])
    box.close()
    assert list(ExecOutbox(tmp_path).pending) == ["X99"]


def test_a_large_file_is_rewritten_with_only_the_pending(tmp_path: Path) -> None:
    box = ExecOutbox(tmp_path, max_bytes=4000)
    box.add([report(0)])
    for i in range(1, 60):
        box.add([report(i)])
        box.ack([f"X{i}"])
        box.sync()
    assert (tmp_path / OUTBOX_NAME).stat().st_size < 4000
    box.close()
    assert list(ExecOutbox(tmp_path).pending) == ["X0"]


def test_acked_ids_are_the_newest_bound_and_exact(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The acked ids are remembered first in, first out up to `remember_acked` (the oldest
    is forwarded again on a resend, the newer are not, also after a restart), and by the
    id itself: with every id's hash forced equal, a new execution is still forwarded."""
    monkeypatch.setattr(IdRing, "_hash", staticmethod(lambda key: 7))
    box = ExecOutbox(tmp_path, remember_acked=3)
    box.add([report(i) for i in range(1, 5)])
    box.ack(["X1", "X2", "X3", "X4"])
    assert box.add([report(5)]) == [report(5)]  # same hash as the acked ones, not acked
    assert box.add([report(i) for i in range(2, 5)]) == []
    assert box.add([report(1)]) == [report(1)]  # the oldest acked was forgotten
    box.close()
    again = ExecOutbox(tmp_path, remember_acked=3)
    assert list(again.pending) == ["X5", "X1"]
    assert again.add([report(i) for i in range(2, 5)]) == []
