"""Conformance over every FIX message either side emits anywhere in the test session.

The connector and the simulator write every message they send to their FIX message log
(actors/connector/fix/msglog.py: ``fix/<venue>/messages/`` and
``venues/<venue>/fix/messages/`` under a state dir). Each such log's OUT entries are the
messages that side emitted; `scan` checks every one against the FIX 4.4 table
(tests/venuesim/conformance.py). IN entries are not checked here: they are the other
side's OUT (checked in its own log) or a test playing a peer on purpose.

Test state dirs are removed when a test ends, so the harnesses call `collect(root)` just
before they remove one (SystemUnderTest.destroy, the connector rig, the actor stubs, the
short_tmp fixture, the chaos harness); the conftest's session-finish hook also scans
pytest's own temp dir, then fails the session if any message did not conform
(`verdict`).

A test of a venue dialect that departs from FIX 4.4 on purpose (e.g.
`status_request_instrument = false`: H without Symbol/Side) says so with `allow(root,
msg_type, problem)`: a marker file in its state dir lists the exact problems allowed for
the logs below it; every other problem still fails the session.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from actors.connector.fix.msglog import LOG_NAME, OUT, REDACTED, parse_line
from tests.venuesim.conformance import message_problems

MAX_REPORTED = 20
ALLOWED_NAME = "fix_deviations.allowed"  # lines "<MsgType>\t<problem>"


def allow(root: Path, msg_type: str, problem: str) -> None:
    """Let the message logs under `root` carry `problem` in messages of `msg_type` (a
    dialect that departs from FIX 4.4 on purpose)."""
    root.mkdir(parents=True, exist_ok=True)
    with (root / ALLOWED_NAME).open("a") as fh:
        fh.write(f"{msg_type}\t{problem}\n")


def _allowed(path: Path) -> set[tuple[str, str]]:
    """The deviations allowed by markers in the log's directories or above."""
    found: set[tuple[str, str]] = set()
    for parent in path.parents:
        marker = parent / ALLOWED_NAME
        if marker.is_file():
            for line in marker.read_text().splitlines():
                msg_type, _, problem = line.partition("\t")
                found.add((msg_type, problem))
    return found


@dataclass
class Scan:
    """What the scans of a session saw."""

    files: Counter[str] = field(default_factory=Counter)  # side -> log files
    messages: Counter[str] = field(default_factory=Counter)  # side -> OUT messages checked
    problems: list[str] = field(default_factory=list)
    systems: int = 0  # whole systems with simulated venues collected
    torn: int = 0  # lines a kill -9 cut short (`cut_short`): not checked
    _seen: set[Path] = field(default_factory=set)

    def add(self, other: Scan) -> None:
        self.files.update(other.files)
        self.messages.update(other.messages)
        self.problems.extend(other.problems)
        self.torn += other.torn

    def to_wire(self) -> dict[str, Any]:
        """What a pytest-xdist worker hands its controller (`workeroutput` is plain data)."""
        return {
            "files": dict(self.files),
            "messages": dict(self.messages),
            "problems": list(self.problems),
            "systems": self.systems,
            "torn": self.torn,
        }

    def add_wire(self, wire: dict[str, Any]) -> None:
        """Merge a worker's `to_wire()`."""
        self.add(Scan(Counter(wire["files"]), Counter(wire["messages"]), list(wire["problems"])))
        self.systems += int(wire["systems"])
        self.torn += int(wire.get("torn", 0))


SESSION = Scan()


def side_of(path: Path) -> str:
    """``venue`` for a simulator's log (under venues/<venue>/fix/), else ``connector``."""
    parts = path.parts
    return "venue" if "venues" in parts and "fix" in parts else "connector"


def scan(root: Path, *, seen: set[Path] | None = None) -> Scan:
    """Check every OUT message of every message log under `root` (files in `seen` are
    skipped, then added to it)."""
    result = Scan()
    for path in sorted(root.rglob(LOG_NAME + "*")):
        if not path.is_file() or path.parent.name != "messages":
            continue
        key = path.resolve()
        if seen is not None:
            if key in seen:
                continue
            seen.add(key)
        side = side_of(path)
        result.files[side] += 1
        allowed = _allowed(path)
        for number, line in enumerate(path.read_bytes().split(b"\n"), 1):
            entry = parse_line(line) if line else None
            if entry is None or entry.direction != OUT:
                continue
            if cut_short(entry.raw):
                result.torn += 1
                continue
            result.messages[side] += 1
            wrong = message_problems(entry.raw, redacted=b"=" + REDACTED + b"\x01" in entry.raw)
            if allowed:
                msg_type = entry.raw.partition(b"\x0135=")[2].partition(b"\x01")[0].decode()
                wrong = [w for w in wrong if (msg_type, w) not in allowed]
            if wrong:
                where = f"{path}:{number}"
                shown = entry.raw.decode("latin-1").replace("\x01", "|")
                result.problems.append(f"{side} {where}: {'; '.join(wrong)}: {shown[:300]}")
    return result


def cut_short(raw: bytes) -> bool:
    """A message whose log line a kill -9 cut: no trailer, and fewer bytes after its
    BodyLength than it says. A fatal signal ends a write between pages (a short write);
    the side had sent the message whole (its log is written after the bytes are on the
    wire), so what is missing is the log's, not the wire's."""
    if b"\x0110=" in raw:
        return False
    _, sep, rest = raw.partition(b"\x019=")
    length, sep2, body = rest.partition(b"\x01")
    return bool(sep and sep2) and length.isdigit() and len(body) < int(length)


def collect(root: Path, *, system: bool = False) -> Scan:
    """Scan `root` into the session's record (call before a test removes its state dir);
    `system`: a whole system with simulated venues ran there, so both sides' logs are
    expected somewhere in the session. Returns what this scan found."""
    found = scan(root, seen=SESSION._seen) if root.exists() else Scan()
    SESSION.add(found)
    SESSION.systems += int(system)
    return found


def verdict(result: Scan) -> tuple[bool, list[str]]:
    """(conforms, report lines) of a session's scans."""
    lines = [
        "FIX conformance over the message logs: "
        + ", ".join(
            f"{side}: {result.files[side]} files, {result.messages[side]} messages sent"
            for side in ("connector", "venue")
        )
        + (f" ({result.torn} log lines cut short by a kill, not checked)" if result.torn else "")
    ]
    ok = not result.problems
    if result.systems and not (result.files["connector"] and result.files["venue"]):
        ok = False
        lines.append(f"{result.systems} systems ran, yet a side's message log was never seen")
    if result.problems:
        lines.append(f"{len(result.problems)} non-conforming messages, e.g.:")
        lines += [f"  {p}" for p in result.problems[:MAX_REPORTED]]
    return ok, lines
