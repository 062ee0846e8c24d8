"""A reconciliation plan: the actions that bring the OMS's view of one venue in line with
the venue's (adopt, update, apply missed fill, mark terminal, resubmit, escalate), made by
`actors.oms.reconcile.plan_reconciliation`. A plan is data: it is logged (`summary`),
counted in metrics, printed as a dry run (`format_dry_run`) and sent to the CLI
(`to_dicts`) before, or instead of, being applied.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, fields
from decimal import Decimal
from enum import Enum
from typing import Any, ClassVar

from actors.oms.orders import adopted_client_order_id
from protocol.messages import ExecCut, OrderStatus, VenueOrder


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal | Enum):
        return str(value)
    if isinstance(value, VenueOrder | ExecCut):
        return value.model_dump(mode="json")
    return value


class _Action:
    """Base of the plan's actions (frozen dataclasses): a name and a JSON-able form."""

    __slots__ = ()
    __dataclass_fields__: ClassVar[dict[str, Any]]  # every action is a dataclass
    name: ClassVar[str]

    def to_dict(self) -> dict[str, Any]:
        return {
            "action": self.name,
            **{f.name: _plain(getattr(self, f.name)) for f in fields(self)},
        }


@dataclass(frozen=True, slots=True)
class Adopt(_Action):
    """`cut`: the open-orders answer's (`OpenOrders.cut`), whose executions the venue state
    `order` reflects (None: the connector gave none): `actors.oms.adoption`."""

    venue: str
    order: VenueOrder
    cut: ExecCut | None = None
    name: ClassVar[str] = "adopt"

    @property
    def client_order_id(self) -> str:
        return adopted_client_order_id(self.venue, self.order.cl_ord_id)

    def describe(self) -> str:
        o = self.order
        return (
            f"venue order {o.cl_ord_id}: {o.side} {o.order_qty} {o.symbol} @ {o.price} "
            f"{o.status} cum {o.cum_qty}"
        )


@dataclass(frozen=True, slots=True)
class Update(_Action):
    client_order_id: str
    status: OrderStatus
    reason: str
    venue_order_id: str = ""
    cl_ord_id: str = ""  # set when the venue shows our pending replace took effect
    qty: Decimal | None = None
    price: Decimal | None = None
    name: ClassVar[str] = "update"

    def describe(self) -> str:
        extra = f" as {self.cl_ord_id} qty {self.qty} px {self.price}" if self.cl_ord_id else ""
        return f"-> {self.status}{extra} ({self.reason})"


@dataclass(frozen=True, slots=True)
class ApplyMissedFill(_Action):
    client_order_id: str
    exec_id: str
    qty: Decimal
    px: Decimal
    venue_cum_qty: Decimal
    venue_avg_px: Decimal
    venue_order_id: str = ""  # the listed one, for an order that has none yet
    name: ClassVar[str] = "apply_missed_fill"

    def describe(self) -> str:
        return (
            f"{self.qty} @ {self.px} (venue cum {self.venue_cum_qty} avg "
            f"{self.venue_avg_px}) exec {self.exec_id}"
        )


@dataclass(frozen=True, slots=True)
class MarkTerminal(_Action):
    client_order_id: str
    status: OrderStatus
    reason: str
    name: ClassVar[str] = "mark_terminal"

    def describe(self) -> str:
        return f"-> {self.status} ({self.reason})"


@dataclass(frozen=True, slots=True)
class Resubmit(_Action):
    client_order_id: str
    cl_ord_id: str
    name: ClassVar[str] = "resubmit"

    def describe(self) -> str:
        return f"send again as {self.cl_ord_id} (venue never saw it)"


@dataclass(frozen=True, slots=True)
class Escalate(_Action):
    reason: str
    detail: str
    client_order_id: str = ""
    symbol: str = ""
    name: ClassVar[str] = "escalate"

    def describe(self) -> str:
        return f"{self.reason}: {self.detail}"


Action = Adopt | Update | ApplyMissedFill | MarkTerminal | Resubmit | Escalate
ACTION_NAMES = ("adopt", "update", "apply_missed_fill", "mark_terminal", "resubmit", "escalate")


@dataclass(frozen=True, slots=True)
class Plan:
    venue: str
    actions: tuple[Action, ...]
    skipped: int = 0  # orders in flight this pass did not judge (actors.oms.reconcile_pass)
    failed: str = ""  # why there is no plan: the pass failed (an operator gets an error)

    @property
    def changes(self) -> tuple[Action, ...]:
        """The actions that change local state or send something (all but Escalate)."""
        return tuple(a for a in self.actions if not isinstance(a, Escalate))

    def summary(self) -> dict[str, Any]:
        """Counts per action kind, for the `reconcile_plan` log event and metrics."""
        counts = Counter(a.name for a in self.actions)
        return {
            "venue": self.venue,
            "actions": len(self.actions),
            **{n: counts.get(n, 0) for n in ACTION_NAMES},
            **({"skipped": self.skipped} if self.skipped else {}),
        }

    def to_dicts(self) -> list[dict[str, Any]]:
        return [a.to_dict() for a in self.actions]

    def format_dry_run(self) -> str:
        """A readable table of the plan (the CLI's `reconcile --dry-run`)."""
        s = self.summary()
        counts = " ".join(f"{n}={s[n]}" for n in ACTION_NAMES if s[n])
        lines = [
            f"reconcile plan for venue {self.venue}: {len(self.actions)} action(s)"
            + (f" ({counts})" if counts else "")
        ]
        for a in self.actions:
            lines.append(f"  {a.name:<18} {a.client_order_id or '-':<28} {a.describe()}")
        return "\n".join(lines)
