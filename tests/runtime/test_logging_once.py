"""`configure_logging` is done once per process image: the fork server configures it at
its config's level and a forked actor's own call finds it done (issue 16, idle memory);
anything that changed it since (level, stdout, another configure, a reset) redoes it."""

from __future__ import annotations

import json
from pathlib import Path

from tests.helpers import make_config, run_python, to_toml

_PROBE = """
import io, json, sys
import structlog
from actors.runtime.logs import configure_logging
def procs():
    return structlog.get_config()["processors"]
configure_logging("info")
first = procs()
configure_logging("info")
same = procs() is first
configure_logging("warning")
level_redone = procs() is not first
structlog.get_logger().info("dropped_at_warning")
second = procs()
structlog.configure(processors=[structlog.processors.JSONRenderer()])
configure_logging("warning")
other_redone = procs() is not second
third = procs()
structlog.reset_defaults()
configure_logging("warning")
reset_redone = procs() is not third and structlog.is_configured()
fourth = procs()
sys.stdout = io.StringIO()
configure_logging("warning")
stdout_redone = procs() is not fourth
sys.stdout = sys.__stdout__
print(json.dumps([same, level_redone, other_redone, reset_redone, stdout_redone]))
"""


def test_a_second_call_alike_is_a_no_op_and_any_change_redoes_it() -> None:
    done = run_python(["-c", _PROBE])
    assert done.returncode == 0, done.stderr
    assert "dropped_at_warning" not in done.stdout
    assert json.loads(done.stdout.strip().splitlines()[-1]) == [True, True, True, True, True]


_FORKSERVER = """
import json, sys
import structlog
from actors.runtime.actor import ActorArgs
from actors.runtime.logs import configure_logging
from actors.supervisor import forkserver
args = ActorArgs(actor_id="risk", kind="risk", epoch=1, config_path=sys.argv[1])
forkserver.ConfigCache(on_load=forkserver._on_config).get(args)
made = structlog.get_config()["processors"]
configure_logging("warning")  # the config's level, as the actor calls it
print(json.dumps(structlog.get_config()["processors"] is made))
"""


def test_the_fork_server_configures_logging_at_its_configs_level(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(
        to_toml(make_config(venues=["simA"], overrides={"system": {"log_level": "warning"}}))
    )
    done = run_python(["-c", _FORKSERVER, str(path)])
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) is True
