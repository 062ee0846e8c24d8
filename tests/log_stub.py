"""The tests' one structlog stand-in: `RecordingLog` keeps every line the code under test
logs, so a test asserts on the stable event names, their levels and their fields the same
way in every module (a test that does not look at the log passes one all the same).

Not in `tests/actor_stubs.py`: that module drives a real actor over sockets; this one is
for the plain classes handed a logger, and imports nothing.
"""

from __future__ import annotations

from typing import Any

LogLine = tuple[str, str, dict[str, Any]]  # (level, event, fields)


class RecordingLog:
    """Keeps each line as (level, event, fields) in `lines`, in the order logged.

    The level methods are written out rather than made up by `__getattr__`: a call the
    runtime's loggers would not take (a misspelt level) fails here too, and a type checker
    sees the same methods as on structlog's bound logger."""

    def __init__(self) -> None:
        self.lines: list[LogLine] = []

    def debug(self, event: str, **fields: Any) -> None:
        self.lines.append(("debug", event, fields))

    def info(self, event: str, **fields: Any) -> None:
        self.lines.append(("info", event, fields))

    def warning(self, event: str, **fields: Any) -> None:
        self.lines.append(("warning", event, fields))

    def error(self, event: str, **fields: Any) -> None:
        self.lines.append(("error", event, fields))

    def exception(self, event: str, **fields: Any) -> None:
        self.lines.append(("exception", event, fields))

    def critical(self, event: str, **fields: Any) -> None:
        self.lines.append(("critical", event, fields))

    def names(self, level: str | None = None) -> list[str]:
        """The events logged, in order; only those at `level` if one is given."""
        return [event for lvl, event, _ in self.lines if level is None or lvl == level]

    def events(self, name: str) -> list[dict[str, Any]]:
        """The fields of each line whose event is `name`, in order."""
        return [fields for _, event, fields in self.lines if event == name]

    def levels(self, name: str) -> list[str]:
        """The level of each line whose event is `name`, in order."""
        return [lvl for lvl, event, _ in self.lines if event == name]
