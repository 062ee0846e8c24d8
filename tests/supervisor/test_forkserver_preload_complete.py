"""What an actor imports after the fork is not shared with the fork server: each such
import costs every actor its own copy of the module and of the import machinery's pages
it touches (issue 16: ~1 MiB in each connector for `encodings.idna`)."""

from __future__ import annotations

import json

from tests.helpers import run_python

_PROBE = """
import json, socket, sys
from actors.supervisor.forkserver import preload
preload(["connector"])
before = set(sys.modules)
socket.getaddrinfo("127.0.0.1", 9, type=socket.SOCK_STREAM)  # what TcpClient.connect does
print(json.dumps(sorted(set(sys.modules) - before)))
"""


def test_a_connectors_connect_imports_nothing_the_preload_left_out() -> None:
    """The host name's IDNA encoding (`socket.getaddrinfo`) finds its codec preloaded."""
    done = run_python(["-c", _PROBE], timeout_s=60.0)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []
