"""The executions a connector forwards at once (one FIX read's, or a re-send's), as the
messages that carry them to the OMS: one `ExecReports` per up to `MAX_EXEC_BATCH` of them,
in venue order; one alone goes as today's lone `ExecReport`. One request, one OMS wake,
one decode of the envelope and one `ExecAck` back per batch instead of per execution."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from protocol.messages import ExecReport, ExecReports
from protocol.venue_messages import MAX_EXEC_BATCH
from protocol.wire_out import dump


def exec_messages(
    venue: str, reports: Sequence[ExecReport], most: int = MAX_EXEC_BATCH
) -> Iterator[tuple[ExecReport | ExecReports, list[ExecReport]]]:
    """(message, the executions it carries), in order."""
    for start in range(0, len(reports), most):
        chunk = list(reports[start : start + most])
        if len(chunk) == 1:
            yield chunk[0], chunk
        else:  # the bodies as each would travel alone (`dump`): built from valid models
            bodies = [dump(r) for r in chunk]
            yield ExecReports.model_construct(venue=venue, reports=bodies), chunk
