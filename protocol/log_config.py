"""`[logging]`: the supervisor's log files in the state dir and the post-mortem bundles
(`actors/supervisor/logfiles.py`, `actors/supervisor/postmortem.py`). Every size and count
is bounded: the files can never fill a disk on their own."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

MiB = 1 << 20


class LoggingCfg(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    # state_dir/logs/tradepulse.log: every JSON line of the supervisor and its actors
    file: bool = True
    max_file_bytes: Annotated[int, Field(ge=64 << 10, le=1 << 30)] = 50 * MiB
    keep_files: Annotated[int, Field(ge=1, le=100)] = 10  # the current one included
    # a kill-switch engagement writes a bundle into state_dir/postmortem/
    postmortem_on_kill_switch: bool = True
    postmortem_keep: Annotated[int, Field(ge=1, le=1000)] = 10
    postmortem_max_bytes: Annotated[int, Field(ge=1 * MiB, le=10 << 30)] = 200 * MiB
    postmortem_window_s: Annotated[float, Field(gt=0, le=7 * 86400, allow_inf_nan=False)] = 3600.0
    # waited after the engagement, so the bundle holds what followed it (the cancels)
    postmortem_delay_s: Annotated[float, Field(ge=0, le=60, allow_inf_nan=False)] = 2.0
