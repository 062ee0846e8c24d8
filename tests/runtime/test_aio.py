"""The asyncio bridge (actors/runtime/aio.py): asyncio work done by stepping from a poll loop."""

from __future__ import annotations

import asyncio
import math
import socket
import time
from collections.abc import Callable
from typing import Any

import pytest
import zmq

from actors.runtime.aio import AsyncioBridge
from actors.runtime.timers import Timers
from tests.log_stub import RecordingLog


class MiniLoop:
    """The actor loop's shape: a zmq poller over fds plus a timer heap."""

    def __init__(self) -> None:
        self.poller = zmq.Poller()
        self.handlers: dict[int, Callable[[], None]] = {}
        self.timers = Timers()
        self.turns = 0

    def add_fd(self, fd: int, handler: Callable[[], None], events: int = zmq.POLLIN) -> None:
        self.poller.register(fd, events)
        self.handlers[fd] = handler

    def remove(self, sock_or_fd: int) -> None:
        self.poller.unregister(sock_or_fd)
        del self.handlers[sock_or_fd]

    def call_later(self, delay_s: float, fn: Callable[[], None]) -> None:
        self.timers.call_later(delay_s, fn)

    def run_until(self, predicate: Callable[[], bool], timeout_s: float = 5.0) -> None:
        deadline = time.monotonic() + timeout_s
        while not predicate():
            assert time.monotonic() < deadline, "condition not reached"
            self.turns += 1
            for fd, _ in self.poller.poll(math.ceil(self.timers.wait_s(0.5) * 1000)):
                self.handlers[fd]()
            self.timers.run_due()


@pytest.fixture
def rig() -> Any:
    loop = MiniLoop()
    bridge = AsyncioBridge(loop)
    yield loop, bridge
    bridge.close()


def test_a_timer_of_asyncio_fires_from_the_poll_loop(rig: Any) -> None:
    loop, bridge = rig
    task = bridge.spawn(asyncio.sleep(0.05, result="slept"), name="sleep")
    loop.run_until(task.done)
    assert task.result() == "slept"
    assert loop.turns < 50  # woken for the deadline, not spinning


def test_socket_io_of_asyncio_wakes_the_poll_loop(rig: Any) -> None:
    loop, bridge = rig
    a, b = socket.socketpair()
    try:

        async def read_line() -> bytes:
            reader, writer = await asyncio.open_connection(sock=a)
            line = await reader.readline()
            writer.close()
            return line

        task = bridge.spawn(read_line(), name="read")
        loop.run_until(lambda: loop.turns >= 3, 1.0)  # nothing to read yet: it waits
        assert not task.done()
        b.sendall(b"hello\n")
        loop.run_until(task.done)
        assert task.result() == b"hello\n"
    finally:
        b.close()


def test_a_failed_task_is_logged_not_lost() -> None:
    loop, log = MiniLoop(), RecordingLog()
    bridge = AsyncioBridge(loop, log)

    async def boom() -> None:
        raise RuntimeError("bad")

    bridge.spawn(boom(), name="boom")
    loop.run_until(lambda: bool(log.lines))
    bridge.close()
    assert log.names() == ["aio_task_failed"]
    assert log.events("aio_task_failed") == [{"task": "boom", "error": "RuntimeError: bad"}]


def test_close_cancels_running_tasks() -> None:
    loop = MiniLoop()
    bridge = AsyncioBridge(loop)
    cancelled: list[bool] = []

    async def forever() -> None:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled.append(True)
            raise

    bridge.spawn(forever(), name="forever")
    loop.run_until(lambda: loop.turns >= 2, 1.0)
    bridge.close()
    assert cancelled == [True]
    assert bridge.loop.is_closed() and not loop.handlers


def test_the_loop_internals_the_bridge_reads_are_there() -> None:
    loop: Any = asyncio.SelectorEventLoop()
    try:
        assert hasattr(loop, "_ready") and hasattr(loop, "_scheduled")
        handle = loop.call_later(10, lambda: None)
        assert loop._scheduled[0] is handle and handle.when() > loop.time()
    finally:
        loop.close()
