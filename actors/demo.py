"""`make run --demo`: once every actor is READY, show the system working."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from actors.daemon import Supervisor


def attach_demo(sup: Supervisor) -> None:
    from actors.ctl import format_status

    def on_ready() -> None:
        print("\n" + format_status(sup.status()) + "\n", file=sys.stderr, flush=True)
        print("TradePulse is up. Ctrl-C for an orderly shutdown.", file=sys.stderr, flush=True)

    sup.on_all_ready = on_ready
