"""Every error the system raises on purpose is a `TradePulseError`."""

from __future__ import annotations


class TradePulseError(Exception):
    """Base of every TradePulse error."""


class ConfigError(TradePulseError):
    """The config is invalid; `field` names the offending key (dotted path)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field


class ProtocolError(TradePulseError):
    """A frame or envelope could not be decoded; the message says what was wrong, in at most
    `MAX_TEXT` characters (it may quote the hostile value, and it is logged: a 4 MiB type
    name made a 4 MB `bad_message` line; found by fuzzing, tests/fuzz)."""

    MAX_TEXT = 500  # the longest we write (the list of commands) is ~260

    def __init__(self, message: str) -> None:
        if len(message) > self.MAX_TEXT:
            message = f"{message[: self.MAX_TEXT]}... ({len(message)} characters)"
        super().__init__(message)


class VenueError(TradePulseError):
    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


class RiskRejected(TradePulseError):
    def __init__(self, reason: str, code: str = "risk") -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code


class KillSwitchEngaged(TradePulseError):
    """Trading is halted; new orders are refused until an operator resets the switch."""


class StateCorrupt(TradePulseError):
    """A durable state file an actor reads at start cannot be trusted (corrupt, not a torn
    tail its format drops): the actor refuses to run (`actors.runtime.process`, exit 65),
    since a restart meets the same bytes. `offset` None: the format does not say where."""

    def __init__(
        self, path: str, offset: int | None, detail: str, *, what: str = "", how: str = "corrupt"
    ) -> None:
        where = "" if offset is None else f" at offset {offset}"
        super().__init__(f"{what or 'state file'} {path} {how}{where}: {detail}")
        self.path = path
        self.offset = offset


class JournalCorrupt(StateCorrupt):
    """A journal record in the middle of the file fails its CRC or framing."""

    offset: int

    def __init__(self, path: str, offset: int, detail: str) -> None:
        super().__init__(path, offset, detail, what="journal")


class StateDirLocked(TradePulseError):
    """Another supervisor holds the state dir lock."""
