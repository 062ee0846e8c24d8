"""Backoff tables of the config: an actor's restarts (`[supervisor.restart]`) and a venue's
reconnects (`[venues.reconnect]`), both capped exponential with jitter
(`actors.runtime.backoff`)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator

PosFloat = Annotated[float, Field(gt=0, allow_inf_nan=False)]
NonNegFloat = Annotated[float, Field(ge=0, allow_inf_nan=False)]
PosInt = Annotated[int, Field(gt=0)]


class _Cfg(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class BackoffCfg(_Cfg):
    initial_s: NonNegFloat = 0.0
    factor: Annotated[float, Field(ge=1, le=100, allow_inf_nan=False)] = 2.0
    max_s: PosFloat = 5.0
    jitter: Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)] = 0.2

    @model_validator(mode="after")
    def _max_covers_initial(self) -> BackoffCfg:
        if self.max_s < self.initial_s:
            raise ValueError("max_s must be >= initial_s")
        return self


class RestartCfg(BackoffCfg):
    """Actor restart policy: backoff between restarts and restart intensity."""

    initial_s: NonNegFloat = 0.002
    reset_after_s: PosFloat = 30.0
    max_restarts: PosInt = 10
    window_s: PosFloat = 60.0


class ReconnectCfg(BackoffCfg):
    """A venue's reconnects. The first step is never 0: every later step is a multiple of
    it, so 0 would retry the venue at once forever (a DOWN venue too), the hot loop a
    broker locks a session out for. (A table that left `initial_s` out used to get
    BackoffCfg's 0, not the 0.05 of a venue without the table.)"""

    initial_s: PosFloat = 0.05
