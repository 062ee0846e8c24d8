"""Which Logons the simulated venue accepts (`[venues.sim]` require_username /
require_logon_fields, the sim dialect's reset_seq_num, the refuse_logons_s fault). A
refusal is a text: the session's Logout carries it, then the connection closes."""

from __future__ import annotations

import time
from typing import Any

from actors.connector.fix import codec as fc
from actors.venuesim.faults import Faults
from protocol.fix_config import DialectCfg

REFUSAL_TEXT = "logons refused (fault injection)"
USERNAME_MISSING = "Username(553) required"
USERNAME_WRONG = "Username(553) not accepted"
RESET_REQUIRED = "ResetSeqNumFlag(141)=Y required on every Logon"
RESET_REFUSED = "ResetSeqNumFlag(141)=Y not accepted"
LOGON_FIELD = "Logon field"  # "Logon field <tag> missing" / "... not accepted"
_REFUSALS = frozenset(
    {REFUSAL_TEXT, USERNAME_MISSING, USERNAME_WRONG, RESET_REQUIRED, RESET_REFUSED}
)


def is_refusal(reason: str) -> bool:
    return reason in _REFUSALS or reason.startswith(LOGON_FIELD)


class LogonPolicy:
    def __init__(
        self, dialect: DialectCfg, faults: Faults, require_username: str, require_fields: bool
    ) -> None:
        self._dialect = dialect
        self._faults = faults
        self._require_username = require_username  # "": any Logon (comp ids checked)
        self._require_fields = require_fields  # the dialect's logon_fields

    def check(self, msg: Any) -> str | None:
        """None accepts; a text refuses (the Logout carries it). The username is a
        credential: compared, never logged."""
        if self._faults.refusing_logons(time.monotonic()):
            return REFUSAL_TEXT
        if self._require_username:
            username = fc.get_str(msg, 553)
            if not username:
                return USERNAME_MISSING
            if username != self._require_username:
                return USERNAME_WRONG
        dialect = self._dialect
        reset = fc.get_str(msg, 141) == "Y"
        if dialect.reset_seq_num == "every_logon" and not reset:
            return RESET_REQUIRED
        if dialect.reset_seq_num == "never" and reset:
            return RESET_REFUSED
        if self._require_fields:
            for tag, value in dialect.logon_extra():
                got = fc.get_str(msg, tag)
                if got != value:
                    return f"{LOGON_FIELD} {tag} {'missing' if got is None else 'not accepted'}"
        return None
