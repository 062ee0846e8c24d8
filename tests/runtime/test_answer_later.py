"""`Actor.answer_later`: a read the OMS answers after its commit runs outside `serve`'s
guard; an exception in it is refused (INTERNAL for a request, an error reply for an
operator) and logged, and the loop goes on (a review found a crafted ListOrders killing the
OMS there: the OMS restarted, and the client's retries could kill it again)."""

from __future__ import annotations

from actors.runtime.actor import Actor
from actors.runtime.ratelog import LogBudget
from tests.log_stub import RecordingLog


class _Host:  # what `answer_later` uses of an actor: its log and its failure log budget
    count_failed = Actor.count_failed

    def __init__(self) -> None:
        self.log = RecordingLog()
        self._failed_log = LogBudget()


def test_an_answer_that_raises_is_refused_logged_and_the_caller_goes_on() -> None:
    host = _Host()
    refused: list[str] = []
    answered: list[int] = []

    def broken() -> None:
        raise OverflowError("Python int too large to convert to SQLite INTEGER")

    Actor.answer_later(host, broken, refused.append)()  # type: ignore[arg-type]
    Actor.answer_later(host, lambda: answered.append(1), refused.append)()  # type: ignore[arg-type]
    assert refused == ["OverflowError: Python int too large to convert to SQLite INTEGER"]
    assert answered == [1]
    assert host.log.names() == ["request_failed"]
    assert host.log.levels("request_failed") == ["exception"]
