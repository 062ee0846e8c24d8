"""The venue's side of the FIX session (the acceptor's)."""

from __future__ import annotations

from actors.connector.fix import codec as fc
from actors.connector.fix.session import FixSession
from actors.venuesim import fixmap
from actors.venuesim.fixmap import Out


class VenueSession(FixSession):
    """The venue's FIX session: also sends the session-level Reject (3) of an application
    message that `fixmap` found invalid, as an engine validating the FIX 4.4 dictionary
    does (the Reject is an admin message: never resent, gap-filled on a ResendRequest)."""

    def reject(self, out: Out) -> None:
        if out.msg_type != fixmap.SESSION_REJECT:
            raise ValueError(f"not a session Reject: {out.msg_type}")
        fields = dict(out.pairs())
        self._tx.emit(out.msg_type, [(tag, fc.fix_value(value)) for tag, value in out.pairs()])
        self._log.warning("fix_reject_sent", ref_seq=fields.get(45), ref_tag=fields.get(371))
