"""Which connection of one connector incarnation the OMS knows of: the connector's state
version (`VenueStateChanged.version`, its count of state changes; `OpenOrders.version`, the
one an answer was given at, while CONNECTED). An incarnation's versions only grow, so

- a state at a lower version than the one known is stale: read after an answer that told
  a later one (the answer comes on another socket than the states, and across hosts the
  states of a reconnect inside a partition are lost, the last one resent a second later);
- a CONNECTED, or an answer, at a later version than the CONNECTED known is a new
  connection whose states between were not heard: a logon like any other (its pass, and
  the end of a FIX venue's resubmission grace: `actors.oms.venue_link`). Learnt from a
  pass's answer, the grace ends before that pass sends anything on the connection, and its
  CONNECTED, come later at that version, is no new one (before, it ended the grace of what
  the pass had sent on it: the next pass could send that order a second time)."""

from __future__ import annotations


def later(known: int | None, version: int | None) -> bool:
    """`version` is later than `known` (None, either: not known, an older connector's)."""
    return known is not None and version is not None and version > known
