"""An asyncio event loop stepped from an actor's own loop: no thread, no second scheduler.

Some outside libraries only speak asyncio (ccxt's exchange classes, aiohttp's server). An
actor's loop is a zmq poll loop (`actors.runtime.actor.Actor`), and an actor never starts a
thread (a kill -9 must leave nothing half-done in a thread we do not see). So the asyncio
loop here never runs on its own: the actor loop runs it one iteration at a time, when

- the asyncio loop's selector (an epoll fd we create and hand to it) is readable: one of
  its sockets has something, so the actor loop polls that one fd among its own;
- its next timer is due (an actor timer set for that deadline after every step);
- callbacks are ready (an actor timer of 0 s).

One step (`_step`) is `call_soon(stop)` + `run_forever()`: asyncio runs what is ready,
polls its selector without waiting, runs what that made ready, and returns. Everything
asyncio does therefore happens inside the actor's loop turn, on its thread: a coroutine can
call the actor's code (a listener) directly.

The next-timer deadline and the ready queue are read from the loop's `_scheduled` and
`_ready` (CPython's BaseEventLoop keeps them there since 3.4; `tests/runtime/test_aio.py`
checks they are still there, so an interpreter that moves them fails a test, not trading).

`run_until_complete` blocks the actor loop: for start-up and teardown only, bounded.
"""

from __future__ import annotations

import asyncio
import selectors
from collections.abc import Callable, Coroutine
from typing import Any, Protocol, TypeVar

import structlog
import zmq

T = TypeVar("T")
_EPS_S = 0.0005  # a pending actor timer this close to a new deadline is reused


class Loop(Protocol):
    """The slice of the actor loop the bridge uses."""

    def add_fd(self, fd: int, handler: Callable[[], None], events: int = ...) -> None: ...
    def remove(self, sock_or_fd: int) -> None: ...
    def call_later(self, delay_s: float, fn: Callable[[], None]) -> None: ...


class AsyncioBridge:
    """One asyncio loop, driven by `loop` (an actor); see the module docstring."""

    def __init__(self, loop: Loop, log: Any = None) -> None:
        self._actor = loop
        self._log = log if log is not None else structlog.get_logger()
        self._selector = selectors.EpollSelector()
        self._loop = asyncio.SelectorEventLoop(self._selector)
        self._loop.set_exception_handler(self._on_exception)
        self._fd = self._selector.fileno()
        self._timer_at: float | None = None  # the earliest actor timer we have pending
        self._closed = False
        self._tasks: set[asyncio.Task[Any]] = set()
        loop.add_fd(self._fd, self._step, zmq.POLLIN)

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        return self._loop

    @property
    def closed(self) -> bool:
        return self._closed

    def spawn(self, coro: Coroutine[Any, Any, T], *, name: str) -> asyncio.Task[T]:
        """Run `coro` on the loop; an exception it ends with is logged (`aio_task_failed`),
        never lost. The task starts at the next step (armed here)."""
        task = self._loop.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        self._arm()
        return task

    def run_until_complete(self, coro: Coroutine[Any, Any, T], timeout_s: float) -> T:
        """Block the actor loop until `coro` is done or `timeout_s` passed (TimeoutError):
        start-up and teardown only."""
        result = self._loop.run_until_complete(asyncio.wait_for(coro, timeout_s))
        self._arm()
        return result

    def close(self, timeout_s: float = 1.0) -> None:
        """Cancel every task (waiting up to `timeout_s` for them to finish), close the loop
        and leave the actor loop."""
        if self._closed:
            return
        self._closed = True
        self._actor.remove(self._fd)
        pending = [t for t in self._tasks if not t.done()]
        for task in pending:
            task.cancel()
        if pending:
            gather = asyncio.gather(*pending, return_exceptions=True)
            try:
                self._loop.run_until_complete(asyncio.wait_for(gather, timeout_s))
            except (TimeoutError, asyncio.CancelledError):
                self._log.warning("aio_close_timeout", tasks=len(pending))
        self._loop.run_until_complete(self._loop.shutdown_asyncgens())
        self._loop.close()

    # ------------------------------------------------------------------ stepping

    def _step(self) -> None:
        if self._closed:
            return
        self._timer_at = None if self._timer_due() else self._timer_at
        self._loop.call_soon(self._loop.stop)
        self._loop.run_forever()
        self._arm()

    def _timer_due(self) -> bool:
        return self._timer_at is not None and self._timer_at <= self._loop.time() + _EPS_S

    def _arm(self) -> None:
        """Set an actor timer for the loop's next due work (ready callbacks: now)."""
        if self._closed:
            return
        loop: Any = self._loop
        if loop._ready:
            when = loop.time()
        else:
            timers = [h for h in loop._scheduled if not h.cancelled()]
            if not timers:
                return
            when = min(h.when() for h in timers)
        if self._timer_at is not None and self._timer_at <= when + _EPS_S:
            return  # a step comes by then anyway
        self._timer_at = when
        self._actor.call_later(max(0.0, when - loop.time()), self._step)

    # ------------------------------------------------------------------ errors

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            self._log.error(
                "aio_task_failed", task=task.get_name(), error=f"{type(exc).__name__}: {exc}"
            )

    def _on_exception(self, _loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        exc = context.get("exception")
        self._log.error(
            "aio_error",
            message=str(context.get("message", ""))[:200],
            error=f"{type(exc).__name__}: {exc}" if exc is not None else "",
        )
