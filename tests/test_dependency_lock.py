"""The lock (requirements*.txt, written by scripts/lock) is what a fresh machine installs: scripts/bootstrap
installs it with `pip --require-hashes --no-deps`, so no version is chosen on the day of the install. These
tests keep it whole: every requirement of pyproject.toml is pinned there, with hashes, to a version its
specifier allows, and this virtualenv runs exactly the locked versions."""

from __future__ import annotations

import re
import tomllib
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
PIN_RE = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s\\;]+)")


def pins(lock: str) -> dict[str, str]:
    """name -> pinned version of a lock file; every pin must carry a hash."""
    found: dict[str, str] = {}
    text = (ROOT / lock).read_text()
    for block in re.split(r"\n(?=[A-Za-z0-9])", text):
        match = PIN_RE.match(block)
        if match is None:
            continue
        assert "--hash=sha256:" in block, f"{lock}: {match.group(1)} is pinned without a hash"
        found[canonicalize_name(match.group(1))] = match.group(2)
    return found


def project() -> dict[str, object]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def check_pinned(requirements: list[str], lock: str) -> None:
    locked = pins(lock)
    for line in requirements:
        req = Requirement(line)
        name = canonicalize_name(req.name)
        assert name in locked, f"{req.name} ({line}) is not in {lock}: run scripts/lock"
        assert req.specifier.contains(locked[name], prereleases=True), \
            f"{lock} pins {req.name}=={locked[name]}, outside pyproject.toml's {line}: run scripts/lock"


def test_the_runtime_requirements_are_pinned_with_hashes_in_both_locks() -> None:
    runtime = project()["project"]["dependencies"]  # type: ignore[index]
    check_pinned(runtime, "requirements.txt")
    check_pinned(runtime, "requirements-dev.txt")


def test_the_dev_and_build_requirements_are_pinned_with_hashes() -> None:
    data = project()
    check_pinned(data["project"]["optional-dependencies"]["dev"], "requirements-dev.txt")  # type: ignore[index]
    check_pinned(data["build-system"]["requires"], "requirements-build.txt")  # type: ignore[index]


def test_this_virtualenv_runs_the_locked_versions() -> None:
    for name, pinned in {**pins("requirements-build.txt"), **pins("requirements-dev.txt")}.items():
        try:
            installed = version(name)
        except PackageNotFoundError:
            installed = "nothing"
        assert installed == pinned, f"{name} {installed} is installed, the lock says {pinned}: run scripts/bootstrap"
