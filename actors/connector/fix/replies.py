"""What the venue answers, routed: executions become `ExecReport`s (collected by the
caller, which hands them to the listener as one durable batch), status / position /
mass-cancel answers feed the open queries, and a Reject or BusinessMessageReject of one
of our messages ends what it refers to (a D proven never live is a refused order; a
query fails now with VENUE_REFUSED). An ExecutionReport that is no execution we can read
(an ExecType we do not map, no ExecID or ClOrdID, a bust without ExecRefID) is counted
(``tradepulse_venue_answers_unreadable_total``, source exec_report) and logged within a
budget (``exec_not_forwarded``)."""

from __future__ import annotations

from actors.connector.adapter import RequestFailed
from actors.connector.fix import codec as fc
from actors.connector.fix import mapping as fm
from actors.connector.fix import trade_busts
from actors.connector.fix.events import AppMessage, Logger
from actors.connector.fix.outbound import OutboundQueue
from actors.connector.fix.queries import QueryBook
from actors.connector.fix.session import FixSession
from actors.runtime import metrics
from actors.runtime.ratelog import LogBudget
from actors.runtime.tally import TURN
from protocol.messages import ErrorCode, ExecReport


class ReplyRouter:
    def __init__(
        self,
        venue: str,
        out: OutboundQueue,
        queries: QueryBook,
        session: FixSession,
        log: Logger,
    ) -> None:
        self._venue = venue
        self._out = out
        self._queries = queries
        self.session = session
        self._log = log
        self._roundtrip = metrics.VENUE_ROUNDTRIP.labels(venue=venue)
        self._unreadable = metrics.VENUE_ANSWERS_UNREADABLE.labels(
            venue=venue, source="exec_report"
        )
        self._unreadable_log = LogBudget()

    def on_app(self, event: AppMessage, execs: list[ExecReport]) -> None:
        msg, msg_type = event.msg, event.msg_type
        if msg_type == "8":
            raw_type = fc.first_fields(msg).get(b"150")  # fm.exec_type(msg), inline
            exec_type = "" if raw_type is None else raw_type.decode("latin-1")
            if exec_type == fm.EXEC_TYPE_STATUS:
                if not self._queries.feed_status(msg):
                    self._log.debug("fix_status_unmatched", poss_dup=event.poss_dup)
                return
            report, why = fm.to_exec_report(msg, self._venue), ""
            if report is not None and report.kind in trade_busts.KINDS:
                report, why = trade_busts.completed(report, msg)
            if report is None:
                self._not_forwarded(exec_type, event.seq, why)
                return
            self._observe_roundtrip(report.cl_ord_id)
            execs.append(report)
        elif msg_type == "9":
            report = fm.cancel_reject_report(msg, self._venue)
            if report is not None:
                self._observe_roundtrip(report.cl_ord_id)
                execs.append(report)
        elif msg_type in ("AP", "AO"):
            self._queries.feed_position(msg)
        elif msg_type == "r":
            self._queries.feed_mass_cancel(msg)
        elif msg_type == "j":
            text, ref_type = fm.business_reject_text(msg), fc.get_str(msg, 372)
            unsupported = fc.get_int(msg, 380) == fm.UNSUPPORTED_MESSAGE_TYPE
            ref_seq = fc.get_int(msg, 45)  # RefSeqNum is optional in a 35=j
            if ref_seq is None:
                ref_id = fc.get_str(msg, 379) or ""
                self._by_business_ref(ref_id, ref_type, text, execs, unsupported)
            else:
                self.on_rejected(ref_seq, ref_type, text, execs, unsupported=unsupported)
        else:
            self._log.debug("fix_message_ignored", msg_type=msg_type, seq=event.seq)

    def on_rejected(
        self,
        ref_seq: int,
        ref_type: str | None,
        text: str,
        execs: list[ExecReport],
        *,
        unsupported: bool = False,
    ) -> None:
        """The venue rejected our message `ref_seq` unread (a session Reject or a
        BusinessMessageReject): a D is a refused order (never live), an F / G a refused
        request (the order as it was), a query fails now; each only when the refused
        message can only have been that one send. `unsupported`: the venue does not serve
        that MsgType at all (380=3, 373=11)."""
        msg_type, ref = self._out.sent_request(ref_seq)
        if ref_type and msg_type and ref_type != msg_type:
            self._log.warning("fix_reject_unmatched", ref_seq=ref_seq, ref_type=ref_type, text=text)
        elif msg_type == "D" and ref and self._refusal_is_final(ref_seq, ref):
            self._log.warning("order_refused", cl_ord_id=ref, text=text)
            execs.append(fm.refused_order_report(self._venue, ref, text))
        elif msg_type == "D":
            # maybe a refused copy (PossDup resend, a send of an earlier incarnation, or of
            # an order resubmitted since): the order may be live; reconciliation decides
            self._log.error("order_outcome_unknown", cl_ord_id=ref, msg_type=msg_type, text=text)
        elif msg_type in ("F", "G") and ref and self._refusal_is_final(ref_seq, ref):
            # the venue never read the cancel / replace: the order is as it was (as after
            # an OrderCancelReject), so the OMS takes it out of PENDING_CANCEL / _REPLACE
            self._log.warning("order_request_refused", cl_ord_id=ref, msg_type=msg_type, text=text)
            execs.append(fm.refused_request_report(self._venue, ref, text))
        elif msg_type in ("F", "G"):
            # maybe a refused copy of a request the venue holds: reconciliation asks
            self._log.error("order_outcome_unknown", cl_ord_id=ref, msg_type=msg_type, text=text)
        elif ref:
            err = RequestFailed(ErrorCode.VENUE_REFUSED, text, unsupported=unsupported)
            self._queries.expire(ref, err)

    def _by_business_ref(
        self,
        ref_id: str,
        ref_type: str | None,
        text: str,
        execs: list[ExecReport],
        unsupported: bool,
    ) -> None:
        """A BusinessMessageReject without RefSeqNum(45): its BusinessRejectRefID(379) is
        the ClOrdID of a D / F / G, or the request id of a query."""
        seq = self._out.last_send_seq(ref_id) if ref_type in ("D", "F", "G") else None
        key = self._queries.key_of(ref_id) if ref_type not in ("D", "F", "G") else None
        if seq is not None:
            self.on_rejected(seq, ref_type, text, execs)
        elif key is not None:
            err = RequestFailed(ErrorCode.VENUE_REFUSED, text, unsupported=unsupported)
            self._queries.expire(key, err)
        else:
            self._log.warning("fix_reject_unmatched", ref_id=ref_id, ref_type=ref_type, text=text)

    def _refusal_is_final(self, seq: int, cl_ord_id: str) -> bool:
        """A Reject of our D proves the order was never live only for the last D this
        incarnation sent for it, never sent again as a PossDup copy since."""
        return self._out.is_latest_order_send(seq, cl_ord_id) and (
            seq > self.session.resent_through
        )

    def _not_forwarded(self, exec_type: str, seq: int, why: str = "") -> None:
        """An ExecutionReport that is no execution for the OMS: a pending state (debug), or
        one we cannot read (an ExecType we do not map, no ExecID or ClOrdID, a bust without
        its ExecRefID: `why`): counted (source exec_report) and logged within the budget,
        10 lines a second."""
        if exec_type in fm.EXEC_TYPES_IGNORED:
            self._log.debug("exec_not_forwarded", exec_type=exec_type, seq=seq)
            return
        self._unreadable.inc()
        if (suppressed := self._unreadable_log.take()) is not None:
            exec_type = exec_type[:16]  # the venue's text
            self._log.warning(
                "exec_not_forwarded", exec_type=exec_type, seq=seq, suppressed=suppressed,
                **({"reason": why} if why else {}),
            )  # fmt: skip

    def _observe_roundtrip(self, cl_ord_id: str) -> None:
        elapsed_s = self._out.answered(cl_ord_id)
        if elapsed_s is not None:
            TURN.observe(self._roundtrip, elapsed_s)
