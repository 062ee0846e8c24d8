"""The connector forwards the executions of one FIX read as one request to the OMS (an
`ExecReports`, a lone one as today's `ExecReport`), in venue order, and re-sends the
unacknowledged ones the same way; an `ExecAck` of a batch clears each execution it names
from the outbox, and only those (one left out stays pending and is sent again)."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

from actors.connector.actor import EXEC_RESEND_S, ConnectorActor
from actors.connector.outbox import ExecOutbox
from protocol.codec import Envelope
from protocol.messages import ExecAck, ExecReport, ExecReports, Message, Side
from tests.log_stub import RecordingLog

V = "simA"


def _fill(i: int) -> ExecReport:
    return ExecReport(
        venue=V, exec_id=f"X{i}", kind="fill", cl_ord_id=f"c{i}", symbol="AAPL",
        side=Side.BUY, last_qty=Decimal(1), last_px=Decimal(100), cum_qty=Decimal(1),
    )  # fmt: skip


class _Oms:
    def __init__(self) -> None:
        self.sent: list[tuple[Message, Callable[[Envelope | None], None]]] = []

    def request(self, body: Message, callback: Callable[[Envelope | None], None], t: float) -> str:
        self.sent.append((body, callback))
        return str(len(self.sent))


class _Cuts:
    def poll(self, now: float) -> None:
        pass

    def oms_seen(self, epoch: int) -> None:
        pass


class _Connector:
    _send_execs = ConnectorActor._send_execs
    _resend_execs = ConnectorActor._resend_execs
    _on_oms_message = ConnectorActor._on_oms_message
    _note_oms_epoch = ConnectorActor._note_oms_epoch
    _on_exec_reply = ConnectorActor._on_exec_reply

    def __init__(self, tmp_path: Path) -> None:
        self.venue, self.oms, self.log, self.cuts = V, _Oms(), RecordingLog(), _Cuts()
        self.outbox = ExecOutbox(tmp_path)
        self._sent_at: dict[str, float] = {}
        self._retrying = False
        self._oms_epoch: int | None = 5


def _ids(msg: Message) -> list[str]:
    if isinstance(msg, ExecReports):
        return [str(b["exec_id"]) for b in msg.reports]
    assert isinstance(msg, ExecReport)
    return [msg.exec_id]


def test_a_reads_executions_go_as_one_request_in_order(tmp_path: Path) -> None:
    c = _Connector(tmp_path)
    c._send_execs([_fill(i) for i in range(4)])
    assert [type(m) for m, _ in c.oms.sent] == [ExecReports]
    assert _ids(c.oms.sent[0][0]) == ["X0", "X1", "X2", "X3"]
    c._send_execs([_fill(9)])
    assert type(c.oms.sent[1][0]) is ExecReport  # a lone one as today


def test_an_ack_of_a_batch_clears_what_it_names_the_rest_is_sent_again(
    tmp_path: Path,
) -> None:
    c = _Connector(tmp_path)
    reports = [_fill(i) for i in range(3)]
    c.outbox.add(reports)
    c._send_execs(reports)
    ack = ExecAck(venue=V, exec_ids=["X0", "X2"])  # X1 failed alone at the OMS
    c._on_oms_message(Envelope("exec_ack", "oms", 5, 1, "m", "c", 0, ack))
    assert list(c.outbox.pending) == ["X1"]
    for exec_id in c._sent_at:
        c._sent_at[exec_id] -= EXEC_RESEND_S  # its resend is due
    c._resend_execs()
    assert _ids(c.oms.sent[-1][0]) == ["X1"]
    c.outbox.close()
