"""A venue's TransactTime(60) outside what the wire to the OMS carries (epoch ns in an
int64: 1970 to 2262) is a venue time not known (0), the execution kept. A year 9999 (or
0001) overflowed the report's encoding (OverflowError): the execution could not be sent."""

from __future__ import annotations

import pytest
import simplefix  # type: ignore[import-untyped]

from actors.connector.fix import mapping as fm
from protocol.codec import Sender, encode


def _fill(transact_time: str) -> simplefix.FixMessage:
    msg = simplefix.FixMessage()
    for tag, value in ((35, "8"), (150, "F"), (17, "E1"), (11, "c1"), (37, "O1"), (55, "AAPL"),
                       (54, "1"), (38, "10"), (32, "10"), (31, "100"), (14, "10"), (6, "100"),
                       (151, "0"), (39, "2"), (60, transact_time)):  # fmt: skip
        msg.append_pair(tag, value)
    return msg


@pytest.mark.parametrize(
    "when", ["99991231-23:59:59.999", "00010101-00:00:00", "22630101-00:00:00"]
)
def test_a_venue_time_past_the_wire_is_not_known_and_the_fill_is_sent(when: str) -> None:
    report = fm.to_exec_report(_fill(when), "simA")
    assert report is not None and report.venue_ts_ns == 0 and report.last_qty == 10
    encode(Sender("connector.simA", 1).envelope(report))  # no OverflowError


def test_a_venue_time_within_it_is_kept() -> None:
    report = fm.to_exec_report(_fill("20261207-06:00:00.123"), "simA")
    assert report is not None and report.venue_ts_ns == 1_796_623_200_123_000_000
