"""The canonical results: `results/<name>/` in git holds the outputs of the default run of each
experiment (its `results.json`, `table.md`, figures, `theory.md`) and a `provenance.json`
(the command, the git commit, requirements.lock's sha256, the versions, the CPU, the dates
and the wall time). Checkpoints stay in the run directory.

    promote([Path("runs/reproduce/optim_sweep")], RESULTS)   # a finished run -> results/
    found = load_set(RESULTS)          # {name: Result, or None where nothing was promoted}

A run is promoted only if it finished (results.json), is not a `--quick` run and is of an
experiment listed in ENTRIES; everything is checked before anything is written, and each
`results/<name>/` is replaced whole (built beside it, then renamed). Reading a results set
checks the same, so a half-written, quick or mislabelled directory is one clear error naming
it and the command that makes it.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hw5jax.errors import ConfigError
from hw5jax.runs.files import write_json

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "results"
PROVENANCE = "provenance.json"
COPIED = ("results.json", "table.md", "theory.md")  # beside the figures (*.png)


@dataclass(frozen=True)
class Entry:
    """One slot of the results set: the experiment whose run fills it, how such a run is
    told apart from the other runs of that experiment, and the command that makes it."""

    name: str
    experiment: str
    command: str
    title: str
    accepts: Callable[[Mapping[str, Any]], bool] = lambda results: True


def _recipe(name: str) -> Callable[[Mapping[str, Any]], bool]:
    return lambda results: results.get("recipe") == name


# In `make reproduce`'s order (the Makefile runs exactly these commands, into runs/reproduce/).
ENTRIES: tuple[Entry, ...] = (
    Entry("optim_sweep", "optim_sweep", "python -m experiments.optim_sweep", "Optimizers"),
    Entry("batchnorm", "batchnorm", "python -m experiments.batchnorm", "Batch normalization"),
    Entry(
        "cnn_homework",
        "cnn_mnist",
        "python -m experiments.cnn_mnist --recipe homework",
        "CNN, the homework's recipe",
        _recipe("homework"),
    ),
    Entry(
        "cnn_best",
        "cnn_mnist",
        "python -m experiments.cnn_mnist --recipe best --seeds 5",
        "CNN, the best recipe",
        _recipe("best"),
    ),
    Entry(
        "cnn_ensemble",
        "cnn_eval",
        "python -m experiments.cnn_eval runs/reproduce/cnn_best --ensemble",
        "CNN, the best recipe's seeds as one ensemble",
        lambda results: "ensemble" in results,
    ),
    Entry(
        "cnn_torch",
        "cnn_torch",
        "python -m experiments.cnn_torch",
        "CNN, the homework's recipe in PyTorch",
    ),
    Entry("theory_checks", "theory_checks", "python -m experiments.theory_checks", "Theory"),
    Entry(
        "alexnet_readout",
        "alexnet_readout",
        "python -m experiments.alexnet_readout sample:grace_hopper sample:chelsea "
        "sample:coffee sample:astronaut",
        "AlexNet readout (random-weight stand-in unless pretrained weights are converted)",
    ),
    Entry("benchmark", "benchmark", "python -m experiments.benchmark", "Speed"),
)
BY_NAME = {e.name: e for e in ENTRIES}


@dataclass(frozen=True)
class Result:
    """A finished run of one entry: where it lies, its results.json and its provenance."""

    entry: Entry
    path: Path
    results: dict[str, Any]
    provenance: dict[str, Any]

    def file(self, name: str) -> Path:
        return self.path / name


def _read_json(path: Path, what: str, fix: str) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path.parent}: {what} (no {path.name}); {fix}") from None
    except (OSError, ValueError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path}: unreadable ({err}); {fix}") from err
    if not isinstance(value, dict):
        raise ConfigError(f"{path}: not a JSON object; {fix}")
    return value


def _is_quick(results: Mapping[str, Any], stamp: Mapping[str, Any]) -> bool:
    return bool(results.get("quick") or stamp.get("config", {}).get("quick"))


def classify(results: Mapping[str, Any]) -> Entry | None:
    """The entry a run's results.json fills (None: an experiment no entry takes)."""
    for entry in ENTRIES:
        if entry.experiment == results.get("experiment") and entry.accepts(results):
            return entry
    return None


