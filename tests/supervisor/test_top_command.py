"""`tradepulse top`'s live view and its quit signals, with a stub collector (no system):
the integration tests drive the real one in a pseudo-terminal (tests/integration/test_top.py)."""

from __future__ import annotations

import argparse
import io
import os
import signal
import sys
import time
from typing import Any

import pytest

from actors.supervisor import topview
from actors.supervisor.commands.top import Top
from actors.supervisor.topview import Sample

MAX_SAMPLES = 20  # at --interval 0.1: 2 s of a view that should have quit at the second


class _CtrlCInAFinalizer:
    """Dropped as soon as it is made: its finalizer sends this process SIGINT, as a Ctrl-C
    lands while pyzmq's `Context.__del__` runs at the end of a status request."""

    def __del__(self) -> None:
        os.kill(os.getpid(), signal.SIGINT)


class _Collector:
    """`topview.Collector`'s part the view uses; the second sample gets the Ctrl-C."""

    made: list[_Collector] = []

    def __init__(self, cfg: Any, *, timeout_s: float) -> None:
        self.samples = 0
        self.made.append(self)

    def collect(self) -> Sample:
        self.samples += 1
        if self.samples == 2:
            _CtrlCInAFinalizer()
        assert self.samples <= MAX_SAMPLES, "Ctrl-C lost: the view still refreshing"
        return Sample(time.monotonic(), time.time(), {"actors": [], "venues": {}})


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_ctrl_c_that_lands_in_a_finalizer_still_quits_the_view(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """SIGINT while a finalizer runs (where a KeyboardInterrupt is only printed as "Exception
    ignored", and top used to go on refreshing): the view quits at once, exit 0, and the
    handlers it had are back."""
    monkeypatch.setattr(topview, "Collector", _Collector)
    monkeypatch.setattr(sys, "stdout", _Terminal())
    monkeypatch.setattr(sys, "stdin", io.StringIO())  # no keys
    before = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    ns = argparse.Namespace(interval=0.1, once=False, json=False, timeout_s=10.0)
    assert Top().run(None, ns) == 0  # type: ignore[arg-type]  # the stub takes any config
    assert [c.samples for c in _Collector.made] == [2]  # no refresh after the Ctrl-C
    assert {sig: signal.getsignal(sig) for sig in before} == before


class _QuietCollector(_Collector):
    def collect(self) -> Sample:
        self.samples += 1
        assert self.samples <= MAX_SAMPLES, "a live view on a dumb terminal: blank until q"
        return Sample(time.monotonic(), time.time(), {"actors": [], "venues": {}})


def test_a_dumb_terminal_gets_one_frame_not_a_blank_live_view(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """On TERM=dumb (an editor's shell, a serial console) rich draws no live display: the
    view was a blank screen until `q`. There it prints one frame (two samples), as a pipe
    gets, and exits."""
    monkeypatch.setattr(topview, "Collector", _QuietCollector)
    monkeypatch.setattr(sys, "stdout", _Terminal())
    monkeypatch.setattr(sys, "stdin", io.StringIO())  # no keys: a live view never quits
    monkeypatch.setenv("TERM", "dumb")
    _Collector.made.clear()
    ns = argparse.Namespace(interval=0.01, once=False, json=False, timeout_s=10.0)
    assert Top().run(None, ns) == 0  # type: ignore[arg-type]  # the stub takes any config
    assert [c.samples for c in _Collector.made] == [2]
    assert "tradepulse top" in sys.stdout.getvalue()
