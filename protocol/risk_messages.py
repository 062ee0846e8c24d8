"""The messages between the OMS and risk: an order's check and its verdict (alone or
batched), and the kill switch's command and state. Moved out of `protocol.messages`
(its line budget), which re-exports every one: import them from there; the wire is
unchanged (each keeps its `type`).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from protocol.domain import MAX_REASON_CHARS, Dec, Msg, OrdType, Side


class RiskCheck(Msg):
    type: Literal["risk_check"] = "risk_check"
    client_order_id: str
    venue: str
    symbol: str
    side: Side
    qty: Dec
    order_type: OrdType
    price: Dec | None = None


class RiskVerdict(Msg):
    type: Literal["risk_verdict"] = "risk_verdict"
    client_order_id: str
    approved: bool
    reason_code: str = "ok"
    reason: str = ""


MAX_RISK_BATCH = 256  # checks in one `RiskChecks` (the OMS sends more as several)


class RiskChecks(Msg):
    """The checks of several orders in one message (the OMS's new orders of one turn), each
    checked as a lone `RiskCheck`, in order; one `RiskVerdicts` answers, once the last is known."""

    type: Literal["risk_checks"] = "risk_checks"
    checks: list[RiskCheck] = Field(min_length=1, max_length=MAX_RISK_BATCH)


class RiskVerdicts(Msg):
    """The answer to a `RiskChecks`: `verdicts[i]` is the verdict of `checks[i]`."""

    type: Literal["risk_verdicts"] = "risk_verdicts"
    verdicts: list[RiskVerdict] = Field(min_length=1, max_length=MAX_RISK_BATCH)


class KillSwitchCommand(Msg):
    """An engage is never refused for its text: a reason over MAX_REASON_CHARS is cut
    (ending in "..."), so a long automatic reason (a divergence over many symbols) still
    stops trading; a reset or status with one that long is refused."""

    type: Literal["kill_switch_command"] = "kill_switch_command"
    action: Literal["engage", "reset", "status"]
    reason: str = Field(default="", max_length=MAX_REASON_CHARS)
    source: str = Field(default="operator", max_length=64)

    @model_validator(mode="before")
    @classmethod
    def _clip_engage_reason(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("action") == "engage":
            reason = data.get("reason")
            if isinstance(reason, str) and len(reason) > MAX_REASON_CHARS:
                data = {**data, "reason": reason[: MAX_REASON_CHARS - 3] + "..."}
        return data


class KillSwitchState(Msg):
    type: Literal["kill_switch_state"] = "kill_switch_state"
    engaged: bool
    reason: str = ""
    source: str = ""
    ts_ns: int = 0