def read_run(path: str | os.PathLike) -> Result:
    """A finished, full run directory (results.json and run.json), with the provenance that
    promoting it records. A ConfigError (one line, naming the directory and what to run)
    for: no such directory, an unfinished run, a --quick run, an experiment of no entry."""
    path = Path(path)
    if not path.is_dir():
        raise ConfigError(f"{path}: no such run directory")
    results = _read_json(
        path / "results.json",
        "not a finished run",
        "finish it by rerunning its command with the same --out",
    )
    stamp = _read_json(
        path / "run.json",
        "not a run of this project",
        "only a run made by `python -m experiments.NAME` can be promoted",
    )
    entry = classify(results)
    if entry is None:
        raise ConfigError(
            f"{path}: a run of {results.get('experiment')!r}, which no entry of results/ takes "
            f"(entries: {', '.join(e.name for e in ENTRIES)})"
        )
    if _is_quick(results, stamp):
        raise ConfigError(
            f"{path}: a --quick run (a smoke test, not a result); run `{entry.command}`"
        )
    return Result(entry, path, results, provenance_of(path, results, stamp))


def provenance_of(path: Path, results: Mapping[str, Any], stamp: Mapping[str, Any]) -> dict:
    """provenance.json of a run: run.json's source and environment stamps, with the time the
    run finished (results.json's) and its wall time."""
    env = stamp.get("environment") or {}
    finished = datetime.fromtimestamp((path / "results.json").stat().st_mtime, UTC)
    return {
        "experiment": results.get("experiment"),
        "command": env.get("command"),
        "git_commit": stamp.get("git_commit"),
        "requirements_lock_sha256": stamp.get("requirements_lock_sha256"),
        "versions": env.get("versions"),
        "cpu": env.get("cpu"),
        "cores": env.get("cores"),
        "xla_flags": env.get("xla_flags"),
        "platform": env.get("platform"),
        "started_utc": env.get("started_utc"),
        "finished_utc": finished.isoformat(timespec="seconds"),
        "wall_seconds": results.get("wall_seconds"),
        "run": str(path),
    }


def _copied(path: Path) -> list[Path]:
    return sorted(
        p for p in path.iterdir() if p.is_file() and (p.name in COPIED or p.suffix == ".png")
    )


def promote(runs: Iterable[str | os.PathLike], root: str | os.PathLike = RESULTS) -> list[Path]:
    """Copy each finished run into `root/<entry>/` (its results, table, figures and a
    provenance.json), replacing what was there. All runs are checked first (`read_run`);
    two runs for one entry are refused. Returns the directories written."""
    found = [read_run(p) for p in runs]
    names = [r.entry.name for r in found]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ConfigError(f"two runs given for {', '.join(twice)}: promote one of each")
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    written = []
    for result in found:
        target = root / result.entry.name
        staging = Path(tempfile.mkdtemp(prefix=f".{result.entry.name}.", dir=root))
        try:
            for source in _copied(result.path):
                shutil.copy2(source, staging / source.name)
            write_json(staging / PROVENANCE, result.provenance)
            os.chmod(staging, 0o755)
            old = None
            if target.exists():
                old = root / f".{result.entry.name}.old"
                shutil.rmtree(old, ignore_errors=True)
                target.rename(old)
            staging.rename(target)
            if old is not None:
                shutil.rmtree(old)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        written.append(target)
    return written


def read_promoted(path: Path, entry: Entry) -> Result:
    """`results/<entry>/` as promoted: results.json of the entry's experiment, not quick,
    with its provenance.json. A ConfigError naming the directory and the command otherwise."""
    fix = f"run `{entry.command}`, then `python -m experiments.report --promote RUN_DIR`"
    results = _read_json(path / "results.json", "half-written", fix)
    provenance = _read_json(path / PROVENANCE, "half-written", fix)
    if results.get("experiment") != entry.experiment or not entry.accepts(results):
        what = results.get("experiment")
        raise ConfigError(f"{path}: holds a run of {what!r}, not of {entry.name}; {fix}")
    if results.get("quick"):
        raise ConfigError(f"{path}: a --quick run (a smoke test, not a result); {fix}")
    return Result(entry, path, results, provenance)


def load_set(root: str | os.PathLike = RESULTS) -> dict[str, Result | None]:
    """The results set under `root` (`results/` by default): every entry's Result, or None
    for an entry with no directory there. A directory that is there but half-written, of
    another experiment or quick is a ConfigError; so is a missing `root`."""
    root = Path(root)
    if not root.is_dir():
        raise ConfigError(
            f"{root}: no results directory (`make reproduce`, then `make promote`, writes one)"
        )
    return {
        e.name: read_promoted(root / e.name, e) if (root / e.name).exists() else None
        for e in ENTRIES
    }


def load_runs(paths: Iterable[str | os.PathLike]) -> dict[str, Result | None]:
    """A results set made of run directories (fresh runs, not promoted): each is read as
    `promote` would read it, and fills its entry; entries no run fills are None."""
    found: dict[str, Result | None] = {e.name: None for e in ENTRIES}
    for path in paths:
        result = read_run(path)
        if found[result.entry.name] is not None:
            raise ConfigError(f"two runs given for {result.entry.name}: give one of each")
        found[result.entry.name] = result
    return found
