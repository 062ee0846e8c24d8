"""The executions the OMS quarantined (`actors.oms.exec_quarantine`), as the book keeps them:
its records by (venue, exec_id), replayed from the journal and kept in snapshots. Apart
from the quarantine itself, so the book (and the fork server's warm imports before its
setup: `actors.supervisor.forkserver.WARM_BY_KIND`) never loads prometheus_client."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

import structlog

from actors.runtime.ratelog import LogBudget
from protocol.messages import ExecReport

QUARANTINED = "exec_quarantined"  # the journal record's kind
KEEP = 10_000  # quarantined exec ids remembered (each one halts its venue: few expected)
_log = structlog.get_logger("oms")
_UNREADABLE = LogBudget()  # stored reports that are not JSON objects


class Quarantined:
    """The quarantined executions' records by (venue, exec_id), the newest `KEEP` ids (an
    older one sent again would be quarantined again: it is never applied). Venues reuse
    ExecIDs (across days, per order: `actors.connector.ledger`), so a report is taken for a
    quarantined one only if its content is the same (`holds`), not by its id alone."""

    def __init__(self, records: Iterable[Mapping[str, Any]] = ()) -> None:
        self._by_id: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for record in records:
            self.add(record)

    def add(self, record: Mapping[str, Any]) -> None:
        key = (str(record["venue"]), str(record["exec_id"]))
        same = [r for r in self._by_id.pop(key, ()) if r.get("report") != record.get("report")]
        self._by_id[key] = [*same, dict(record)]
        if len(self._by_id) > KEEP:
            del self._by_id[next(iter(self._by_id))]

    def __contains__(self, key: tuple[str, str]) -> bool:
        return key in self._by_id

    def __len__(self) -> int:
        return len(self._by_id)

    def holds(self, report: ExecReport) -> bool:
        """Whether `report` itself was quarantined: the same content (whatever the
        connector's `exec_seq`, which a restarted connector may number anew). The stored
        report is compared as JSON, never parsed with the current model: one an earlier
        build wrote may no longer validate (an upgrade); unreadable, it is not the same."""
        stored = self._by_id.get((report.venue, report.exec_id), ())
        if not stored:
            return False
        want = _content(report.model_dump_json())
        return any("report" in r and _content(r["report"]) == want for r in stored)

    def records(self, venue: str | None = None) -> list[dict[str, Any]]:
        return [
            r for same in self._by_id.values() for r in same if venue is None or r["venue"] == venue
        ]


def _content(report_json: object) -> dict[str, Any] | None:
    """A report's JSON as a dict without `exec_seq`; None (logged) if it is not one."""
    try:
        content = json.loads(report_json)  # type: ignore[arg-type]  # checked: TypeError
    except (ValueError, TypeError, RecursionError) as exc:
        content = exc
    if not isinstance(content, dict):
        if (skipped := _UNREADABLE.take()) is not None:
            _log.warning(
                "quarantine_record_unreadable",
                error=f"{type(content).__name__}: {content}"[:256],
                suppressed=skipped,
            )
        return None
    content.pop("exec_seq", None)
    return content
