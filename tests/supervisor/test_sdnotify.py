"""sd_notify, the pure parts and the datagram: the status summary, the '@' abstract address,
the watchdog interval, the variables taken out of the environment, the wire format on a
socket the test binds, and a gone socket counted and logged instead of raised."""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog
from prometheus_client import REGISTRY
from structlog.testing import capture_logs

from actors.runtime.timers import Timers
from actors.supervisor.sdnotify import (
    SystemdNotify,
    socket_address,
    status_line,
    watchdog_interval_s,
)
from tests.helpers import eventually

LOG = structlog.get_logger()


def _status(**over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "actors": [{"id": "risk", "state": "running"}, {"id": "oms", "state": "running"}],
        "venues": {"simA": {"state": "CONNECTED"}, "simB": {"state": "CONNECTED"}},
        "kill_switch": {"engaged": False, "reason": ""},
        "intake": "open",
    }
    return base | over


def test_status_line_while_starting_counts_running_actors() -> None:
    st = _status(actors=[{"id": "risk", "state": "running"}, {"id": "oms", "state": "starting"}])
    assert status_line(st, ready=False) == "starting: 1/2 actors running"


def test_status_line_when_ready_names_venues_up_and_intake() -> None:
    assert status_line(_status(), ready=True) == "ready: 2/2 venues up, intake open"
    st = _status(venues={"simA": {"state": "CONNECTED"}, "simB": {"state": "DOWN"}})
    st["actors"][1]["state"] = "backoff"
    assert status_line(st, ready=True) == "ready: 1/2 venues up, intake open, not running: oms"


def test_status_line_leads_with_an_engaged_kill_switch_on_one_line() -> None:
    st = _status(kill_switch={"engaged": True, "reason": "desk halt\nSTOPPING=1"})
    line = status_line(st, ready=True)
    assert line == "kill-switch ENGAGED: desk halt STOPPING=1; 2/2 venues up, intake open"
    long = _status(kill_switch={"engaged": True, "reason": "x" * 500})
    assert len(status_line(long, ready=True)) == 200


def _remote(group: str, link: str, venue_state: str | None) -> dict[str, Any]:
    """The core's row of a venue on an edge (actors/supervisor/status_data.py)."""
    return {
        "state": f"remote (link {link})",
        "host_group": group,
        "link": {"state": link},
        "venue_state": venue_state,
    }


def test_status_line_on_the_core_counts_the_venues_on_edges_by_link_and_venue_state() -> None:
    """A venue on an edge is up when the link to its edge is up and its connector last told
    the OMS CONNECTED; the line says how many are on edges and each edge link's state."""
    venues = {
        "simA": {"state": "CONNECTED", "host_group": "core"},
        "lse": _remote("edge-a", "up", "CONNECTED"),
        "xet": _remote("edge-a", "up", "DISCONNECTED"),
        "cme": _remote("edge-b", "down", "CONNECTED"),  # the OMS's last word: stale
    }
    st = _status(venues=venues, host_group="core", links={"edge-a": "up", "edge-b": "down"})
    assert status_line(st, ready=True) == (
        "ready: 2/4 venues up (3 on edges, link edge-a up, edge-b down), intake open"
    )
    venues["xet"] = venues["xet"] | {"venue_state": "CONNECTED"}
    venues["lse"] = venues["lse"] | {"state": "stopped"}  # `tradepulse stop` from the core
    st["links"] = {"edge-a": "up", "edge-b": "down"}
    assert status_line(st, ready=True).startswith("ready: 2/4 venues up (3 on edges")
    unknown = {
        n: v | {"link": {"state": "unknown"}} if "link" in v else v for n, v in venues.items()
    }
    no_link_actor = _status(venues=unknown, host_group="core", links={})
    assert status_line(no_link_actor, ready=True) == (
        "ready: 1/4 venues up (3 on edges, link edge-a unknown, edge-b unknown), intake open"
    )
    one = _status(venues={"lse": _remote("edge-a", "up", "CONNECTED")}, links={"edge-a": "up"})
    assert status_line(one, ready=True) == (
        "ready: 1/1 venues up (1 on an edge, link edge-a up), intake open"
    )


def test_status_line_on_an_edge_names_its_group_and_the_link_not_an_intake() -> None:
    """An edge runs no OMS: no intake (the core's), its own venues and the link to the core."""
    st = _status(
        actors=[{"id": "venuesim.lse", "state": "running"}, {"id": "link", "state": "running"}],
        venues={"lse": {"state": "CONNECTED", "host_group": "edge-a"}},
        host_group="edge-a",
        links={"core": "down"},
        intake="unknown",
    )
    assert status_line(st, ready=True) == "ready: 1/1 venues up (host group edge-a, link core down)"


def test_socket_address_maps_at_to_the_abstract_namespace() -> None:
    assert socket_address("@tp/notify") == "\0tp/notify"
    assert socket_address("/run/systemd/notify") == "/run/systemd/notify"


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({"WATCHDOG_USEC": "2000000"}, 1.0),
        ({"WATCHDOG_USEC": "2000000", "WATCHDOG_PID": "4242"}, 1.0),
        ({"WATCHDOG_USEC": "2000000", "WATCHDOG_PID": "1"}, None),  # meant for another pid
        ({"WATCHDOG_USEC": "0"}, None),
        ({"WATCHDOG_USEC": "soon"}, None),
        ({"WATCHDOG_USEC": "²"}, None),  # a digit to str.isdigit, not to int
        ({"WATCHDOG_USEC": "9" * 5000}, None),  # past int's digit limit
        ({"WATCHDOG_USEC": "2000000", "WATCHDOG_PID": "²"}, None),
        ({}, None),
    ],
)
def test_watchdog_interval_is_half_the_usec_for_our_pid(
    environ: dict[str, str], expected: float | None
) -> None:
    assert watchdog_interval_s(environ, 4242) == expected


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    name = f"@tp-sdnotify-{uuid.uuid4().hex[:12]}"
    sock.bind(socket_address(name))
    sock.settimeout(5.0)
    yield sock, name
    sock.close()


