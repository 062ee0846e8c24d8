"""The CLI's documented exit codes (README): ok, failure, bad config or usage, no supervisor
running / state dir locked (or the link to the host group that runs the actor down), and an
answer on the control socket from a process that is not the supervisor (refused:
`protocol.control_binder`). Apart from `ctl` so that `run` reads them without importing the
control client."""

from __future__ import annotations

EXIT_OK, EXIT_FAILURE, EXIT_CONFIG, EXIT_UNAVAILABLE = 0, 1, 2, 3
EXIT_NOT_SUPERVISOR = 4
