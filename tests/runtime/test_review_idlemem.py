"""Review of issue 16 (idlemem): its findings as tests, each failing before its fix."""

from __future__ import annotations

import json

from tests.helpers import run_python

_PARTIAL = """
import json, structlog
from actors.runtime.logs import configure_logging
def drop(logger, name, event_dict):
    raise structlog.DropEvent
configure_logging("info")
structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))
configure_logging("info")
structlog.get_logger().info("level_restored")
configure_logging("info")
structlog.configure(logger_factory=structlog.PrintLoggerFactory(file=open("/dev/null", "w")))
structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(20))
configure_logging("info")
structlog.get_logger().info("factory_restored")
structlog.get_config()["processors"].insert(0, drop)
configure_logging("info")
structlog.get_logger().info("processors_restored")
"""


def test_configure_logging_undoes_a_partial_configure() -> None:
    """A `structlog.configure` that changed only the level filter or the output (as
    `tradepulse preflight` does with logger_factory), or a processors list edited in
    place, is undone by the next configure_logging: its no-op check compares every value
    it set, not the processors list alone."""
    done = run_python(["-c", _PARTIAL])
    assert done.returncode == 0, done.stderr
    events = [json.loads(line)["event"] for line in done.stdout.splitlines() if line.strip()]
    assert events == ["level_restored", "factory_restored", "processors_restored"]
