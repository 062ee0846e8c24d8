"""The executions a connector forwards at once (one FIX read's, or a re-send's), as the
messages that carry them to the OMS: one `ExecReports` per up to `MAX_EXEC_BATCH` of them
and `BATCH_BYTES` of their values, in venue order; one alone goes as today's lone
`ExecReport`. One request, one OMS wake, one decode of the envelope and one `ExecAck` back
per batch instead of per execution.

The byte bound (found by review): a venue's free text is the venue's to size, and 128
executions of 40 KiB of text each made a 5 MB batch, over the OMS's frame limit: refused
whole at every re-send (cut the same way from the oldest), its fills never applied and
every execution cut of the venue held. A batch now closes before its values pass
`BATCH_BYTES` (a generous bound: 4 bytes a character); one execution alone always goes."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from protocol.messages import ExecReport, ExecReports
from protocol.venue_messages import MAX_EXEC_BATCH
from protocol.wire_out import dump

BATCH_BYTES = 1 << 20  # of one batch's values (the frame limit is 4 MiB)


def exec_messages(
    venue: str,
    reports: Sequence[ExecReport],
    most: int = MAX_EXEC_BATCH,
    most_bytes: int = BATCH_BYTES,
) -> Iterator[tuple[ExecReport | ExecReports, list[ExecReport]]]:
    """(message, the executions it carries), in order."""
    if len(reports) == 1:  # the common case at low rates: nothing to size, no generator
        return iter([(reports[0], [reports[0]])])
    return _batches(venue, reports, most, most_bytes)


def _batches(
    venue: str, reports: Sequence[ExecReport], most: int, most_bytes: int
) -> Iterator[tuple[ExecReport | ExecReports, list[ExecReport]]]:
    chunk: list[ExecReport] = []
    bodies: list[dict[str, Any]] = []
    size = 0
    for report in reports:
        body = dump(report)  # as it would travel alone: built from a valid model
        grows = _bytes(body)
        if chunk and (len(chunk) == most or size + grows > most_bytes):
            yield _message(venue, chunk, bodies), chunk
            chunk, bodies, size = [], [], 0
        chunk.append(report)
        bodies.append(body)
        size += grows
    if chunk:
        yield _message(venue, chunk, bodies), chunk


def _message(
    venue: str, chunk: list[ExecReport], bodies: list[dict[str, Any]]
) -> ExecReport | ExecReports:
    if len(chunk) == 1:
        return chunk[0]
    return ExecReports.model_construct(venue=venue, reports=bodies)


def _bytes(body: dict[str, Any]) -> int:
    """An upper bound of `body`'s encoded size: 4 bytes a character, 16 a key and a
    number."""
    return sum([16 + (4 * len(v) if isinstance(v, str) else 16) for v in body.values()])
