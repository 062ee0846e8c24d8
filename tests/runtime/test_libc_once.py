"""What an actor calls of libc through ctypes is looked up once, at import, so a forked
actor starts with the fork server's library handle and function pointers instead of
making its own (a `CDLL` per call made a new ctypes class and function pointer in every
actor: ~100 KiB of private memory each, issue 16's idle memory)."""

from __future__ import annotations

import ctypes
import sys

import pytest

from actors.runtime import hardening
from actors.runtime.heap_trim import HeapTrim, _glibc_trim

linux_only = pytest.mark.skipif(sys.platform != "linux", reason="prctl and glibc: Linux")


def _no_cdll(*_args: object, **_kw: object) -> None:
    raise AssertionError("a CDLL was made after import")


@linux_only
def test_hardening_makes_no_library_handle_after_import(monkeypatch: pytest.MonkeyPatch) -> None:
    """With `ctypes.CDLL` refusing, the prctl calls an actor makes at its start still
    work: they use the handle looked up when the module was imported."""
    was = hardening.is_dumpable()
    monkeypatch.setattr(ctypes, "CDLL", _no_cdll)
    try:
        hardening.set_parent_death_signal(0)  # 0: no signal, the test process's default
        assert hardening.make_undumpable() is True
        assert hardening.is_dumpable() is False
    finally:
        monkeypatch.undo()
        assert hardening._prctl(hardening.PR_SET_DUMPABLE, int(was)) == 0  # as it was
    assert hardening.is_dumpable() is was


@pytest.mark.skipif(_glibc_trim() is None, reason="glibc's malloc_trim only")
def test_heap_trim_uses_the_malloc_trim_looked_up_at_import(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A `HeapTrim` made with `ctypes.CDLL` refusing has glibc's `malloc_trim` and runs it."""
    monkeypatch.setattr(ctypes, "CDLL", _no_cdll)
    trim = HeapTrim(actor="test_libc_once")
    monkeypatch.undo()
    assert trim._trim is not None
    assert trim._trim(0) in (0, 1)
