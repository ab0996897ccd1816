"""The benchmark's results (`hw5jax.bench.suite.run_benchmark`) as a markdown table."""

from __future__ import annotations

from typing import Any

from hw5jax.bench.cases import REGISTRY


def fmt(value: float | None, spec: str = ".2f", none: str = "—") -> str:
    """`value` formatted by `spec`, or `none` if it is None."""
    return none if value is None else format(value, spec)


def spread(case: dict[str, Any], none: str = "—") -> str:
    """A case's lowest and highest per-repeat ratio ("2.27–2.88"), or `none` (one run)."""
    low_high = case.get("ratio_range")
    return none if not low_high else f"{low_high[0]:.2f}–{low_high[1]:.2f}"


def table(results: dict[str, Any]) -> str:
    """One row per compared case, a paragraph on the machine and conditions, then the
    sweep's and the grid scaling's details and the CNN formulations' table, where they ran."""
    lines = [
        "| case | steps | hw5jax s | PyTorch s | ratio (target) | ratio per repeat | "
        "hw5jax compile s | hw5jax GFLOP/s | PyTorch GFLOP/s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for case, r in results["cases"].items():
        g = results["achieved_gflops"][case]
        label = f"{case} ({r['target_size']} runs)" if "target_size" in r else case
        lines.append(
            f"| {label} | "
            f"{r['steps']} | {r['hw5jax_s']:.3f} | {fmt(r['torch_s'], '.3f')} | "
            f"{fmt(r['ratio'])} (≥ {REGISTRY[case].target}) | "
            f"{spread(r)} | "
            f"{results['compile_s'][case]:.2f} | {g['hw5jax']:.1f} | {fmt(g['torch'], '.1f')} |"
        )
    peak, size = results["peak_matmul_gflops"], results["matmul_size"]
    torch_peak = results.get("peak_matmul_gflops_torch")
    lines += [
        "",
        f"Median of {results['repeats']} interleaved repeats (ratio per repeat: the "
        "lowest and highest of PyTorch s / hw5jax s over the repeats); data: "
        f"{results['data']}; {device_line(results)} (XLA_FLAGS '{results['xla_flags']}'); "
        f"jax {results['jax']}, "
        f"torch {results['torch'] or 'absent'} ({results['torch_threads']} threads); "
        f"compile times {'cached' if results['quick'] else 'cold'}. "
        f"{conv_sentence(results)}"
        f"Peak {size}x{size} float32 matmul: {peak:.0f} GFLOP/s (jax)"
        + (f", {torch_peak:.0f} GFLOP/s (torch)" if torch_peak else "")
        + f". Peak RSS {results['peak_rss_mib']:.0f} MiB; wall "
        f"{results['wall_seconds']:.0f} s.",
    ]
    if "sweep" in results["cases"]:
        lines += ["", sweep_line(results["cases"]["sweep"], results["compile_s"]["sweep"])]
    if "grid_scaling" in results["cases"]:
        lines += ["", *scaling_table(results["cases"]["grid_scaling"])]
    variants = results.get("cnn_formulations")
    if variants:
        lines += [
            "",
            f"CNN formulations (Adam, {variants['steps']} steps; XLA_FLAGS="
            f"'{variants['xla_flags']}'):",
            "",
            "| formulation | epoch s | compile s | max rel. grad diff vs reference |",
            "|---|---|---|---|",
        ]
        for name, v in variants["variants"].items():
            lines.append(
                f"| {name} | {v['epoch_s']:.3f} | {v['compile_s']:.1f} | "
                f"{v['max_rel_grad_diff']:.1e} |"
            )
    return "\n".join(lines) + "\n"


def conv_sentence(results: dict[str, Any]) -> str:
    """Which convolutions hw5jax's CNN ran ("" when no CNN case ran)."""
    conv = results.get("conv")
    if conv is None:
        return ""
    if conv == "onednn":
        return f"hw5jax's CNN convolutions: oneDNN {results.get('onednn')} (`--conv auto`). "
    return "hw5jax's CNN convolutions: XLA's (`--conv auto`: oneDNN not available). "


def device_line(results: dict[str, Any]) -> str:
    """Where it ran: the CPUs as JAX devices, or the GPU(s) by name."""
    if results.get("device", "cpu") == "cpu":
        return f"{results['cpu_count']} CPUs as {results['devices']} JAX device(s)"
    names = results.get("gpu_names") or {}
    kinds = ", ".join(sorted(set(names.get("jax") or []))) or "?"
    return (
        f"GPU: {results['devices']} JAX device(s) ({kinds}), torch on "
        f"{names.get('torch') or 'no CUDA device'}"
    )


def sweep_line(r: dict[str, Any], compile_s: float) -> str:
    """The sweep case in words: its runs, both wall times, the compile part, the accuracies."""
    accuracies = "; ".join(
        f"{name} {fmt(o['hw5jax_test_accuracy_mean'], '.2%')} / "
        f"{fmt(o['torch_test_accuracy_mean'], '.2%')}"
        for name, o in r["optimizers"].items()
    )
    pruned = r.get("prune_at") and r["prune_at"] < r["grid_epochs"]
    prune = f", successive halving after epoch {r['prune_at']}" if pruned else ""
    epochs = f"{r['sweep_epochs']} epoch{'s' * (r['sweep_epochs'] != 1)}"
    return (
        f"Sweep (`optim_sweep`{' --quick' if r['sweep_quick'] else ''}, {epochs}{prune}, "
        f"seeds {','.join(map(str, r['seeds']))}): {r['runs']} runs, "
        f"{r['run_epochs']} run-epochs of {r['steps']} steps, each followed by validation, "
        f"{r['tested_runs']} final models tested. hw5jax {r['hw5jax_s']:.1f} s end to end "
        f"(compile {compile_s:.1f} s of it), PyTorch {fmt(r['torch_s'], '.1f')} s training "
        f"the same runs one after another; ratio {fmt(r['ratio'])}. Mean test accuracy, "
        f"hw5jax / PyTorch: {accuracies}."
    )


def scaling_table(r: dict[str, Any]) -> list[str]:
    """The grid scaling case: one row per grid size, per run-epoch."""
    lines = [
        f"Grid scaling (SGD, one epoch per run, {r['run_epoch_gflop']:.2f} GFLOP per "
        f"run-epoch; PyTorch: the mean of up to {r['torch_runs_timed']} of each grid's runs; "
        f"limit: a run-epoch at the {r['matmul_size']}² matmul peak of the devices used):",
        "",
        "| runs | devices | hw5jax s/run-epoch | PyTorch s/run-epoch | ratio | ratio per repeat "
        "| hw5jax GFLOP/s | limit s/run-epoch | hw5jax compile s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for size, row in sorted(r["sizes"].items(), key=lambda item: int(item[0])):
        lines.append(
            f"| {size} | {row['devices']} | {row['hw5jax_run_epoch_s']:.4f} | "
            f"{fmt(row['torch_run_epoch_s'], '.4f')} | {fmt(row['ratio'])} | "
            f"{spread(row)} | "
            f"{row['hw5jax_gflops']:.1f} | {row['limit_run_epoch_s']:.4f} | "
            f"{row['compile_s']:.2f} |"
        )
    peaks = ", ".join(
        f"{v:.0f} GFLOP/s on {k} device(s)" for k, v in r["peak_matmul_gflops_by_devices"].items()
    )
    lines += ["", f"Matmul peaks: {peaks}; figure: `{r['figure'] or '—'}`."]
    return lines
