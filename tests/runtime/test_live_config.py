"""An actor applying a live section (`actors.runtime.live_config`): the section is
validated again and replaced in the actor's config, the hook runs, and a bad value or an
unknown section is refused with nothing changed."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import structlog

from actors.runtime.live_config import apply_live, apply_section
from protocol.commands import ApplyConfig, OperatorId
from protocol.config import HeartbeatCfg, SystemConfig, parse_config
from protocol.exceptions import ConfigError

CFG = parse_config({"venues": [{"name": "simA"}]})


class StubActor:
    def __init__(self) -> None:
        self.cfg: SystemConfig = CFG
        self.control_operator: OperatorId | None = OperatorId(uid=1, user="bob", pid=2)
        self.log: Any = structlog.get_logger()
        self.hooks: list[str] = []

    def on_config(self, section: str) -> None:
        self.hooks.append(section)


def test_a_section_is_replaced_and_its_changed_fields_named() -> None:
    values = {**CFG.risk.model_dump(mode="json"), "max_order_qty": "5"}
    new, changed = apply_section(CFG, ApplyConfig(section="risk", values=values))
    assert new.risk.max_order_qty == Decimal("5") and changed == ["max_order_qty"]
    assert new.heartbeat is CFG.heartbeat and new.venues == CFG.venues


def test_the_actor_applies_it_runs_its_hook_and_answers() -> None:
    actor = StubActor()
    reply = apply_live(actor, ApplyConfig(section="heartbeat", values={"interval_s": 0.5}))
    assert reply.status == "ok" and reply.data == {"fields": ["interval_s"]}
    assert actor.cfg.heartbeat.interval_s == 0.5 and actor.hooks == ["heartbeat"]


def test_a_bad_value_or_an_unknown_section_is_refused_and_nothing_changes() -> None:
    actor = StubActor()
    for command in (
        ApplyConfig(section="risk", values={"max_open_orders_per_venue": 0}),
        ApplyConfig(section="risk", values={"no_such_limit": 1}),
        ApplyConfig(section="nothing", values={}),
        ApplyConfig(section="venues", values={}),
    ):
        reply = apply_live(actor, command)
        assert reply.status == "error" and reply.reason.startswith("refused: ")
    assert actor.cfg is CFG and actor.hooks == []
    try:
        apply_section(CFG, ApplyConfig(section="risk", values={"max_order_qty": "x"}))
    except ConfigError as exc:
        assert exc.field == "risk.max_order_qty"
    else:
        raise AssertionError("not refused")


class WithOptional(SystemConfig):
    """A config with an optional section, as `[trading]` may be."""

    windows: HeartbeatCfg | None = None


def test_an_optional_section_can_appear_and_go() -> None:
    cfg = WithOptional.model_validate({"venues": [{"name": "simA"}]})
    added, changed = apply_section(cfg, ApplyConfig(section="windows", values={"interval_s": 2}))
    assert isinstance(added, WithOptional) and added.windows is not None
    assert added.windows.interval_s == 2 and changed == ["windows"]
    removed, changed = apply_section(added, ApplyConfig(section="windows", values=None))
    assert removed.windows is None and changed == ["windows"]
    try:
        apply_section(cfg, ApplyConfig(section="risk", values=None))
    except ConfigError as exc:
        assert exc.field == "risk"
    else:
        raise AssertionError("a required section removed")
