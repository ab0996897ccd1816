"""results/: promoting finished runs, reading a results set, and the README's and docs'
result blocks that are generated from it (and go stale when it changes)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from hw5jax.errors import ConfigError
from hw5jax.pipelines import blocks
from hw5jax.runs import results
from hw5jax.runs.rundir import run_record

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "fixtures" / "results"


def make_run(path: Path, experiment: str, quick: bool = False, **fields) -> Path:
    """A finished run directory as the experiments leave one: run.json, results.json,
    table.md and a figure."""
    path.mkdir(parents=True)
    (path / "run.json").write_text(json.dumps(run_record(experiment, {"quick": quick})))
    record = {"experiment": experiment, "quick": quick, "wall_seconds": 12.5, **fields}
    (path / "results.json").write_text(json.dumps(record))
    (path / "table.md").write_text(f"| {experiment} |\n|---|\n")
    (path / "figure.png").write_bytes(b"\x89PNG fake")
    (path / "metrics.jsonl").write_text("{}\n")  # not promoted
    return path


def test_promote_copies_results_and_provenance(tmp_path):
    run = make_run(tmp_path / "run", "optim_sweep", optimizers={})
    (written,) = results.promote([run], tmp_path / "results")
    assert written == tmp_path / "results" / "optim_sweep"
    assert sorted(p.name for p in written.iterdir()) == [
        "figure.png",
        "provenance.json",
        "results.json",
        "table.md",
    ]
    prov = json.loads((written / "provenance.json").read_text())
    assert prov["wall_seconds"] == 12.5 and prov["experiment"] == "optim_sweep"
    assert prov["versions"]["jax"] and prov["cpu"] and prov["cores"] >= 1
    assert prov["finished_utc"].endswith("+00:00")
    found = results.load_set(tmp_path / "results")
    assert found["optim_sweep"] is not None and found["batchnorm"] is None


def test_promote_replaces_the_entry_whole(tmp_path):
    root = tmp_path / "results"
    first = make_run(tmp_path / "a", "cnn_mnist", recipe="best")
    results.promote([first], root)
    (root / "cnn_best" / "stale.png").write_bytes(b"old")
    second = make_run(tmp_path / "b", "cnn_mnist", recipe="best")
    results.promote([second], root)
    assert not (root / "cnn_best" / "stale.png").exists()
    assert sorted(p.name for p in root.iterdir()) == ["cnn_best"]  # no staging left


@pytest.mark.parametrize(
    "setup, message",
    [
        (lambda p: None, "no such run directory"),
        (lambda p: (p.mkdir(), (p / "run.json").write_text("{}")), "not a finished run"),
        (lambda p: make_run(p, "optim_sweep", quick=True), "a --quick run"),
        (lambda p: make_run(p, "convert_alexnet"), "no entry of results/ takes"),
        (lambda p: (make_run(p, "batchnorm"), (p / "run.json").unlink()), "not a run of this"),
        (
            lambda p: (make_run(p, "batchnorm"), (p / "results.json").write_text("{tru")),
            "unreadable",
        ),
    ],
    ids=["missing", "unfinished", "quick", "other-experiment", "no-run-json", "half-written"],
)
def test_promote_refuses_bad_runs_and_writes_nothing(tmp_path, setup, message):
    good = make_run(tmp_path / "good", "optim_sweep", optimizers={})
    bad = tmp_path / "bad"
    setup(bad)
    with pytest.raises(ConfigError, match=message):
        results.promote([good, bad], tmp_path / "results")
    assert not (tmp_path / "results").exists()  # checked before anything is written


def test_two_runs_for_one_entry_are_refused(tmp_path):
    a = make_run(tmp_path / "a", "cnn_mnist", recipe="homework")
    b = make_run(tmp_path / "b", "cnn_mnist", recipe="homework")
    with pytest.raises(ConfigError, match="two runs given for cnn_homework"):
        results.promote([a, b], tmp_path / "results")


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda d: (d / "provenance.json").unlink(), "half-written"),
        (lambda d: (d / "results.json").unlink(), "half-written"),
        (
            lambda d: (d / "results.json").write_text(json.dumps({"experiment": "batchnorm"})),
            "not of optim_sweep",
        ),
        (
            lambda d: (d / "results.json").write_text(
                json.dumps({"experiment": "optim_sweep", "quick": True})
            ),
            "a --quick run",
        ),
    ],
    ids=["no-provenance", "no-results", "other-experiment", "quick"],
)
def test_a_damaged_results_set_is_one_error_naming_the_command(tmp_path, damage, message):
    root = tmp_path / "results"
    results.promote([make_run(tmp_path / "run", "optim_sweep", optimizers={})], root)
    damage(root / "optim_sweep")
    with pytest.raises(ConfigError, match=message) as err:
        results.load_set(root)
    assert "python -m experiments.optim_sweep" in str(err.value)


def test_the_cli_promotes_and_refuses_with_one_line(tmp_path):
    run = make_run(tmp_path / "run", "batchnorm", variants={})
    quick = make_run(tmp_path / "quick", "batchnorm", quick=True, variants={})
    cmd = [sys.executable, "-m", "experiments.report", "--results", str(tmp_path / "res")]
    bad = subprocess.run([*cmd, "--promote", str(quick)], capture_output=True, text=True, cwd=ROOT)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1
    assert bad.stderr.startswith("error: ") and "--quick" in bad.stderr
    assert not (tmp_path / "res").exists()
    ok = subprocess.run([*cmd, "--promote", str(run)], capture_output=True, text=True, cwd=ROOT)
    assert ok.returncode == 0, ok.stderr
    assert (tmp_path / "res" / "batchnorm" / "provenance.json").is_file()


# ------------------------------------------------------------ the README's and docs' blocks


def test_blocks_equal_the_committed_results():
    """The README's and docs' result blocks are what `make docs` renders from results/."""
    found = results.load_set()
    assert blocks.stale(found) == []
    marked = [p.name for p in blocks.PAGES if blocks.MARK.search(p.read_text())]
    assert "README.md" in marked


def test_a_changed_result_makes_the_blocks_stale(tmp_path):
    """A wrong claim: the README's block no longer matches once a result changes."""
    root = tmp_path / "results"
    shutil.copytree(FIXTURE, root)
    page = tmp_path / "README.md"
    page.write_text("# x\n\n<!-- results:glance -->\n<!-- /results:glance -->\n")
    assert blocks.stale(results.load_set(root), [page]) == ["README.md: glance"]
    blocks.refresh(results.load_set(root), [page])
    assert blocks.stale(results.load_set(root), [page]) == []
    sweep = root / "optim_sweep" / "results.json"
    record = json.loads(sweep.read_text())
    record["optimizers"]["sgd"]["test_accuracy_mean"] = 0.5  # now SGD is worst ...
    record["optimizers"]["adam"]["test_accuracy_mean"] = 0.999  # ... and Adam best
    sweep.write_text(json.dumps(record))
    assert blocks.stale(results.load_set(root), [page]) == ["README.md: glance"]


