"""Hostile nesting (issue 15, section 1): `decode` refuses containers nested deeper than
`MAX_DEPTH` with a clear `ProtocolError`, and the JSON log renderer never raises on a value
it cannot render (a 1,010-deep map crashed the supervisor in it)."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import msgpack
import pytest
import structlog

from actors.runtime import logs
from protocol.codec import MAX_DEPTH, decode
from protocol.exceptions import ProtocolError


def _nested(depth: int) -> Any:
    value: Any = "x"
    for _ in range(depth):
        value = {"a": value}
    return value


def _stream_event(data: Any) -> list[bytes]:
    body = {"event_seq": 0, "event": "x", "data": data}
    env = {"v": 1, "type": "stream_event", "sender": "h", "epoch": 1, "seq": 1, "id": "h:1",
           "corr": "", "ts_ns": 1, "body": body}  # fmt: skip
    return [msgpack.packb(env, use_bin_type=True)]


@pytest.mark.parametrize("depth", [MAX_DEPTH, 1010])
def test_decode_refuses_a_free_form_field_nested_too_deep(depth: int) -> None:
    """StreamEvent.data is a free-form map: nested past the bound it is refused, naming why."""
    with pytest.raises(ProtocolError, match=f"nested deeper than {MAX_DEPTH} levels"):
        decode(_stream_event({"d": _nested(depth)}))


def test_decode_refuses_deep_lists_too_and_takes_a_shallow_map() -> None:
    deep_list: Any = []
    for _ in range(100):
        deep_list = [deep_list]
    with pytest.raises(ProtocolError, match="nested deeper"):
        decode(_stream_event({"d": deep_list}))
    assert decode(_stream_event({"d": _nested(MAX_DEPTH - 4)})).type == "stream_event"


@pytest.fixture
def json_logs() -> Iterator[io.StringIO]:
    saved = structlog.get_config()
    out = io.StringIO()
    logs.configure_logging("info")
    structlog.configure(logger_factory=structlog.WriteLoggerFactory(file=out))
    try:
        yield out
    finally:
        structlog.configure(**saved)


def test_the_log_renderer_writes_a_fallback_line_instead_of_raising(
    json_logs: io.StringIO,
) -> None:
    """A value nested 1,010 deep: the line says `log_render_failed` with the event's name;
    the caller sees no exception and the next line is normal."""
    log = structlog.get_logger().bind(actor="supervisor")
    log.info("control_command", args=_nested(1010))
    log.info("after")
    first, second = (json.loads(line) for line in json_logs.getvalue().splitlines())
    assert first["event"] == "log_render_failed"
    assert first["original_event"] == "control_command"
    assert first["error"] == "RecursionError"
    assert first["actor"] == "supervisor"
    assert second["event"] == "after"
