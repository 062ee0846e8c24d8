"""`tradepulse run` starts the fork server early: forked once the imports it shares with the
supervisor are done (`forkserver_fork`), else launched before the supervisor's own heavy
imports so that the two interpreters' imports overlap (a warm start's first ~0.9 s were the
two in series); the early fork server never holds a credential the config names, and a
start that fails leaves no fork server behind."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from actors.supervisor import forkserver_launch as fl
from tests.helpers import REPO_ROOT, make_config, to_toml

_PROBE = """
import json, os, sys, threading
import supervisor
from actors.supervisor import forkserver_fork as ff, forkserver_launch as fl

launched = []
original = fl.ForkServerProcess.__init__
forked = ff.ForkedServer.__init__

def state(how):
    return {"how": how, "pydantic": "pydantic" in sys.modules, "zmq": "zmq" in sys.modules,
            "prometheus": "prometheus_client" in sys.modules,
            "threads": threading.active_count()}

def spy(self, env, expected=()):
    launched.append(state("launched"))
    original(self, env, expected)
    launched[-1]["pid"] = self.proc.pid

def spy_fork(self, expected, *rest):
    launched.append(state("forked"))
    forked(self, expected, *rest)
    launched[-1]["pid"] = self.proc.pid

fl.ForkServerProcess.__init__ = spy
ff.ForkedServer.__init__ = spy_fork
code = supervisor.main(sys.argv[1:])
print(json.dumps({"code": code, "launched": launched}))
"""


def _config(tmp_path: Path, **overrides: object) -> str:
    path = tmp_path / "config.toml"
    path.write_text(to_toml(make_config(venues=("simA",), overrides=overrides)))
    return str(path)


def test_run_forks_the_fork_server_after_the_shared_imports_and_reaps_it_on_failure(
    tmp_path: Path,
) -> None:
    """`run` forks the fork server once the libraries every actor shares are imported
    (pydantic, zmq: their pages then shared with it), before any thread and before
    prometheus_client (it reads the metrics dir, set later, at import); a `run` that then
    fails (an unknown host group: exit 2) kills and reaps it. Another command starts none."""
    config = _config(tmp_path)
    args = ["--config", config, "--state-dir", str(tmp_path / "s"), "--runtime-dir", str(tmp_path)]
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, "run", *args, "--host-group", "nosuch"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["code"] == 2, out.stderr
    (launched,) = result["launched"]
    assert launched["how"] == "forked" and launched["threads"] == 1
    assert launched["pydantic"] is True and launched["zmq"] is True
    assert launched["prometheus"] is False
    assert not psutil.pid_exists(launched["pid"])  # killed and reaped before the exit
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, "status", *args, "--timeout-s", "0.2"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert json.loads(out.stdout.strip().splitlines()[-1])["launched"] == []


def test_the_early_environment_holds_no_credential_the_config_file_names(tmp_path: Path) -> None:
    """Before the config is validated the launcher reads the raw TOML: every variable named
    under a `*_env` key is left out (even one a base prefix would let through), and so is
    the metrics dir the supervisor sets later."""
    venue = {"name": "simA", "username_env": "TP_SIMA_USER", "password_env": "LC_SIMA_PW"}
    config = _config(tmp_path, venues=[venue])
    environ = {
        "PATH": "/bin", "TP_SIMA_USER": "u", "LC_SIMA_PW": "secret", "TP_OTHER": "1",
        "PROMETHEUS_MULTIPROC_DIR": "/stale", "DEPLOY_TOKEN": "x",
    }  # fmt: skip
    assert fl.early_environ(environ, config) == {"PATH": "/bin", "TP_OTHER": "1"}
    assert fl.early_environ(environ, str(tmp_path / "missing.toml")) is None


def test_an_early_fork_server_the_config_would_not_give_that_environment_is_killed() -> None:
    """`setup` checks the early environment against the base the loaded config yields: a
    variable the base leaves out (a credential named where the raw TOML read missed it)
    means the early process is killed, and the spawner starts its own (`adopt` None)."""
    early = fl.launch_early(["run", "--config", str(REPO_ROOT / "deploy/config/demo.toml")], {
        "PATH": "/usr/bin:/bin", "TP_HIDDEN_CREDENTIAL": "secret",
    })  # fmt: skip
    assert early is not None
    try:
        fl.setup({"PATH": "/usr/bin:/bin"}, {"oms"})
        assert early.proc.poll() is not None  # killed and reaped
        assert fl.adopt({"PATH": "/usr/bin:/bin"}, {"oms"}) is None
    finally:
        fl.discard()
        early.kill()


def test_an_adopted_early_fork_server_preloads_after_its_setup() -> None:
    """An early process is adopted only with the setup it was sent (else killed: the
    spawner starts a new one); one not set up yet gets the adopter's; it answers ready once
    it has preloaded."""
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO_ROOT)}
    argv = ["run", "--config=" + str(REPO_ROOT / "deploy/config/demo.toml")]
    early = fl.launch_early(argv, env)
    assert early is not None
    try:
        fl.setup({**env, "TP_LATE": "1"}, {"heartbeat"})
        assert fl.adopt({**env, "TP_LATE": "1"}, {"heartbeat", "oms"}) is None
        assert early.proc.poll() is not None
        early = fl.launch_early(argv, env)
        assert early is not None
        assert fl.adopt({**env, "TP_LATE": "1"}, {"heartbeat"}) is early
        assert early.setup_sent == ({**env, "TP_LATE": "1"}, ("heartbeat",))
        assert "ready" in early.read()
    finally:
        fl.discard()
        if early is not None:
            early.kill()


def test_what_the_fork_server_imports_before_its_setup_loads_no_prometheus_client(
    tmp_path: Path,
) -> None:
    """prometheus_client reads PROMETHEUS_MULTIPROC_DIR at import, and the early fork server
    does not have it until its setup: `warm` never loads it (a module that would is left
    for the preload), and every module it lists does load without it (else the list is
    stale: that module's time is no longer taken before the setup)."""
    (tmp_path / "needs_metrics.py").write_text("import prometheus_client\n")
    code = (
        "import sys\n"
        "from actors.supervisor import forkserver as fs\n"
        "fs.WARM_BY_KIND['probe'] = ('needs_metrics',)\n"
        "fs.warm([*fs.WARM_BY_KIND])\n"
        "listed = [*fs.WARM_MODULES, *(m for k, ms in fs.WARM_BY_KIND.items() if k != 'probe'"
        " for m in ms)]\n"
        "print('prometheus_client' in sys.modules, 'needs_metrics' in sys.modules,"
        " [m for m in listed if m not in sys.modules])\n"
        "import needs_metrics\n"  # after warm: imports as usual
        "print('prometheus_client' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60,
        env={**os.environ, "PYTHONPATH": f"{REPO_ROOT}:{tmp_path}"},
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == ["False False []", "True"]


@pytest.mark.parametrize(
    "args",
    [
        ["run"],
        ["run", "--config", "c.toml", "--state-dir", "s", "--runtime-dir", "r", "--cold"],
        ["run", "--config=c.toml", "--metrics-port", "0", "--intake", "paused", "--demo"],
        ["run", "--host-group", "edge-a", "--json", "--timeout-s", "3", "--conf", "x.toml"],
    ],
)
def test_run_is_parsed_without_the_operator_commands_as_the_full_parser_would(
    args: list[str],
) -> None:
    """`run` (a start) is parsed by a parser of `run` alone, so the operator commands are
    not imported before the fork server's setup; the namespace is the full parser's."""
    import supervisor

    assert supervisor._parse(args) == supervisor.build_parser().parse_args(args)


@pytest.mark.parametrize(
    "args", [["run", "--intake", "shut"], ["run", "--nope"], ["run", "--version"], ["run", "-h"]]
)
def test_what_the_run_parser_refuses_the_full_parser_answers(
    args: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """Help and every error of `run` come from the full parser: the same output, exit 0 or 2."""
    import supervisor

    with pytest.raises(SystemExit) as light:
        supervisor._parse(args)
    ours = capsys.readouterr()
    with pytest.raises(SystemExit) as full:
        supervisor.build_parser().parse_args(args)
    assert light.value.code == full.value.code and (ours.out, ours.err) == capsys.readouterr()


def test_a_start_does_not_import_the_operator_commands_before_its_setup() -> None:
    code = (
        "import sys, supervisor\n"
        "ns = supervisor._parse(['run', '--config', 'c.toml'])\n"
        "print(ns.cmd, 'actors.supervisor.commands' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["run", "False"]
