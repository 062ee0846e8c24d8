"""`tradepulse journal inspect` on a real journal directory (written by `Journal` from a
real `OrderBook`'s records, no system running): the readable table (an event after the
snapshot still names its venue and symbol), the filters (order id, venue, kind, since and
until), `--json` (the records themselves, one per line), and the broken environments: no
journal yet (exit 3), a state dir that is a file (exit 2), a corrupt journal (exit 1 after
what comes before the bad frame), each one stderr line, never a traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from actors.oms.exec_quarantine import quarantine_record
from actors.oms.journal import Journal, inspect
from actors.oms.order_book import OrderBook
from actors.oms.orders import Outcome
from protocol.messages import ExecReport, OrdType, RiskVerdict, Side, SubmitOrder
from supervisor import main
from tests.helpers import REPO_ROOT, SUPERVISOR, make_config, to_toml

D = Decimal
T0 = int(datetime(2026, 1, 2, 10, 0, tzinfo=UTC).timestamp() * 1e9)
MIN = 60 * 10**9


def _write_journal(state: Path) -> None:
    """o1 BUY 10 AAPL at simA (new, approved, accepted, one fill) at 10:00-10:03; a snapshot;
    then o1's second fill at 10:10 and o2 SELL 5 MSFT at simB at 10:20."""
    book = OrderBook()
    journal, _ = Journal.open(state / "oms", fsync=False)

    def put(out: Outcome) -> None:
        assert out.applied, out.reason
        for rec in out.records:
            journal.append(rec)

    def order(coid: str, venue: str, symbol: str, side: Side, ts: int) -> None:
        msg = SubmitOrder(client_order_id=coid, venue=venue, symbol=symbol, side=side,
                          qty=D(10), order_type=OrdType.LIMIT, price=D(100))  # fmt: skip
        put(book.submit(msg, ts))
        put(book.risk_verdict(RiskVerdict(client_order_id=coid, approved=True), ts + MIN))
        found = book.get(coid)
        assert found is not None
        ack = ExecReport(venue=venue, exec_id=f"A-{coid}", kind="accepted",
                         cl_ord_id=found.cl_ord_id)  # fmt: skip
        put(book.apply_exec(ack, ts + 2 * MIN))

    order("o1", "simA", "AAPL", Side.BUY, T0)
    put(book.apply_fill("o1", "E1", D(4), D("99.5"), T0 + 3 * MIN))
    journal.write_snapshot(book.to_dict())
    put(book.apply_fill("o1", "E2", D(6), D("99.75"), T0 + 10 * MIN))
    order("o2", "simB", "MSFT", Side.SELL, T0 + 20 * MIN)
    journal.commit()
    journal.close()


def _cli(tmp_path: Path, capsys: pytest.CaptureFixture[str], *argv: str,
         state: Path | None = None) -> tuple[int, str, str]:  # fmt: skip
    cfg = tmp_path / "config.toml"
    cfg.write_text(to_toml(make_config(venues=("simA", "simB"))))
    runtime = "/tmp/tp-never-created"  # only named (ipc paths must stay short), never made
    state_dir = str(state or tmp_path / "state")
    argv = ("--state-dir", state_dir, "--runtime-dir", runtime, *argv)
    code = main(["journal", "inspect", "--config", str(cfg), *argv])
    out, err = capsys.readouterr()
    return code, out, err


def _rows(out: str) -> list[list[str]]:
    return [line.split() for line in out.splitlines()[1:]]