def _recv(sock: socket.socket) -> list[str]:
    return sock.recv(4096).decode().split("\n")


def test_from_environ_takes_the_variables_out_and_sends_to_the_abstract_socket(
    receiver: tuple[socket.socket, str],
) -> None:
    sock, name = receiver
    environ = {"NOTIFY_SOCKET": name, "WATCHDOG_USEC": "3000000", "PATH": "/bin"}
    notify = SystemdNotify.from_environ(environ, LOG)
    assert environ == {"PATH": "/bin"}  # actors spawned later do not inherit them
    assert notify.enabled and notify.watchdog_s == 1.5
    notify.ready(_status())
    assert _recv(sock) == ["READY=1", "STATUS=ready: 2/2 venues up, intake open"]
    notify.update_status(_status())  # unchanged: nothing sent
    notify.update_status(_status(intake="paused"))
    assert _recv(sock) == ["STATUS=ready: 2/2 venues up, intake paused"]
    notify.reloading()
    reloading = _recv(sock)
    assert reloading[:2] == ["RELOADING=1", "STATUS=reloading"]
    assert reloading[2].startswith("MONOTONIC_USEC=") and int(reloading[2].split("=")[1]) > 0
    notify.reloaded(_status())
    assert _recv(sock)[0] == "READY=1"
    notify.stopping()
    assert _recv(sock) == ["STOPPING=1", "STATUS=stopping"]
    assert notify.sent == 5
    notify.close()


def test_attach_pings_the_watchdog_from_the_loop_timers(
    receiver: tuple[socket.socket, str],
) -> None:
    sock, name = receiver
    notify = SystemdNotify(socket_address(name), 0.01, LOG)
    timers = Timers()
    notify.attach(timers, _status)
    sock.settimeout(0.05)

    def pinged() -> bool:
        timers.run_due()
        try:
            return "WATCHDOG=1" in _recv(sock)
        except TimeoutError:
            return False

    eventually(pinged, 5.0)
    notify.close()


def test_without_notify_socket_nothing_is_sent_and_the_hook_is_unchanged() -> None:
    notify = SystemdNotify.from_environ({}, LOG)
    assert not notify.enabled
    timers = Timers()
    notify.attach(timers, _status)
    assert timers.wait_s(9.0) == 9.0  # no timer registered

    def hook(status: dict[str, Any]) -> None:
        pass

    assert notify.when_ready(hook) is hook
    assert notify.send("READY=1") is False


def test_a_gone_socket_is_counted_and_logged_once_not_raised(tmp_path: Path) -> None:
    def failures() -> float:
        return REGISTRY.get_sample_value("tradepulse_sd_notify_failures_total") or 0.0

    before = failures()
    notify = SystemdNotify(str(tmp_path / "nobody-listens"), None, LOG)
    with capture_logs() as logs:
        assert notify.send("READY=1") is False
        assert notify.send("WATCHDOG=1") is False
    assert failures() == before + 2
    events = [e for e in logs if e["event"] == "sd_notify_failed"]
    assert len(events) == 1 and events[0]["sent"] == "READY=1"  # rate-limited: once a minute
    notify.close()


def test_a_status_that_cannot_be_built_is_counted_not_raised(
    receiver: tuple[socket.socket, str],
) -> None:
    """The STATUS tick runs in the supervisor's loop: an exception there (an unreadable
    kill-switch file, say) must not stop the supervisor; the watchdog goes on."""
    sock, name = receiver

    def broken() -> dict[str, Any]:
        raise OSError("kill_switch.json: I/O error")

    notify = SystemdNotify(socket_address(name), 0.01, LOG)
    timers = Timers()
    notify.attach(timers, broken)
    sock.settimeout(0.05)
    with capture_logs() as logs:

        def status_failed_then_pinged() -> bool:
            timers.run_due()  # raises nothing
            try:
                return "WATCHDOG=1" in _recv(sock) and any(
                    e["event"] == "sd_notify_failed" for e in logs
                )
            except TimeoutError:
                return False

        eventually(status_failed_then_pinged, 5.0)
    notify.close()


def test_a_reload_during_startup_sends_no_ready(receiver: tuple[socket.socket, str]) -> None:
    """SIGHUP before every actor is READY: the reload ends with a STATUS line only (READY=1
    waits for all-ready); once the system is ready a reload ends with READY=1."""
    sock, name = receiver
    notify = SystemdNotify.from_environ({"NOTIFY_SOCKET": name}, LOG)
    starting = _status(actors=[{"id": "risk", "state": "starting"}])
    notify.reloading()
    assert _recv(sock)[0] == "RELOADING=1"
    notify.reloaded(starting)
    after = _recv(sock)
    assert "READY=1" not in after and after[0].startswith("STATUS=starting")
    notify.ready(_status())
    assert _recv(sock)[0] == "READY=1"
    notify.reloading()
    _recv(sock)
    notify.reloaded(_status())
    assert _recv(sock)[0] == "READY=1"
    notify.close()
