"""The history: every client invocation and its outcome, one JSON object per line.

Each load client appends to its own file (`client-<i>.jsonl`), flushed per line, so a
client killed mid-write loses at most a torn last line, which `read_history` drops.

An `Entry` is one attempt of one operation. A retry (after `Timeout` or `NotReady`) is a
new entry with the same `client_order_id` and `attempt + 1`: that is the idempotency
contract under test, so both attempts are kept.

Client order ids are deterministic from the seed, the client index and a counter, and
match the OMS's safe pattern `[A-Za-z0-9_-]{1,24}` so the venue ClOrdID equals the client
order id (cancel / replace requests add `.c{n}` / `.r{n}`).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any, Literal

Op = Literal["submit", "cancel", "replace"]
Outcome = Literal["ok", "error", "timeout"]

SAFE_ID = re.compile(r"[A-Za-z0-9_-]{1,24}")
# errors that say the OMS will not act on the request (nothing was created or changed)
DEFINITIVE_ERRORS = frozenset(
    {
        "RiskRejected",
        "KillSwitchEngaged",
        "VenueDown",
        "InvalidOrder",
        "ClientError",
        "UnknownOrder",
    }
)
# errors after which the client retries with the same client order id
RETRIED_ERRORS = frozenset({"Timeout", "NotReady"})


def client_order_id(seed: int, client: int, n: int) -> str:
    """The n-th order id of client `client` in the run seeded `seed` (<= 24 safe chars)."""
    coid = f"k{seed & 0xFFFFFFFF:x}-{client}-{n}"
    assert SAFE_ID.fullmatch(coid), coid
    return coid


@dataclass(frozen=True, slots=True)
class Entry:
    """One attempt of one client operation."""

    client: int
    seq: int  # the operation's number within the client (all attempts share it)
    op: Op
    attempt: int  # 1-based
    client_order_id: str
    venue: str
    symbol: str
    side: str
    qty: str  # Decimal as str; for a replace: the requested new qty
    price: str | None  # for a replace: the requested new price
    order_type: str
    tif: str
    start_ns: int
    end_ns: int
    outcome: Outcome
    error: str = ""  # exception class name when outcome != "ok"
    detail: str = ""  # error text, truncated
    status: str = ""  # the OrderView status returned with an ok reply

    @property
    def latency_s(self) -> float:
        return (self.end_ns - self.start_ns) / 1e9

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Entry:
        return cls(**d)


@dataclass
class HistoryWriter:
    """Appends entries to one client's JSONL file, one flushed line each."""

    path: Path
    _fh: IO[str] | None = field(default=None, init=False, repr=False)

    def record(self, entry: Entry) -> None:
        if self._fh is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = self.path.open("a", encoding="utf-8")
        self._fh.write(entry.to_json() + "\n")
        self._fh.flush()

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


def iter_file(path: Path) -> Iterator[Entry]:
    """Entries of one file; a torn (unparseable) last line is dropped, a bad middle line
    raises ValueError naming the line."""
    lines = path.read_text(encoding="utf-8").splitlines()
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            yield Entry.from_dict(json.loads(line))
        except (ValueError, TypeError) as exc:
            if i == len(lines) - 1:
                return
            raise ValueError(f"{path}:{i + 1}: bad history line: {exc}") from None


def read_history(paths: Iterable[Path]) -> list[Entry]:
    """Every entry of every file, ordered by start time."""
    entries = [e for p in paths for e in iter_file(p)]
    entries.sort(key=lambda e: (e.start_ns, e.client, e.seq, e.attempt))
    return entries


def history_files(directory: Path) -> list[Path]:
    return sorted(directory.glob("client-*.jsonl"))


# --------------------------------------------------------------------------- per-order view


SubmitResult = Literal["acked", "refused", "indeterminate"]


@dataclass(frozen=True, slots=True)
class SubmitSummary:
    """What the client learned about one order's submission, over all its attempts."""

    client_order_id: str
    venue: str
    result: SubmitResult
    attempts: int
    ever_unanswered: bool  # some attempt timed out (its request may still be acted upon)
    error: str = ""  # the definitive error of a refused submit


def summarize_submits(entries: Iterable[Entry]) -> dict[str, SubmitSummary]:
    """Per client order id: acked if any attempt was acknowledged; refused if the last
    answer was a definitive error and none was ok; otherwise indeterminate."""
    by_id: dict[str, list[Entry]] = {}
    for e in entries:
        if e.op == "submit":
            by_id.setdefault(e.client_order_id, []).append(e)
    out: dict[str, SubmitSummary] = {}
    for coid, attempts in by_id.items():
        attempts.sort(key=lambda e: e.attempt)
        unanswered = any(e.outcome == "timeout" for e in attempts)
        if any(e.outcome == "ok" for e in attempts):
            result: SubmitResult = "acked"
            error = ""
        elif attempts[-1].outcome == "error" and attempts[-1].error in DEFINITIVE_ERRORS:
            result, error = "refused", attempts[-1].error
        else:
            result, error = "indeterminate", attempts[-1].error
        out[coid] = SubmitSummary(coid, attempts[0].venue, result, len(attempts), unanswered, error)
    return out


def outcome_counts(entries: Iterable[Entry]) -> dict[str, dict[str, int]]:
    """Per operation: attempts by outcome ("ok", "timeout", or the error class name)."""
    counts: dict[str, Counter[str]] = {}
    for e in entries:
        key = "ok" if e.outcome == "ok" else ("timeout" if e.outcome == "timeout" else e.error)
        counts.setdefault(e.op, Counter())[key] += 1
    return {op: dict(sorted(c.items())) for op, c in sorted(counts.items())}
