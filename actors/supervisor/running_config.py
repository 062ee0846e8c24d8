"""The config the supervisor runs with now: the file as loaded at start, then with each
live section a reload applied (`actors.supervisor.reload`). The post-mortem watch's thread
reads it (`actors.supervisor.postmortem_watch`), so an automatic bundle's config.json is
what was in force at the engagement, not the start's."""

from __future__ import annotations

from protocol.config import SystemConfig

_running: SystemConfig | None = None


def set_running(cfg: SystemConfig) -> None:
    """A reload applied sections: `cfg` is in force from now (one reference swap)."""
    global _running
    _running = cfg


def running(started_with: SystemConfig) -> SystemConfig:
    """The config in force: `started_with` until a reload applied something to that same
    system (its state dir: restart-only, so a reload never changes it)."""
    if _running is None or _running.system.state_dir != started_with.system.state_dir:
        return started_with
    return _running