def test_the_table_names_every_record_with_its_order_venue_and_symbol(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _write_journal(tmp_path / "state")
    code, out, err = _cli(tmp_path, capsys)
    assert (code, err) == (0, "")
    head = out.splitlines()[0].split()
    assert head == ["TIME", "SEQ", "KIND", "ORDER", "VENUE", "SYMBOL", "SIDE", "QTY", "PRICE",
                    "STATUS", "DETAIL"]  # fmt: skip
    rows = _rows(out)
    snapshot = rows[0]
    assert snapshot[2:7] == ["snapshot", "o1", "simA", "AAPL", "BUY"]
    position = rows[1]  # the snapshot's position row
    assert position[2:5] == ["snapshot", "-", "simA"] and position[6:8] == ["-", "4"]
    fill = rows[2]  # after the snapshot: its venue and symbol come from the snapshot
    assert fill == ["2026-01-02T10:10:00.000Z", "2", "fill", "o1", "simA", "AAPL", "BUY", "6",
                    "99.75", "FILLED", "exec", "E2"]  # fmt: skip
    kinds = [r[2] for r in rows]
    assert kinds == ["snapshot", "snapshot", "fill", "new", "event", "event"]
    assert rows[-1][2:10] == ["event", "o2", "simB", "MSFT", "SELL", "-", "-", "ACCEPTED"]


def test_filters_by_order_venue_kind_and_time(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _write_journal(tmp_path / "state")
    _, out, _ = _cli(tmp_path, capsys, "--order-id", "o2")
    assert {r[3] for r in _rows(out)} == {"o2"} and len(_rows(out)) == 3
    _, out, _ = _cli(tmp_path, capsys, "--venue", "simA", "--kind", "fill")
    assert [(r[2], r[3], r[7]) for r in _rows(out)] == [("fill", "o1", "6")]
    _, out, _ = _cli(tmp_path, capsys, "--kind", "new", "--kind", "fill")
    assert [r[2] for r in _rows(out)] == ["fill", "new"]
    _, out, _ = _cli(tmp_path, capsys, "--since", "2026-01-02T10:15:00Z",
                     "--until", "2026-01-02T10:21:00Z")  # fmt: skip
    assert [(r[2], r[3]) for r in _rows(out)] == [("new", "o2"), ("event", "o2")]
    code, out, _ = _cli(tmp_path, capsys, "--order-id", "nope")
    assert (code, out.strip()) == (0, "no records match")


def test_json_prints_the_records_themselves_one_per_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Unfiltered: exactly what `inspect` yields (the chaos checker replays it); filtered:
    only the records with a row the filters keep."""
    _write_journal(tmp_path / "state")
    code, out, _ = _cli(tmp_path, capsys, "--json")
    expected = [json.loads(json.dumps(i, default=str)) for i in inspect(tmp_path / "state/oms")]
    assert code == 0 and [json.loads(line) for line in out.splitlines()] == expected
    _, out, _ = _cli(tmp_path, capsys, "--json", "--kind", "fill")
    [only] = [json.loads(line) for line in out.splitlines()]
    assert only["kind"] == "record" and only["data"]["exec_id"] == "E2"


def test_before_any_run_it_says_so_and_exits_3(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _cli(tmp_path, capsys)
    assert (code, out) == (3, "")
    assert err.count("\n") == 1 and "no OMS journal at" in err and "has not run" in err


def test_a_state_dir_that_is_a_file_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "afile").write_text("")
    code, out, err = _cli(tmp_path, capsys, state=tmp_path / "afile")
    assert (code, out) == (2, "")
    assert err.count("\n") == 1 and "Not a directory" in err


def test_a_corrupt_journal_prints_what_precedes_it_and_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _write_journal(tmp_path / "state")
    items = list(inspect(tmp_path / "state/oms"))
    second = items[2]  # the second record after the snapshot (o2's new), one more follows
    seg = Path(second["file"])
    data = bytearray(seg.read_bytes())
    data[second["offset"] + second["length"] - 1] ^= 0xFF  # its CRC no longer matches
    seg.write_bytes(bytes(data))
    code, out, err = _cli(tmp_path, capsys)
    assert code == 1
    assert [r[2] for r in _rows(out)] == ["snapshot", "snapshot", "fill"]
    assert err.count("\n") == 1 and "corrupt at offset" in err and "Traceback" not in err


@pytest.mark.parametrize("kind", ["fifo", "dir"])
def test_a_segment_that_is_not_a_regular_file_is_named_and_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str
) -> None:
    """A FIFO in a segment's place hung `journal inspect` for good; a directory there was
    reported as '/proc/self/fd/N: Is a directory'. Now one line naming the file, exit 2."""
    _write_journal(tmp_path / "state")
    seg = Path(list(inspect(tmp_path / "state/oms"))[-1]["file"])
    seg.unlink()
    if kind == "fifo":
        os.mkfifo(seg)
    else:
        seg.mkdir()
    code, out, err = _cli(tmp_path, capsys)
    assert (code, out) == (2, "no records match\n")
    why = (
        "not a regular file (a pipe, a FIFO or a device)" if kind == "fifo" else "it is a directory"
    )
    assert err == f"tradepulse journal inspect: cannot read {seg.parent}: {seg}: {why}\n"


@pytest.mark.parametrize("as_json", [False, True])
def test_a_journal_that_changed_at_every_try_says_run_again_and_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
    as_json: bool,
) -> None:  # fmt: skip
    """The OMS snapshotting at every try of the walk (`JournalChanged`): one stderr line
    saying so, exit 1, not a 'corrupt' verdict on a healthy journal."""
    from actors.oms import journal_walk

    _write_journal(tmp_path / "state")
    monkeypatch.setattr(journal_walk, "ATTEMPTS", 2)
    real = journal_walk._live_segments

    def racing(d: Path, start: int | None) -> object:
        snap = d / "snapshot.bin"  # replaced by a new file, as the OMS writes one
        (d / "snapshot.new").write_bytes(snap.read_bytes())
        os.replace(d / "snapshot.new", snap)
        return real(d, start)

    monkeypatch.setattr(journal_walk, "_live_segments", racing)
    code, out, err = _cli(tmp_path, capsys, *(["--json"] if as_json else []))
    assert code == 1 and out.strip() in ("", "no records match")
    assert err.count("\n") == 1 and "changed while read" in err and "run again" in err
    assert "corrupt" not in err


def test_the_table_streams_in_fixed_columns(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each row is printed as it is read, not after the walk (the rows of the first items
    are out while the walk is still going), its columns at fixed places."""
    from actors.oms import journal_walk
    from actors.supervisor.commands import journal as command

    _write_journal(tmp_path / "state")
    seen_mid_walk: list[str] = []

    def watched(directory: Path) -> Iterator[dict[str, Any]]:
        for i, item in enumerate(journal_walk.walk(directory)):
            if i == 2:
                sys.stdout.flush()
                seen_mid_walk.append(capsys.readouterr().out)
            yield item

    monkeypatch.setattr(command, "walk", watched)
    code, out, _ = _cli(tmp_path, capsys)
    out = seen_mid_walk[0] + out
    lines = out.splitlines()
    assert code == 0 and len(lines) == 1 + 6
    assert len(seen_mid_walk[0].splitlines()) == 1 + 3  # header, the snapshot's 2 rows, a fill
    at = lines[0].index("KIND")
    assert {line[at:].split()[0] for line in lines[1:]} == {"snapshot", "fill", "new", "event"}


def test_a_quarantined_execution_is_listed_with_its_venue_and_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An `exec_quarantined` record (actors/oms/exec_quarantine.py) is a row of its own,
    found by `--kind exec_quarantined` and `--venue`, naming the exec id and the error."""
    _write_journal(tmp_path / "state")
    journal, _ = Journal.open(tmp_path / "state" / "oms", fsync=False)
    report = ExecReport(venue="simA", exec_id="EQ", kind="fill", cl_ord_id="o1")
    journal.append(quarantine_record(report, ValueError("boom"), T0 + 30 * MIN))
    journal.commit()
    journal.close()
    code, out, err = _cli(tmp_path, capsys, "--kind", "exec_quarantined", "--venue", "simA")
    assert (code, err) == (0, "")
    [row] = _rows(out)
    assert row[2:5] == ["exec_quarantined", "-", "simA"] and "quarantined" in row
    assert {"EQ", "(fill)", "o1", "ValueError:", "boom"} <= set(row)


def test_into_a_closed_pipe_it_exits_0_without_blaming_the_state_dir(tmp_path: Path) -> None:
    """`journal inspect | head -2` on a journal longer than what the reader takes: the
    reader is gone while rows are still printed; the command ends quietly (exit 0, nothing
    on stderr), not `cannot read <state>/oms: [Errno 32] Broken pipe` (the state-dir error;
    exit 2 when rows got through before the pipe broke, as `| head -2` of a long journal
    does). `-u`: every row is written at once, as a long journal's rows are."""
    _write_journal(tmp_path / "state")
    cfg = tmp_path / "config.toml"
    cfg.write_text(to_toml(make_config(venues=("simA", "simB"))))
    state, runtime = str(tmp_path / "state"), "/tmp/tp-never-created"  # never made
    argv = [sys.executable, "-u", str(SUPERVISOR), "journal", "inspect", "--config", str(cfg),
            "--state-dir", state, "--runtime-dir", runtime]  # fmt: skip
    proc = subprocess.Popen(argv, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None
    proc.stdout.close()
    _, err = proc.communicate(timeout=60)
    assert (proc.returncode, err.decode()) == (0, "")
