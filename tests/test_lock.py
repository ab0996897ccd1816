"""The locked stack: requirements.lock pins exactly one version of every package, every range
in pyproject.toml admits its pinned version, and the environment `make setup` built holds
exactly the locked versions."""

from __future__ import annotations

import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]


def read_lock(text: str) -> dict[str, Version]:
    """name -> pinned version; a line that is not `name==version` is a ValueError."""
    pins: dict[str, Version] = {}
    for line in text.splitlines():
        line = line.split("#")[0].strip()
        if not line:
            continue
        req = Requirement(line)
        specs = list(req.specifier)
        if len(specs) != 1 or specs[0].operator != "==" or req.marker or req.extras:
            raise ValueError(f"{line!r}: not an exact pin (name==version)")
        name = canonicalize_name(req.name)
        if name in pins:
            raise ValueError(f"{req.name}: pinned twice")
        pins[name] = Version(specs[0].version)
    return pins


def declared(pyproject_text: str) -> list[Requirement]:
    """The dependencies and every optional extra of a pyproject.toml."""
    project = tomllib.loads(pyproject_text)["project"]
    lines = list(project.get("dependencies", []))
    for extra in project.get("optional-dependencies", {}).values():
        lines += extra
    return [Requirement(line) for line in lines]


def disagreements(pyproject_text: str, lock_text: str) -> list[str]:
    """Where pyproject.toml and the lock disagree: a declared package the lock lacks, or a
    pin outside the declared range."""
    pins = read_lock(lock_text)
    problems = []
    for req in declared(pyproject_text):
        pin = pins.get(canonicalize_name(req.name))
        if pin is None:
            problems.append(f"{req.name}: declared in pyproject.toml, not in the lock")
        elif not req.specifier.contains(pin, prereleases=True):
            problems.append(f"{req.name}: locked {pin}, pyproject.toml asks {req.specifier}")
    return problems


def test_the_lock_and_pyproject_agree():
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert disagreements(pyproject, (ROOT / "requirements.lock").read_text()) == []


def test_a_disagreement_is_found():
    pyproject = '[project]\ndependencies = ["jax>=0.7", "numpy>=1.26"]\n'
    assert disagreements(pyproject, "jax==0.10.2\nnumpy==1.26.4\n") == []
    assert disagreements(pyproject, "jax==0.6.0\nnumpy==1.26.4\n") == [
        "jax: locked 0.6.0, pyproject.toml asks >=0.7"
    ]
    assert disagreements(pyproject, "jax==0.10.2\n") == [
        "numpy: declared in pyproject.toml, not in the lock"
    ]
    with pytest.raises(ValueError, match="not an exact pin"):
        read_lock("jax>=0.7\n")
    with pytest.raises(ValueError, match="pinned twice"):
        read_lock("jax==0.7\nJAX==0.8\n")


@pytest.mark.skipif(
    Path(sys.prefix).resolve() != (ROOT / ".venv").resolve(),
    reason="checks the environment `make setup` builds (.venv); this is another one",
)
def test_the_environment_holds_exactly_the_locked_versions():
    pins = read_lock((ROOT / "requirements.lock").read_text())
    installed = {
        canonicalize_name(d.metadata["Name"]): Version(d.version)
        for d in metadata.distributions()
        if d.metadata["Name"]
    }
    installed.pop("hw5jax", None)
    for tool in ("pip", "setuptools", "wheel"):  # the venv's own, not the project's
        installed.pop(tool, None)
        pins.pop(tool, None)
    # A local build label (torch's +cpu) is the same release.
    installed = {name: Version(v.public) for name, v in installed.items()}
    assert installed == pins
