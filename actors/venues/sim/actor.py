"""The simulated venue process (placeholder until the FIX acceptor lands)."""

from __future__ import annotations

from actors.base import Actor


class VenueSimActor(Actor):
    kind = "venuesim"
