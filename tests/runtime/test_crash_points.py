"""Crash points cost nothing when fault injection is off (every order passes several)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from actors.runtime import crashpoints
from actors.runtime.actor import Actor


class _Cfg:
    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.reads = 0

    @property
    def state_path(self) -> Path:
        self.reads += 1
        return self.state_dir


@pytest.fixture(autouse=True)
def _armed_read_again() -> Iterator[None]:
    """`armed()` is read once per process: each test's environment is read afresh, and
    what comes after reads the restored one (torn down after monkeypatch's undo)."""
    crashpoints.forget()
    yield
    crashpoints.forget()


def test_an_unarmed_crash_point_does_not_resolve_the_state_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`cfg.state_path` resolves the directory (filesystem calls): 8% of the OMS's CPU
    when every crash point on the order path read it in production, unarmed."""
    monkeypatch.delenv(crashpoints.CRASH_AT_ENV, raising=False)
    cfg = _Cfg(tmp_path)
    actor = SimpleNamespace(cfg=cfg, actor_id="oms", log=None)
    Actor.crash_point(actor, "after_journal_before_send")  # type: ignore[arg-type]
    assert cfg.reads == 0


def test_an_armed_crash_point_of_another_actor_reads_the_state_path_and_returns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(crashpoints.CRASH_AT_ENV, "risk:somewhere")
    cfg = _Cfg(tmp_path)
    actor = SimpleNamespace(cfg=cfg, actor_id="oms", log=None)
    Actor.crash_point(actor, "after_journal_before_send")  # type: ignore[arg-type]
    assert cfg.reads == 1  # armed: the path is passed on; not this actor's point: no crash


def test_a_forked_child_reads_its_own_environment_not_its_parents_answer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Actors are forked from a preloaded fork server, which sets each child's environment
    after the fork (`forkserver`: the spawn request's `env`): a child reads the arming from
    that environment, never an answer its parent cached before the fork."""
    monkeypatch.delenv(crashpoints.CRASH_AT_ENV, raising=False)
    assert not crashpoints.armed()  # the parent's answer, cached
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        code = 1
        try:
            os.environ[crashpoints.CRASH_AT_ENV] = "oms:somewhere"  # the spawn's env
            os.write(w, b"1" if crashpoints.armed() else b"0")
            code = 0
        finally:
            os._exit(code)
    os.close(w)
    try:
        answer = os.read(r, 1)
    finally:
        os.close(r)
        _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert answer == b"1"
