"""Which refusals switch a venue to the connector's fallbacks (actors/connector/fallbacks.py):
only the venue saying it does not serve the request at all (BusinessMessageReject 380=3,
session Reject 373=11, PosReqResult 4). Any other refusal fails that one request and the
venue is asked again next time (found by review: one 380=4 "application not available"
switched AN to an unseeded ledger, i.e. no position check, for the whole incarnation)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import pytest
import structlog

from actors.connector.adapter import RequestFailed, VenueAdapter
from actors.connector.fallbacks import VenueFallbacks
from actors.connector.ledger import FillLedger
from protocol.fix_config import DialectCfg
from protocol.messages import ErrorCode, Positions


class Venue:
    """The adapter's two queries, answered with `result`; counts what was asked."""

    is_active = True

    def __init__(self) -> None:
        self.result: Any = []
        self.asked: list[str] = []

    def open_orders(self, done: Callable[[Any], None]) -> None:
        self.asked.append("AF")
        done(self.result)

    def positions(self, done: Callable[[Any], None]) -> None:
        self.asked.append("AN")
        done(self.result)


def _fallbacks(tmp_path: Path) -> tuple[VenueFallbacks, Venue]:
    venue = Venue()
    ledger = FillLedger(tmp_path, fsync=False)
    log = structlog.get_logger("test")
    adapter = cast(VenueAdapter, venue)
    return VenueFallbacks("simA", DialectCfg(), adapter, ledger, log), venue


@pytest.mark.parametrize("request_", ["AF", "AN"])
def test_a_refusal_that_is_not_unsupported_fails_once_and_asks_again(
    tmp_path: Path, request_: str
) -> None:
    fb, venue = _fallbacks(tmp_path)
    ask = fb.open_orders if request_ == "AF" else fb.positions
    answers: list[Any] = []
    venue.result = RequestFailed(ErrorCode.VENUE_REFUSED, "BusinessMessageReject: 380=4")
    ask(answers.append)
    assert isinstance(answers[-1], RequestFailed) and not answers[-1].unsupported
    venue.result = []
    ask(answers.append)
    assert venue.asked == [request_, request_]  # asked again: no fallback
    assert not isinstance(answers[-1], RequestFailed)
    if request_ == "AN":
        assert isinstance(answers[-1], Positions) and answers[-1].source == "venue"


@pytest.mark.parametrize("request_", ["AF", "AN"])
def test_unsupported_switches_to_the_fallback_for_the_incarnation(
    tmp_path: Path, request_: str
) -> None:
    fb, venue = _fallbacks(tmp_path)
    ask = fb.open_orders if request_ == "AF" else fb.positions
    answers: list[Any] = []
    venue.result = RequestFailed(ErrorCode.VENUE_REFUSED, "380=3", unsupported=True)
    ask(answers.append)
    ask(answers.append)
    assert venue.asked == [request_]  # not asked again
    if request_ == "AN":
        assert all(isinstance(a, Positions) and a.source == "ledger" for a in answers)
    else:
        assert all(isinstance(a, RequestFailed) for a in answers)


def test_a_mass_status_too_big_for_one_reply_is_not_asked_again_for_a_while(
    tmp_path: Path,
) -> None:
    """An AF answer too big for one reply (AnswerTooBig): refused, and for TOO_BIG_HOLD_S the
    next OpenOrdersRequests are refused at once without asking the venue (each AF would
    make it send every open order again, ahead of the H the OMS asks by order); after
    that the venue is asked again. Never 'unsupported'."""
    from actors.connector.adapter import AnswerTooBig
    from actors.connector.fallbacks import TOO_BIG_HOLD_S

    now = [100.0]
    venue = Venue()
    fb = VenueFallbacks(
        "simA", DialectCfg(), cast(VenueAdapter, venue), FillLedger(tmp_path, fsync=False),
        structlog.get_logger("test"), clock=lambda: now[0],
    )  # fmt: skip
    answers: list[Any] = []
    venue.result = AnswerTooBig(50_000, "mass status of 50000 ... over the 5000")
    fb.open_orders(answers.append)
    now[0] += TOO_BIG_HOLD_S - 1
    fb.open_orders(answers.append)
    assert venue.asked == ["AF"] and all(a.code is ErrorCode.VENUE_REFUSED for a in answers)
    assert "over the 5000" in str(answers[-1]) and not answers[-1].unsupported
    assert fb.serves_mass_status
    now[0] += 2
    venue.result = []
    fb.open_orders(answers.append)
    assert venue.asked == ["AF", "AF"] and answers[-1] == []
