"""Which config fields are secrets, and config data with their values replaced.

One rule for everything that shows a config to people: the postmortem bundle's
`config.json` and the reload diff (its reply, its log lines, the audit record).

A field is a secret when its name holds one of `SECRET_WORDS`, unless it names where the
secret is kept (`*_env`: an environment variable's name; `*_file`: a file's path); and a
logon field (`dialect.logon_fields`, tag -> value) that is a credential: RawData(96),
Username(553), Password(554), NewPassword(925), as in the FIX message log.
"""

from __future__ import annotations

from typing import Any

REDACTED = "<redacted>"
SECRET_WORDS = ("password", "passwd", "secret", "key", "token", "credential")
NOT_SECRET_SUFFIXES = ("_env", "_file")
SECRET_FIX_TAGS = frozenset({"96", "553", "554", "925"})


def is_secret_field(name: str) -> bool:
    if name in SECRET_FIX_TAGS:
        return True
    lowered = name.lower()
    if lowered.endswith(NOT_SECRET_SUFFIXES):
        return False
    return any(word in lowered for word in SECRET_WORDS)


def redact(value: Any) -> Any:
    """`value` (a config as plain data) with every secret field's value replaced."""
    if isinstance(value, dict):
        return {
            k: (REDACTED if is_secret_field(str(k)) and v not in ("", None) else redact(v))
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    return value


def redact_leaf(path: str, value: Any) -> Any:
    """The value of the dotted config field `path` (`venues[simA].dialect.logon_fields.96`)
    as it may be shown: replaced if the field is a secret, its secret members replaced if
    it is a table."""
    name = path.rsplit(".", 1)[-1]
    if is_secret_field(name) and value not in ("", None):
        return REDACTED
    return redact(value)
