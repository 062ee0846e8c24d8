"""`LogCapture` with real file descriptors, in a child interpreter (it replaces fd 1 and
fd 2 of its process): what the process and its children print still reaches the original
stdout and stderr unchanged, and every line is in the log file, JSON as is, anything else
wrapped as `raw_output` with its stream."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

from tests.helpers import REPO_ROOT

_SCRIPT = textwrap.dedent(
    """
    import subprocess, sys
    from pathlib import Path
    from actors.supervisor.logfiles import LogCapture, RotatingFile

    capture = LogCapture(RotatingFile(Path(sys.argv[1]), 1 << 20, 2), count_dropped=False)
    capture.start()
    print('{"event": "own_line", "ts": "2026-12-04T00:00:00Z"}', flush=True)
    subprocess.run(
        ["sh", "-c", "echo '{\\"event\\": \\"child_line\\"}'; echo plain text; echo boom >&2"],
        check=True,
    )
    sys.stderr.write("Traceback (most recent call last):\\n")
    sys.stderr.flush()
    capture.close()
    print("after close")
    """
)


def test_capture_tees_every_process_output_to_the_console_and_the_file(tmp_path: Path) -> None:
    log = tmp_path / "logs" / "tradepulse.log"
    proc = subprocess.run(
        [sys.executable, "-c", _SCRIPT, str(log)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [
        '{"event": "own_line", "ts": "2026-12-04T00:00:00Z"}',
        '{"event": "child_line"}',
        "plain text",
        "after close",  # fd 1 is the original again
    ]
    assert proc.stderr.splitlines() == ["boom", "Traceback (most recent call last):"]
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert {"event": "own_line", "ts": "2026-12-04T00:00:00Z"} in lines
    assert {"event": "child_line"} in lines
    raw = {(e["stream"], e["line"]) for e in lines if e["event"] == "raw_output"}
    assert raw == {
        ("stdout", "plain text"),
        ("stderr", "boom"),
        ("stderr", "Traceback (most recent call last):"),
    }
    assert all("ts" in e for e in lines if e["event"] == "raw_output")
    assert "after close" not in log.read_text()
