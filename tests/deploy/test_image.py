"""deploy/compose/Dockerfile: a base image pinned by digest, every Python dependency
installed from the constraints file with exact versions, a non-root user."""

from __future__ import annotations

import re
import tomllib

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.deploy.metric_names import REPO

DOCKERFILE = REPO / "deploy" / "compose" / "Dockerfile"
CONSTRAINTS = REPO / "deploy" / "compose" / "constraints.txt"


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def _pins() -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in CONSTRAINTS.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            m = re.fullmatch(r"([A-Za-z0-9_.-]+)==([A-Za-z0-9_.+!-]+)", line)
            assert m, f"constraints.txt: {line!r} is not NAME==VERSION"
            name = canonicalize_name(m.group(1))
            assert name not in pins, f"{name} pinned twice"
            pins[name] = m.group(2)
    return pins


def test_the_base_image_is_pinned_by_digest() -> None:
    (base,) = [args for word, args in _instructions() if word == "FROM"]
    assert re.fullmatch(r"python:3\.11\.\d+-slim(-\w+)?@sha256:[0-9a-f]{64}", base), base


def test_dependencies_are_installed_from_the_constraints_file() -> None:
    """The constraints file is copied in before the install, and the one `pip install` of the
    image uses it both as -c and as PIP_CONSTRAINT (the build backend's isolated env too)."""
    steps = _instructions()
    copies = [i for i, (w, a) in enumerate(steps) if w == "COPY" and "constraints.txt" in a]
    installs = [i for i, (w, a) in enumerate(steps) if w == "RUN" and "pip install" in a]
    assert len(copies) == 1 and len(installs) == 1
    assert copies[0] < installs[0]
    (_, copied) = steps[copies[0]]
    src, dest = copied.split()
    assert (REPO / src) == CONSTRAINTS
    run = steps[installs[0]][1]
    assert re.search(rf"pip install .*-c {re.escape(dest)}\b", run), run
    assert f"PIP_CONSTRAINT={dest}" in run


def test_every_dependency_of_pyproject_is_pinned_within_its_range() -> None:
    """Each runtime dependency and the build backend: an exact pin that satisfies the range
    pyproject.toml asks for."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    wanted = [Requirement(r) for r in project["project"]["dependencies"]]
    wanted += [Requirement(r) for r in project["build-system"]["requires"]]
    pins = _pins()
    for req in wanted:
        name = canonicalize_name(req.name)
        assert name in pins, f"{req.name} is not pinned in constraints.txt"
        assert req.specifier.contains(pins[name], prereleases=True), (req, pins[name])
    assert len(pins) > len(wanted)  # what they pull in is pinned too


def test_the_image_runs_as_the_service_user() -> None:
    steps = _instructions()
    users = [a for w, a in steps if w == "USER"]
    assert users == ["tradepulse"]
    (useradd,) = [a for w, a in steps if w == "RUN" and "useradd" in a]
    assert "--uid 10001" in useradd and useradd.rstrip().endswith("/var/lib/tradepulse-keys")
    for path in ("/var/lib/tradepulse", "/run/tradepulse", "/run/tradepulse-keys"):
        assert f" {path} " in f"{useradd} ", path
