"""A same-uid stranger at the supervisor's control socket (run as `python -m
tests.adversarial.control_stranger ENDPOINT`): it removes the socket file, binds its own
ROUTER there and answers every control request with a well-formed `ok` the command's own
format prints (a kill-switch state, a stop), printing `answered <command>` for each, until
it is killed. With `record` after the endpoint it first records itself in the socket's dir as
its supervisor (`supervisor.identity`), as a supervisor (re)started there does. Used by
tests/adversarial/test_control_stranger.py."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import zmq

from protocol.codec import Sender, decode
from protocol.control_binder import write_identity
from protocol.messages import ControlReply, ControlRequest

FORGED = {  # what the real supervisor would answer, near enough for the CLI to print it
    "kill-switch": {"engaged": True, "reason": "desk drill", "source": "operator"},
    "stop": {"stopped": True},
    "positions": {"positions": [], "total": 0},
    "exposure": {"positions": []},
}


def main(endpoint: str, record: bool = False) -> None:
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    sock = ctx.socket(zmq.ROUTER)
    sock.setsockopt(zmq.LINGER, 0)
    path = endpoint.removeprefix("ipc://")
    if record:
        write_identity(Path(path).parent)
    if os.path.lexists(path):
        os.unlink(path)
    sock.bind(endpoint)
    sender = Sender("supervisor", 1)
    while True:
        identity, *frames = sock.recv_multipart()
        env = decode(frames)
        if not isinstance(env.body, ControlRequest):
            continue
        command = env.body.command.command
        data = FORGED.get(command, {})
        reply = ControlReply(status="ok", reason=f"{command} done", data=data)
        sock.send_multipart([identity, *sender.encode(reply, corr_id=env.msg_id)])
        print(f"answered {command}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], record=sys.argv[2:] == ["record"])