def test_an_unknown_block_is_refused(tmp_path):
    page = tmp_path / "x.md"
    page.write_text("<!-- results:nope -->\n<!-- /results:nope -->\n")
    with pytest.raises(ConfigError, match="unknown results block 'nope'"):
        blocks.refresh(results.load_set(FIXTURE), [page])


def test_the_speed_block_says_which_targets_are_met(tmp_path):
    root = tmp_path / "results"
    shutil.copytree(FIXTURE, root)
    text = blocks.speed(results.load_set(root))
    row = next(line for line in text.splitlines() if line.startswith("| a CNN epoch, Adam |"))
    cnn = json.loads((FIXTURE / "benchmark" / "results.json").read_text())["cases"]["cnn_epoch"]
    low, high = cnn["ratio_range"]
    assert (
        row
        == f"| a CNN epoch, Adam | {cnn['ratio']:.2f}× | {low:.2f}–{high:.2f} | ≥ 1.2 (missed) |"
    )
    assert "| an MLP epoch, SGD |" in text and "(met) |" in text
    # A wrong claim: the CNN said to beat its target; the block follows the file, not the claim.
    bench = root / "benchmark" / "results.json"
    record = json.loads(bench.read_text())
    record["cases"]["cnn_epoch"]["ratio"] = 1.25
    bench.write_text(json.dumps(record))
    assert f"| a CNN epoch, Adam | 1.25× | {low:.2f}–{high:.2f} | ≥ 1.2 (met) |" in blocks.speed(
        results.load_set(root)
    )
    shutil.rmtree(root / "benchmark")
    assert blocks.speed(results.load_set(root)).startswith("Not run: `python -m experiments.bench")
