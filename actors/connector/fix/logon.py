"""Our Logon: what it carries and whether it starts the sequence numbers again.

What the Logon carries besides the session's own fields (SenderCompID, TargetCompID,
HeartBtInt: session.py): Username(553) / Password(554) from the env vars `username_env` /
`password_env` (credentials: never logged; `tradepulse run` exits 2 when one is unset,
`protocol.config.check_credentials`), then the dialect's `logon_fields` in tag order.

ResetSeqNumFlag(141)=Y, by the dialect's `reset_seq_num` (protocol/fix_config.py):

- ``cold_start`` (the default): while the store is new. The marker file
  ``reset_pending`` is created before the store (a crash in between still resets) and
  stays until a Logon that reset was accepted.
- ``every_logon``: on every Logon; the store is reset each time, as at a cold start.
- ``never``: never, not even from a new store (it logs on with 1/1 and no flag).

A pending reset also comes from the session schedule: with `reset_seq_num_daily` the
first Logon of each new trading session (`new_trading_session`, keyed by the session's
start) resets the store; nothing of the last session is resent. Under ``never`` the store
still starts again at 1/1, without the flag (the venue resets on its own schedule).
"""

from __future__ import annotations

from pathlib import Path

from actors.connector.fix.events import Logger
from actors.connector.fix.session import FixSession
from actors.connector.fix.store import FixStore
from actors.runtime.durable import fsync_dir, write_atomic
from protocol.config import VenueCfg, logon_credentials

RESET_MARKER = "reset_pending"
SESSION_FILE = "trading_session"  # the start of the last trading session we reset for


class LogonPlan:
    """The reset policy and the extra fields of our Logon, durable across restarts.
    Create it before the FixStore: a directory without a store is a cold start."""

    def __init__(self, store_dir: Path, vcfg: VenueCfg, log: Logger) -> None:
        self._dir = store_dir
        self._cfg = vcfg
        self._log = log
        self._resetting = False  # the Logon in flight resets the store
        if not (store_dir / "session.log").exists():
            self._mark()

    @property
    def reset_pending(self) -> bool:
        return (self._dir / RESET_MARKER).exists()

    def new_trading_session(self, key: str) -> bool:
        """A trading session that started at `key` is open. With the schedule's
        `reset_seq_num_daily`, the next Logon resets unless this session was reset for
        already (a restart inside the session must not start it again). True: marked."""
        schedule = self._cfg.schedule
        if schedule is None or not schedule.reset_seq_num_daily:
            return False
        path = self._dir / SESSION_FILE
        try:
            last = path.read_text().strip()
        except FileNotFoundError:
            last = ""
        if last == key:
            return False
        self._mark()  # first: a crash before the record below resets anyway
        write_atomic(path, f"{key}\n".encode())
        self._log.info("fix_daily_reset_pending", session_start=key)
        return True

    def send_logon(self, session: FixSession, store: FixStore) -> None:
        extra, missing = logon_credentials(self._cfg)  # secrets: never logged
        for key in missing:  # `run` refuses to start without them; a bare connector warns
            self._log.warning("fix_credential_missing", key=key, env_var=getattr(self._cfg, key))
        extra += self._cfg.dialect.logon_extra()
        policy = self._cfg.dialect.reset_seq_num
        pending = self.reset_pending
        flag = policy == "every_logon" or (pending and policy != "never")
        if pending and not flag:
            store.reset()  # numbering starts again at 1, without the flag (`never`)
        self._resetting = pending or flag
        self._log.info("fix_connected", reset=flag, reset_seq_num=policy)
        session.logon(reset=flag, extra=extra)

    def logged_on(self) -> None:
        """The venue accepted our Logon: a reset it carried is done."""
        if self._resetting:
            self._resetting = False
            (self._dir / RESET_MARKER).unlink(missing_ok=True)

    def _mark(self) -> None:
        (self._dir / RESET_MARKER).touch()
        fsync_dir(self._dir)
