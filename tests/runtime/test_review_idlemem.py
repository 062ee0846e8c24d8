"""Review of issue 16 (idlemem): its findings as tests, each failing before its fix."""

from __future__ import annotations

import json
from pathlib import Path

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


_THREAD = """
import json, threading
from actors.supervisor import malloc_fill
ready, stop = threading.Event(), threading.Event()
def work():
    xs = [bytes(2000) for _ in range(20000)]  # a thread arena, freed: its free space and top
    del xs
    ready.set()
    stop.wait()
t = threading.Thread(target=work)
t.start()
ready.wait()
try:
    taken = malloc_fill.fill_holes()
    ballast = len(malloc_fill._BALLAST)
    left = malloc_fill.hole_bytes()
finally:
    stop.set()
    t.join()
print(json.dumps([taken, ballast, left]))
"""


def test_malloc_fill_does_nothing_while_another_thread_runs() -> None:
    """glibc's mallinfo2 sums every arena (their free chunks and their tops) and keepcost
    is the main top only: with a thread arena `hole_bytes` would report holes that are not
    there and the fill's budget would be that much too big. With another thread running
    nothing is filled and nothing is counted."""
    done = run_python(["-c", _THREAD])
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == [0, 0, 0]


_NO_MMAP_DICT = """
import json, sys, types
import prometheus_client
from prometheus_client import mmap_dict
start = mmap_dict._INITIAL_MMAP_SIZE
del prometheus_client.mmap_dict
if sys.argv[1] == "module":
    sys.modules["prometheus_client.mmap_dict"] = None  # a release without it: ImportError
else:
    stand_in = prometheus_client.mmap_dict = types.ModuleType("mmap_dict")  # renamed constant
from actors.runtime import metrics
metrics.BAD_MESSAGES.labels(actor="a").inc()
untouched = mmap_dict._INITIAL_MMAP_SIZE == start
if sys.argv[1] == "constant":
    untouched = untouched and not hasattr(stand_in, "_INITIAL_MMAP_SIZE")
print(json.dumps(untouched))
"""


def test_metrics_import_without_the_private_mmap_size(tmp_path: Path) -> None:
    """`actors.runtime.metrics` sets prometheus_client's private `_INITIAL_MMAP_SIZE`: a
    release without `mmap_dict`, or without that constant, still imports the module and
    counts (the files just start at the library's own size); nothing is set or created."""
    for case in ("module", "constant"):
        metrics_dir = tmp_path / case
        metrics_dir.mkdir()
        done = run_python(
            ["-c", _NO_MMAP_DICT, case], env={"PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}
        )
        assert done.returncode == 0, (case, done.stderr)
        assert json.loads(done.stdout.strip().splitlines()[-1]) is True, case
        assert any(metrics_dir.glob("counter_*.db")), case
