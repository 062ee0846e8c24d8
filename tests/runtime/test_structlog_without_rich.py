"""structlog comes without rich in the system's processes (issue 16, memory): rich and
pygments are ~4 MiB of every process that structlog would import them into, and our JSON
logs never use them. Each probe is a fresh interpreter."""

from __future__ import annotations

import json

from tests.helpers import run_python

_PROBE = """
import json, sys
{body}
print(json.dumps(sorted(set(m.split(".")[0] for m in sys.modules) & set(("rich", "pygments")))))
"""


def _heavy_modules_after(body: str) -> list[str]:
    done = run_python(["-c", _PROBE.format(body=body)], timeout_s=60.0)
    assert done.returncode == 0, done.stderr
    modules: list[str] = json.loads(done.stdout.strip().splitlines()[-1])
    return modules


def test_fork_server_and_supervisor_daemon_load_no_rich() -> None:
    """The fork server's preload of every actor kind and the supervisor's daemon (what
    `tradepulse run` imports) leave rich and pygments out."""
    body = (
        "import supervisor\n"
        "import actors.supervisor.daemon\n"
        "from actors.supervisor.forkserver import preload\n"
        "preload()"
    )
    assert _heavy_modules_after(body) == []


def test_the_probe_sees_rich_where_structlog_comes_first() -> None:
    """The control: structlog imported before our package pulls rich in, so the empty
    answer above is not a probe that cannot see it."""
    assert "rich" in _heavy_modules_after("import structlog\nimport actors")


def test_exceptions_still_render_and_rich_stays_importable() -> None:
    """A logged exception still carries its frames (no locals), and the operator's `top`
    view can still import rich afterwards."""
    body = (
        "import actors.runtime.logs as logs, structlog\n"
        "logs.configure_logging('info')\n"
        "try:\n"
        "    raise ValueError('boom')\n"
        "except ValueError:\n"
        "    structlog.get_logger().exception('request_failed')\n"
        "import rich.console\n"
    )
    done = run_python(["-c", _PROBE.format(body=body)], timeout_s=60.0)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    event = json.loads(lines[0])
    assert event["event"] == "request_failed"
    frames = event["exception"][0]["frames"]
    assert frames and all("locals" not in f or f["locals"] is None for f in frames)
    assert event["exception"][0]["exc_value"] == "boom"
    assert json.loads(lines[-1]) == ["rich"]
