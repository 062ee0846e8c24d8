"""A live config section, applied by the actor that owns it (`actors.supervisor.reload`).

The supervisor sends the section's new values (validated there with the whole file) as an
`apply-config` control command; the actor validates the section again with its model,
replaces it in its own config object (`Actor.cfg`, so code that reads the config at each
use sees the new values at once) and calls its `on_config(section)` hook for the state it
built from the old values (risk's limits, the heartbeat's timers and trackers).
"""

from __future__ import annotations

from typing import Any, Protocol, get_args

from pydantic import BaseModel, ValidationError

from protocol.commands import ApplyConfig, OperatorId
from protocol.config import SystemConfig
from protocol.exceptions import ConfigError
from protocol.messages import ControlReply


def apply_section(cfg: SystemConfig, command: ApplyConfig) -> tuple[SystemConfig, list[str]]:
    """`cfg` with the section replaced, and the names of the fields that changed; a
    `ConfigError` for an unknown section or a value its model refuses."""
    section = command.section
    info = type(cfg).model_fields.get(section)
    model = _section_model(info.annotation if info is not None else None)
    if model is None:
        raise ConfigError(section, "not a config section")
    current = getattr(cfg, section)
    if command.values is None:  # an optional section (`X | None`) removed from the file
        if not _optional(info.annotation if info is not None else None):
            raise ConfigError(section, "is required")
        return cfg.model_copy(update={section: None}), [] if current is None else [section]
    try:
        new = model.model_validate(command.values)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in (section, *err["loc"]))
        raise ConfigError(where, err["msg"]) from None
    if current is None:
        return cfg.model_copy(update={section: new}), [section]
    changed = [name for name in model.model_fields if getattr(current, name) != getattr(new, name)]
    return cfg.model_copy(update={section: new}), changed


def _section_model(annotation: Any) -> type[BaseModel] | None:
    """The model of a section field (`Cfg` or `Cfg | None`); None for anything else."""
    for candidate in (annotation, *get_args(annotation)):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


def _optional(annotation: Any) -> bool:
    return type(None) in get_args(annotation)


class LiveConfigurable(Protocol):
    """An actor as `apply_live` sees it."""

    cfg: SystemConfig
    control_operator: OperatorId | None

    @property
    def log(self) -> Any: ...

    def on_config(self, section: str) -> None: ...


def apply_live(actor: LiveConfigurable, command: ApplyConfig) -> ControlReply:
    """Apply `command` to `actor` (its `cfg`, then its `on_config` hook); logged
    `config_applied` (or `config_apply_refused`) with the operator, and answered."""
    who = actor.control_operator.describe() if actor.control_operator else ""
    try:
        actor.cfg, changed = apply_section(actor.cfg, command)
    except ConfigError as exc:
        actor.log.warning("config_apply_refused", section=command.section, error=str(exc))
        return ControlReply(status="error", reason=f"refused: {exc}")
    actor.on_config(command.section)
    actor.log.warning("config_applied", section=command.section, fields=changed, operator=who)
    return ControlReply(status="ok", reason=f"applied {command.section}", data={"fields": changed})
