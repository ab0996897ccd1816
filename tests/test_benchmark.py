"""The benchmark CLI: a --quick run writes the contracted results.json, and both sides of a
case compute the same thing (same weights, same batches -> same costs and parameters)."""

from __future__ import annotations

import json
import math

import pytest

from experiments import benchmark
from hw5jax.cli import run_main


def test_work_counts_match_the_issue():
    steps = 50_000 // 128
    mlp = benchmark.mlp_example_flops() * steps * 128
    cnn = benchmark.cnn_example_flops() * steps * 128
    assert mlp == pytest.approx(19e9, rel=0.01)  # "an MLP epoch is about 19 GFLOP"
    assert cnn == pytest.approx(3.2e12, rel=0.02)  # "a CNN epoch about 3.2 TFLOP"


@pytest.mark.parametrize(
    "argv,message",
    [
        (["--cases", "mlp_epoch_sgd,resnet"], "unknown case 'resnet'"),
        (["--repeats", "0"], "--repeats 0: must be at least 1"),
    ],
)
def test_bad_input_is_one_line(argv, message, tmp_path, bad_input):
    bad_input(benchmark.main, argv, message, tmp_path / "out")


def test_quick_run_writes_the_contract_and_both_sides_agree(tmp_path, capsys):
    pytest.importorskip("torch", reason="the PyTorch side needs torch==2.13.0 ([test] extra)")
    out = tmp_path / "bench"
    run_main(benchmark.main, ["--quick", "--out", str(out)])
    assert f"results: {out}/results.json" in capsys.readouterr().out
    results = json.loads((out / "results.json").read_text())

    assert results["experiment"] == "benchmark" and results["data"] == "synthetic"
    assert list(results["cases"]) == list(benchmark.CASES)
    assert set(results["compile_s"]) == set(results["achieved_gflops"]) == set(benchmark.CASES)
    for case, r in results["cases"].items():
        assert r["hw5jax_s"] > 0 and r["torch_s"] > 0, case
        assert r["ratio"] == pytest.approx(r["torch_s"] / r["hw5jax_s"])
        paired = [t / j for j, t in zip(r["hw5jax_all_s"], r["torch_all_s"], strict=True)]
        assert r["ratio_range"] == pytest.approx([min(paired), max(paired)])
        assert results["compile_s"][case] >= 0
        assert results["achieved_gflops"][case]["hw5jax"] > 0
    assert results["peak_matmul_gflops"] > 0 and results["peak_rss_mib"] > 0
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
        assert p["steps"] == benchmark.PARITY_STEPS["mlp"]
        assert math.isclose(p["hw5jax_cost"], p["torch_cost"], rel_tol=1e-5), p
        assert p["max_param_diff"] <= param_tol, p
        assert p["max_rel_grad_diff"] <= 1e-5, p
    # The CNN: the same cost, and the same gradients of its dense layers; a conv gradient
    # may differ where a max-pool window has tied maxima (PyTorch sends the gradient to one,
    # a reshape+max splits it), which synthetic data make rare but not impossible.
    p = results["cases"]["cnn_epoch"]["parity"]
    assert math.isclose(p["hw5jax_cost"], p["torch_cost"], rel_tol=1e-4), p
    assert p["max_rel_grad_diff"] <= 1e-3, p
