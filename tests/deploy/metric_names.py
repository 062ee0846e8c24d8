"""Helpers for the deploy tests: metric names registered by the code and named in the files."""

from __future__ import annotations

import re
from pathlib import Path

from prometheus_client import REGISTRY

REPO = Path(__file__).resolve().parents[2]
METRIC_RE = re.compile(r"\btradepulse_[a-z0-9_]+\b")

# The series a metric family of each type exposes (prometheus_client text format).
_SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "summary": ("", "_sum", "_count", "_created"),
    "info": ("_info",),
    "stateset": ("",),
    "enum": ("",),
    "unknown": ("",),
}


def registered_series_names() -> set[str]:
    """Every series name the code can expose: import actors.runtime.metrics, read the registry.

    Read from the family type, not from samples: a labelled metric has no sample until a
    label set is used."""
    import actors.runtime.metrics  # noqa: F401  (registers every metric)

    names: set[str] = set()
    for family in REGISTRY.collect():
        for suffix in _SUFFIXES.get(family.type, ("",)):
            names.add(family.name + suffix)
    return names


def rule_exprs(rules_yml: str) -> list[str]:
    """The text of every `expr:` in a Prometheus rules file (inline or block scalar), without
    a YAML parser: an expr continues while the lines are indented deeper than its key."""
    exprs: list[str] = []
    lines = rules_yml.splitlines()
    i = 0
    while i < len(lines):
        m = re.match(r"^(\s*)(?:-\s+)?expr:\s*(.*)$", lines[i])
        i += 1
        if not m:
            continue
        indent, inline = len(m.group(1)), m.group(2)
        body = [] if inline in ("|", ">", "|-", ">-", "") else [inline]
        while i < len(lines) and (
            not lines[i].strip() or len(lines[i]) - len(lines[i].lstrip()) > indent
        ):
            body.append(lines[i].strip())
            i += 1
        exprs.append("\n".join(b for b in body if b))
    return exprs


def alert_names(rules_yml: str) -> list[str]:
    return re.findall(r"^\s*-\s+alert:\s*(\w+)\s*$", rules_yml, flags=re.MULTILINE)
