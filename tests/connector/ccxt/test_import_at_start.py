"""ccxt.pro is imported while the ccxt connector starts (in `setup`, before READY), not in
its loop at the first session: the import is ~0.6 s of CPU, and on a loaded machine the
connector's loop was silent past the hang limit right after READY, so the supervisor
killed it as hung after every restart (found in `make test` at load 25: a short chaos run
INVALID with 12 connector restarts, the ccxt venue tests failing)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

PROBE = """
import sys
from pathlib import Path
from actors.connector.ccxt.adapter import CcxtAdapter
from protocol.ccxt_config import CcxtCfg
from protocol.config import VenueCfg
from tests.connector.fix.support import RecordingListener, TestLoop

class Quiet:
    def __getattr__(self, _name):
        return lambda *a, **k: None

before = "ccxt.pro" in sys.modules
vcfg = VenueCfg(name="bx", kind="ccxt",
                ccxt=CcxtCfg(api_key_env="K", secret_env="S", symbols=["BTC/USDT"]))
adapter = CcxtAdapter(TestLoop(), RecordingListener(), vcfg, store_dir=Path(sys.argv[1]),
                      log=Quiet(), environ={"K": "k" * 64, "S": "s" * 64})
print(before, "ccxt.pro" in sys.modules)
adapter.close()
"""


def test_constructing_the_adapter_imports_ccxt_before_any_session(tmp_path: Path) -> None:
    """A fresh interpreter: ccxt.pro is not loaded by importing the adapter, and is loaded
    once the adapter is built (no session started, no exchange made)."""
    out = subprocess.run(
        [sys.executable, "-c", PROBE, str(tmp_path / "store")],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    assert out.stdout.split() == ["False", "True"], out.stderr
