"""Logging of every process (actors and supervisor): structlog, one JSON line per event on
stdout, which the supervisor (or a test) reads.

Rendering never raises: an event whose values cannot be rendered (nested too deep for the
encoder, a failing repr) is written as `log_render_failed` naming the event instead, so a
hostile value in a log line cannot kill the loop that logs it."""

from __future__ import annotations

import json
import sys
from typing import Any

import structlog

CACHE_LOGGERS = True  # off in the test process: structlog's capture_logs needs fresh loggers

_LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40}
# structlog's own `dict_tracebacks` renders every frame's locals: a Logon password in a
# local would reach the log file and the post-mortem bundle. Frames, never their locals.
_DICT_TRACEBACKS = structlog.processors.ExceptionRenderer(
    structlog.tracebacks.ExceptionDictTransformer(show_locals=False)
)


# what this process last configured: (level, stdout, caching), the structlog config values
# it set (compared by identity) and a copy of its processors (a list edited in place)
_SET_KEYS = ("processors", "wrapper_class", "logger_factory", "cache_logger_on_first_use")
_configured: tuple[tuple[str, object, bool], dict[str, object], tuple[object, ...]] | None = None


def configure_logging(level: str = "info", **context: object) -> None:
    """structlog JSON to stdout, one line per event. A no-op when this process (or the fork
    server it was forked from, `forkserver._on_config`) configured it so already and
    nothing replaced it since (not one of the values it set, not even by a partial
    `structlog.configure` as `preflight` makes): an actor then starts without building its
    own processors (issue 16, idle memory).

    `context` (the process's `actor`, its `epoch`) goes on every line of the process, also
    those of module loggers that bind nothing (`actors.risk.killswitch`'s, read by every
    actor and the supervisor); a logger's own binding wins."""
    if context:
        structlog.contextvars.bind_contextvars(**context)
    global _configured
    if _configured is not None and _configured[0] == (level, sys.stdout, CACHE_LOGGERS):
        if structlog.is_configured():
            now = structlog.get_config()
            if all(now[key] is value for key, value in _configured[1].items()) and (
                tuple(now["processors"]) == _configured[2]
            ):
                return
    processors: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True, key="ts"),
        _DICT_TRACEBACKS,
        _SafeJSONRenderer(),
    ]
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS[level]),
        logger_factory=structlog.WriteLoggerFactory(file=sys.stdout),
        cache_logger_on_first_use=CACHE_LOGGERS,
    )
    done = structlog.get_config()
    _configured = (
        (level, sys.stdout, CACHE_LOGGERS),
        {key: done[key] for key in _SET_KEYS},
        tuple(done["processors"]),
    )


class _SafeJSONRenderer:
    """structlog's JSONRenderer, with a plain fallback line when it raises."""

    def __init__(self) -> None:
        self._render = structlog.processors.JSONRenderer(sort_keys=False)

    def __call__(self, logger: Any, name: str, event_dict: structlog.typing.EventDict) -> str:
        try:
            return str(self._render(logger, name, event_dict))
        except Exception as exc:  # noqa: BLE001 - RecursionError, TypeError, a failing repr
            plain = {
                k: str(event_dict[k])[:200]
                for k in ("ts", "level", "actor", "epoch", "venue")
                if isinstance(event_dict.get(k), (str, int))
            }
            event = event_dict.get("event")
            original = event[:200] if isinstance(event, str) else "?"
            return json.dumps(
                {
                    **plain,
                    "event": "log_render_failed",
                    "original_event": original,
                    "error": type(exc).__name__,
                }  # fmt: skip
            )
