"""The benchmark CLI: a --quick run writes the contracted results.json, and both sides of a
case compute the same thing (same weights, same batches -> same costs and parameters)."""

from __future__ import annotations

import json
import math

import pytest

from experiments import benchmark
from hw5jax.bench.cases import REGISTRY
from hw5jax.bench.networks import MLP_NETWORK, cnn_example_flops, mlp_example_flops
from hw5jax.cli import build_parser, run_main
from hw5jax.configs.benchmark import CASE_CHOICES, QUICK_GRID_SIZES, BenchmarkConfig

CASES = BenchmarkConfig().cases  # what runs when no cases are named


def test_work_counts_match_the_stated_budget():
    steps = 50_000 // 128
    mlp = mlp_example_flops() * steps * 128
    cnn = cnn_example_flops() * steps * 128
    assert mlp == pytest.approx(19e9, rel=0.01)  # "an MLP epoch is about 19 GFLOP"
    assert cnn == pytest.approx(3.2e12, rel=0.02)  # "a CNN epoch about 3.2 TFLOP"


def test_the_registry_holds_every_case_the_command_line_names():
    assert set(CASES) <= set(CASE_CHOICES)
    assert list(CASE_CHOICES) == list(REGISTRY)
    for name in CASE_CHOICES:
        case = REGISTRY[name]
        assert case.name == name and callable(case.measure), name
        assert case.is_probe or case.target > 0, name
    assert [name for name in CASES if REGISTRY[name].is_probe] == []
    assert BenchmarkConfig(cases=CASE_CHOICES).cases == CASE_CHOICES
    help_text = " ".join(build_parser(BenchmarkConfig).format_help().split())
    assert f"cases to run, of {', '.join(REGISTRY)}" in help_text


def test_an_unknown_case_is_one_error_line(tmp_path, bad_input):
    line = bad_input(benchmark.main, ["--cases", "cnn_epochs"], "unknown case", tmp_path / "out")
    assert line == f"error: --cases: unknown case 'cnn_epochs'; use {', '.join(REGISTRY)}"


@pytest.mark.parametrize(
    "argv,message",
    [
        (["--cases", "mlp_epoch_sgd,resnet"], "unknown case 'resnet'"),
        (["--repeats", "0"], "--repeats 0: must be at least 1"),
        (["--steps", "100000", "--data", "synthetic"], "synthetic data hold one epoch, 390 steps"),
    ],
)
def test_bad_input_is_one_line(argv, message, tmp_path, bad_input):
    bad_input(benchmark.main, argv, message, tmp_path / "out")


@pytest.mark.slow
def test_quick_run_writes_the_contract_and_both_sides_agree(tmp_path, capsys):
    pytest.importorskip("torch", reason="the PyTorch side needs torch==2.13.0 ([test] extra)")
    out = tmp_path / "bench"
    run_main(benchmark.main, ["--quick", "--out", str(out)])
    assert f"results: {out}/results.json" in capsys.readouterr().out
    results = json.loads((out / "results.json").read_text())

    assert results["experiment"] == "benchmark" and results["data"] == "synthetic"
    assert list(results["cases"]) == list(CASES)
    assert set(results["compile_s"]) == set(results["achieved_gflops"]) == set(CASES)
    for case, r in results["cases"].items():
        assert r["hw5jax_s"] > 0 and r["torch_s"] > 0, case
        assert r["ratio"] == pytest.approx(r["torch_s"] / r["hw5jax_s"])
        assert results["compile_s"][case] >= 0
        assert results["achieved_gflops"][case]["hw5jax"] > 0
        if case in ("sweep", "grid_scaling"):  # their own contracts, below
            continue
        paired = [t / j for j, t in zip(r["hw5jax_all_s"], r["torch_all_s"], strict=True)]
        assert r["ratio_range"] == pytest.approx([min(paired), max(paired)])
    assert results["peak_matmul_gflops"] > 0 and results["peak_rss_mib"] > 0
    assert results["device"] == "cpu" and results["gpu_names"] is None
    assert results["conv"] in ("xla", "onednn")

    # Grid scaling: every quick size, per run-epoch; the headline is the largest size.
    g = results["cases"]["grid_scaling"]
    assert sorted(g["sizes"], key=int) == [str(n) for n in QUICK_GRID_SIZES]
    assert g["target_size"] == max(QUICK_GRID_SIZES) and g["figure"] == "grid_scaling.png"
    assert (out / "grid_scaling.png").is_file()
    for size, row in g["sizes"].items():
        assert row["ratio"] == pytest.approx(row["torch_run_epoch_s"] / row["hw5jax_run_epoch_s"])
        assert row["hw5jax_run_epoch_s"] == pytest.approx(row["hw5jax_epoch_s"] / int(size))
        assert row["limit_run_epoch_s"] > 0
    # The sweep: its run is gone, its results kept; every optimizer's final models tested
    # on both sides.
    s = results["cases"]["sweep"]
    assert not (out / "sweep_run").exists() and (out / s["sweep_results"]).is_file()
    assert s["runs"] >= s["tested_runs"] > 0 and results["compile_s"]["sweep"] <= s["hw5jax_s"]
    for name, o in s["optimizers"].items():
        assert o["hw5jax_test_accuracy_mean"] is not None, name
        assert len(o["torch_test_accuracy"]) == len(
            json.loads((out / s["sweep_results"]).read_text())["seeds"]
        ), name
    row = next(
        line
        for line in (out / "table.md").read_text().splitlines()
        if line.startswith("| mlp_epoch_sgd |")
    )
    low, high = results["cases"]["mlp_epoch_sgd"]["ratio_range"]
    assert f"| {low:.2f}–{high:.2f} |" in row

    # Same weights, same batches: the MLP runs agree to float32 rounding (Adam's update
    # divides by sqrt(v), so its parameters agree a little less tightly than SGD's).
    for case, param_tol in (("mlp_epoch_sgd", 1e-6), ("mlp_epoch_adam", 1e-4)):
        p = results["cases"][case]["parity"]
        assert p["steps"] == MLP_NETWORK.parity_steps
        assert math.isclose(p["hw5jax_cost"], p["torch_cost"], rel_tol=1e-5), p
        assert p["max_param_diff"] <= param_tol, p
        assert p["max_rel_grad_diff"] <= 1e-5, p
    # The CNN: the same cost, and the same gradients of its dense layers; a conv gradient
    # may differ where a max-pool window has tied maxima (PyTorch sends the gradient to one,
    # a reshape+max splits it), which synthetic data make rare but not impossible.
    p = results["cases"]["cnn_epoch"]["parity"]
    assert math.isclose(p["hw5jax_cost"], p["torch_cost"], rel_tol=1e-4), p
    assert p["max_rel_grad_diff"] <= 1e-3, p
