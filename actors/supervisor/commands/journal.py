"""`tradepulse journal inspect [--order-id ID] [--venue V] [--kind K] [--since T] [--until T]`:
the OMS journal as a table (time, seq, kind, order, venue, symbol, side, qty, price, status,
detail), oldest first; `--json` prints the records themselves, one JSON object per line
(`{file, offset, length, kind, data}`, those with a row the filters keep). It reads the
state dir itself, so it works whether the system runs or not: it opens every file it needs
before reading (`actors.oms.journal_walk`), trying again if the running OMS writes a
snapshot meanwhile. The table is printed as it is read (columns of a fixed width, a longer
cell widens its own row only), so the first rows appear at once and memory stays bounded.

Exit codes: 0; 1 the journal is corrupt (what comes before the bad frame is printed), or
it changed at every try (the OMS wrote snapshots meanwhile: run again); 2 the state dir or
journal cannot be read (permissions, not a directory); 3 no journal yet (the system never
ran with this state dir).
"""

from __future__ import annotations

import argparse
import json
import os
import stat
import sys
from pathlib import Path

from actors.oms.journal_rows import KINDS, Row, RowFilter, read_rows
from actors.oms.journal_walk import JournalChanged, walk
from actors.supervisor.commands.base import OperatorCommand
from actors.supervisor.commands.tables import cell, fmt_ts, when_arg
from actors.supervisor.ctl import EXIT_CONFIG, EXIT_FAILURE, EXIT_OK, EXIT_UNAVAILABLE
from protocol import paths
from protocol.config import SystemConfig
from protocol.exceptions import JournalCorrupt

_HEAD = ("TIME", "SEQ", "KIND", "ORDER", "VENUE", "SYMBOL", "SIDE", "QTY", "PRICE", "STATUS",
         "DETAIL")  # fmt: skip
_WIDTHS = (24, 6, 16, 20, 8, 8, 4, 10, 12, 16)  # DETAIL, the last, takes what it needs


def line(cells: tuple[str, ...]) -> str:
    """One streamed table line: each cell padded to its column's width."""
    padded = [c.ljust(w) for c, w in zip(cells, _WIDTHS, strict=False)]
    return "  ".join([*padded, *cells[len(_WIDTHS) :]]).rstrip()


def _cells(row: Row) -> tuple[str, ...]:
    return (
        fmt_ts(row.ts_ns), str(row.seq), row.kind, cell(row.order_id), cell(row.venue),
        cell(row.symbol), cell(row.side), cell(row.qty), cell(row.price), cell(row.status),
        row.detail,
    )  # fmt: skip


class Journal(OperatorCommand):
    """inspect the OMS journal (a table; --json: the records)"""

    name = "journal"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("action", choices=["inspect"], help="inspect: print the records")
        parser.add_argument("--order-id", help="only this client order id")
        parser.add_argument("--venue", help="only this venue")
        parser.add_argument(
            "--kind", action="append", choices=KINDS, help="only this record kind (repeatable)"
        )
        when = "ISO 8601 (UTC unless given) or an age like 10m, 2h"
        parser.add_argument("--since", type=when_arg, metavar="T", help=f"records from: {when}")
        parser.add_argument("--until", type=when_arg, metavar="T", help=f"records up to: {when}")

    def run(self, cfg: SystemConfig, ns: argparse.Namespace) -> int:
        try:
            return self._inspect(cfg, ns)
        except BrokenPipeError:  # `journal inspect | head`: the reader has what it wanted
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no flush error
            return EXIT_OK

    def _inspect(self, cfg: SystemConfig, ns: argparse.Namespace) -> int:
        directory = paths.oms_dir(cfg.state_path)
        problem = _unreadable(directory)
        if problem is not None:
            print(f"tradepulse journal inspect: {problem[1]}", file=sys.stderr)
            return problem[0]
        keep = RowFilter(ns.order_id, ns.venue, frozenset(ns.kind or ()), ns.since, ns.until)
        shown = 0
        code = EXIT_OK
        try:
            for item, kept in read_rows(walk(directory), keep):
                if ns.json:
                    print(json.dumps(item, default=str))
                    continue
                for r in kept:
                    if not shown:
                        print(line(_HEAD))
                    shown += 1
                    print(line(_cells(r)))
        except (JournalCorrupt, JournalChanged) as exc:
            print(f"tradepulse journal inspect: {exc}", file=sys.stderr)
            code = EXIT_FAILURE
        except BrokenPipeError:
            raise  # our reader left (`run`), not the journal
        except OSError as exc:  # a file became unreadable while we opened it
            print(f"tradepulse journal inspect: cannot read {directory}: {paths.os_error(exc)}",
                  file=sys.stderr)  # fmt: skip
            code = EXIT_CONFIG
        if not ns.json and not shown:
            print("no records match")
        return code


def _unreadable(directory: Path) -> tuple[int, str] | None:
    """(exit code, one line) if the journal directory is missing or cannot be read."""
    try:
        st = os.stat(directory)
        if not stat.S_ISDIR(st.st_mode):
            return EXIT_CONFIG, f"{directory} is not a directory"
        os.listdir(directory)
    except FileNotFoundError:
        why = "the system has not run with this state dir"
        return EXIT_UNAVAILABLE, f"no OMS journal at {directory}: {why}"
    except OSError as exc:  # e.g. PermissionError, a state dir that is a file (ENOTDIR)
        return EXIT_CONFIG, f"cannot read {directory}: {exc.strerror or exc}"
    return None
