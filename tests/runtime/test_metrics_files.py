"""Each process's multiprocess metric files start at one page and grow as they fill
(issue 16, idle PSS: at 64 KiB each, read-ahead mapped ~0.17 MiB per actor)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.helpers import run_python

_PROBE = """
import json, os, sys
from actors.runtime import metrics
from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector
n = int(sys.argv[1])
for i in range(n):
    metrics.BAD_MESSAGES.labels(actor=f"actor{i:04d}").inc(i)
path = os.path.join(os.environ["PROMETHEUS_MULTIPROC_DIR"], f"counter_{os.getpid()}.db")
rss, mapped = None, False
for line in open("/proc/self/smaps"):
    if "-" in line.split()[0] and not line.split()[0].endswith(":"):
        mapped = line.rstrip().endswith(path)
    elif mapped and line.startswith("Rss:"):
        rss = int(line.split()[1]) * 1024
registry = CollectorRegistry()
MultiProcessCollector(registry)
values = {
    s.labels["actor"]: s.value
    for family in registry.collect() if family.name == "tradepulse_bad_messages"
    for s in family.samples if s.name == "tradepulse_bad_messages_total"
}
ok = all(values.get(f"actor{i:04d}") == i for i in range(n))
print(json.dumps([os.path.getsize(path), rss, ok]))
"""


def _run(tmp_path: Path, n: int) -> tuple[int, int, bool]:
    metrics_dir = tmp_path / f"metrics{n}"
    metrics_dir.mkdir()
    done = run_python(["-c", _PROBE, str(n)], env={"PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)})
    assert done.returncode == 0, done.stderr
    size, rss, ok = json.loads(done.stdout.strip().splitlines()[-1])
    return int(size), int(rss), bool(ok)


def test_a_file_with_a_few_values_is_one_page(tmp_path: Path) -> None:
    """An actor's counter file holding a few values is one page long, and one page of it
    is mapped (was 64 KiB, all of it mapped after read-ahead on a disk-backed dir)."""
    size, rss, ok = _run(tmp_path, 3)
    assert ok
    assert size == 4096
    assert rss <= 4096


def test_a_file_grows_and_keeps_every_value(tmp_path: Path) -> None:
    """500 labelled values outgrow the first page: the file doubles as needed and the
    supervisor's collector reads every value back."""
    size, _rss, ok = _run(tmp_path, 500)
    assert ok
    assert 4096 < size <= 256 * 1024
