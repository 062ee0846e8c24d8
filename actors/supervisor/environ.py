"""What environment each actor process gets: only what it needs.

The supervisor's own environment holds every venue's credentials (`username_env` /
`password_env`, a ccxt venue's `api_key_env` / `secret_env`) and whatever else the
operator's shell exports. An actor gets a minimal base (`BASE_VARS`, and the
`BASE_PREFIXES` families: PYTHON* for the interpreter, LC_* for the locale, TP_* test and
fault-injection hooks), never a variable a venue names as a credential; a connector (and a
simulated exchange, which checks signatures with them) gets its own venue's credential
variables on top, and nothing else gets any. The fork server is started with the base only:
it hands a connector its credentials with the spawn request (a private pipe), never in argv.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from protocol.start_env import BASE_PREFIXES as BASE_PREFIXES
from protocol.start_env import BASE_VARS as BASE_VARS
from protocol.start_env import base_environ

if TYPE_CHECKING:  # light at run time: the early fork server launch imports this module
    from actors.runtime.actor import ActorArgs
    from protocol.config import SystemConfig


class ActorEnv:
    """The base environment of every actor, and the extra variables of one actor."""

    def __init__(self, cfg: SystemConfig, environ: Mapping[str, str]) -> None:
        self._credentials = {
            venue.name: tuple(var for _, var in venue.credential_vars) for venue in cfg.venues
        }
        secret = {var for names in self._credentials.values() for var in names}
        self.base = base_environ(environ, secret)
        self._environ = environ

    def extra(self, args: ActorArgs) -> dict[str, str]:
        """A connector, or a simulated exchange that checks signed requests: its own venue's
        credential variables; any other actor: nothing."""
        if args.kind not in ("connector", "exchangesim") or args.venue is None:
            return {}
        names = self._credentials.get(args.venue, ())
        return {name: self._environ[name] for name in names if name in self._environ}

    def full(self, args: ActorArgs) -> dict[str, str]:
        """The whole environment of `args`'s process."""
        return {**self.base, **self.extra(args)}
