"""Executions batched by bytes as well as by count (actors/connector/exec_batch.py), from the
connb review: one FIX read of executions whose Text (58) is long - legal FIX, the venue's to
size - went to the OMS as ONE ExecReports of up to 128. 128 x 40 KiB of text is ~5 MiB: over
the codec's frame limit (4 MiB) and the sockets' ZMQ_MAXMSGSIZE (libzmq drops the
connection). The re-send grouped the same executions the same way, so they were never
delivered and the OMS never applied them. Each of them alone (~40 KiB) fits."""

from __future__ import annotations

from pathlib import Path

from actors.connector.exec_batch import exec_messages
from protocol.codec import MAX_FRAME_BYTES, Envelope, Sender, decode
from protocol.exceptions import ProtocolError
from protocol.messages import ExecAck, ExecReport, ExecReports
from protocol.sockets import MAX_MSG_BYTES
from tests.connector.test_exec_batch_send import EXEC_RESEND_S, _Connector, _fill

V = "simA"
TEXT = "x" * 40_000  # a verbose venue reject / fill text: legal FIX 4.4


def _reports(n: int) -> list[ExecReport]:
    return [
        ExecReport(venue=V, exec_id=f"E{i}", kind="rejected", cl_ord_id=f"c{i}", text=TEXT)
        for i in range(n)
    ]


def test_each_execution_alone_fits_a_frame() -> None:
    sender = Sender(f"connector.{V}", 3)
    for r in _reports(3):
        frames = sender.encode(r)
        assert len(frames[0]) < MAX_FRAME_BYTES
        assert decode(frames).body == r


def test_short_executions_still_go_128_a_batch() -> None:
    reports = [ExecReport(venue=V, exec_id=f"E{i}", kind="accepted", cl_ord_id=f"c{i}")
               for i in range(300)]  # fmt: skip
    assert [len(c) for _, c in exec_messages(V, reports)] == [128, 128, 44]


def test_a_batch_of_them_fits_a_frame() -> None:
    """Each batch `exec_messages` builds fits the frame limit (it was over: the OMS refused
    it whole, bad_message - and ZMQ_MAXMSGSIZE dropped the connection first)."""
    sender = Sender(f"connector.{V}", 3)
    for msg, carried in exec_messages(V, _reports(128)):
        frames = sender.encode(msg)
        size = len(frames[0])
        assert size <= MAX_MSG_BYTES, f"{len(carried)} executions in {size} bytes"
        try:
            decode(frames)
        except ProtocolError as exc:
            raise AssertionError(f"the OMS refuses the batch whole: {exc}") from exc


def test_a_fill_batched_behind_long_text_rejects_reaches_the_oms(tmp_path: Path) -> None:
    """The connector's own send + re-send (the harness of tests/connector/
    test_exec_batch_send.py), an OMS that decodes each frame as the real one does and acks
    what it could decode. 127 long-text rejects then a plain fill, from one FIX read: the
    fill rode in the oversized batch, which the OMS refused whole, at every re-send."""
    c = _Connector(tmp_path)
    reports = [*_reports(127), _fill(999)]
    c.outbox.add(reports)
    c._send_execs(reports)
    sender = Sender(f"connector.{V}", 3)
    delivered: set[str] = set()
    for _ in range(5):  # the first send, then four re-sends
        sent, c.oms.sent = c.oms.sent, []
        for msg, callback in sent:
            try:
                body = decode(sender.encode(msg)).body
            except ProtocolError:
                continue  # bad_message at the OMS: no answer
            ids = (
                [str(b["exec_id"]) for b in body.reports]
                if isinstance(body, ExecReports)
                else [body.exec_id]
            )
            delivered |= set(ids)
            callback(Envelope("exec_ack", "oms", 5, 1, "m", "c", 0, ExecAck(venue=V, exec_ids=ids)))
        for exec_id in c._sent_at:
            c._sent_at[exec_id] -= EXEC_RESEND_S  # its re-send is due
        c._resend_execs()
    c.outbox.close()
    assert "X999" in delivered, f"the fill was never delivered; {len(c.outbox.pending)} stuck"
