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
