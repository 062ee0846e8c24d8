"""The entry point of an actor process: the kind registry and
`run_actor`, which `python -m actors` (exec mode) and the fork server's children call."""

from __future__ import annotations

import errno
import importlib
import os
import signal
import sys
from pathlib import Path

from actors.runtime.actor import EXIT_SUPERVISOR_GONE, Actor, ActorArgs
from actors.runtime.hardening import make_undumpable, set_parent_death_signal
from protocol.config import SystemConfig
from protocol.exceptions import StateCorrupt
from protocol.paths import PRIVATE_UMASK

# the actor's durable state is corrupt (not torn: `StateCorrupt`, e.g. `JournalCorrupt`): a
# restart meets the same bytes, so the supervisor does not restart it (a critical one stops
# the system, another stays DOWN until an operator restarts it); sysexits' EX_DATAERR. So is
# a state file it cannot open (a directory in its place, not ours to read, a FIFO or a
# device: EINVAL of `paths.regular_opener`: `_UNREADABLE`)
EXIT_STATE_CORRUPT = 65
_UNREADABLE = frozenset({errno.EACCES, errno.EPERM, errno.EISDIR, errno.ENOTDIR, errno.EINVAL})

ACTOR_KINDS: dict[str, str] = {
    "risk": "actors.risk.actor:RiskActor",
    "oms": "actors.oms.actor:OmsActor",
    "connector": "actors.connector.actor:ConnectorActor",
    "heartbeat": "actors.position_heartbeat.actor:HeartbeatActor",
    "venuesim": "actors.venuesim.actor:VenueSimActor",
    "exchangesim": "actors.exchangesim.actor:ExchangeSimActor",
    "link": "actors.link.actor:LinkActor",
}


def actor_class(kind: str) -> type[Actor]:
    module, _, name = ACTOR_KINDS[kind].partition(":")
    cls: type[Actor] = getattr(importlib.import_module(module), name)
    return cls


def run_actor(args: ActorArgs, cfg: SystemConfig | None = None) -> int:
    """Entry point of an actor process (exec or fork-server child); `cfg`: the system config
    already loaded from `args` (the fork server's), else the actor loads it."""
    make_undumpable()  # exec mode resets it; fork-server children inherit it (runtime.hardening)
    set_parent_death_signal(signal.SIGKILL)  # exec mode; fork-server children have it already
    os.umask(PRIVATE_UMASK)  # inherited from the supervisor too; an actor run alone as well
    if args.supervisor_pid is not None and os.getppid() != args.supervisor_pid:
        return EXIT_SUPERVISOR_GONE  # the supervisor died before the signal was armed
    cls = actor_class(args.kind)
    actor = cls(args, cfg)
    try:
        return actor.run()
    except (StateCorrupt, OSError) as exc:  # one line naming file and offset, not a traceback
        bad = exc if isinstance(exc, StateCorrupt) else unreadable(exc, actor.cfg.state_path)
        if bad is None:
            raise
        actor.log.error("state_corrupt", path=bad.path, offset=bad.offset, error=str(bad))
        print(f"{args.actor_id}: cannot start: {bad}", file=sys.stderr, flush=True)
        return EXIT_STATE_CORRUPT


def unreadable(exc: OSError, state_dir: Path) -> StateCorrupt | None:
    """`exc` as a `StateCorrupt` if it says a file in `state_dir` cannot be opened in a way
    a restart meets again (`_UNREADABLE`); None for any other error (a full disk, EIO)."""
    if exc.errno not in _UNREADABLE or not exc.filename:
        return None
    path = Path(os.fsdecode(exc.filename)).resolve()
    if not path.is_relative_to(state_dir):
        return None
    return StateCorrupt(str(path), None, str(exc.strerror), how="unreadable")
