"""Logging of every process (actors and supervisor): structlog, one JSON line per event on
stdout, which the supervisor (or a test) reads."""

from __future__ import annotations

import sys

import structlog

CACHE_LOGGERS = True  # off in the test process: structlog's capture_logs needs fresh loggers

_LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40}


def configure_logging(level: str = "info") -> None:
    """structlog JSON to stdout, one line per event."""
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True, key="ts"),
            structlog.processors.dict_tracebacks,
            structlog.processors.JSONRenderer(sort_keys=False),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS[level]),
        logger_factory=structlog.WriteLoggerFactory(file=sys.stdout),
        cache_logger_on_first_use=CACHE_LOGGERS,
    )
