"""Problem 3.2's command line: results contract of a --quick run, epochs-to-97%."""

from __future__ import annotations

import json

import pytest

from experiments import batchnorm
from hw5jax.cli import run_main
from hw5jax.configs.batchnorm import BatchnormConfig
from hw5jax.reporting.batchnorm import epochs_to


def test_epochs_to_target():
    assert epochs_to([0.9, 0.969, 0.97, 0.99]) == 3
    assert epochs_to([0.9, 0.95]) is None


def test_default_grid_holds_the_homeworks_rate_and_is_log_spaced():
    grid = BatchnormConfig().lr_grid
    assert 2.0 in grid and len(grid) >= 6
    ratios = {round(b / a, 9) for a, b in zip(grid, grid[1:], strict=False)}
    assert len(ratios) == 1


@pytest.mark.mnist
def test_quick_batchnorm_run_writes_both_variants(mnist, tmp_path, capsys):
    out = tmp_path / "bn"
    run_main(batchnorm.main, ["--quick", "--out", str(out)])
    assert f"results: {out}/results.json" in capsys.readouterr().out
    results = json.loads((out / "results.json").read_text())
    assert results["experiment"] == "batchnorm"
    assert set(results["variants"]) == {"batchnorm", "plain"}
    for variant in results["variants"].values():
        assert [g["hparams"]["learning_rate"] for g in variant["grid"]] == [0.5, 2.0]
        assert set(variant["selected"]) == {"learning_rate"}
        assert len(variant["test_accuracy"]) == 1 and variant["test_accuracy_mean"] > 0.9
        assert len(variant["epochs_to_97"]) == 1
        assert len(variant["history"]["val_accuracy"][0]) == 1
    assert (out / "val_accuracy.png").stat().st_size > 0
    assert "BatchNorm" in (out / "table.md").read_text()
