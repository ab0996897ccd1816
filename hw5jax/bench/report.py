"""The benchmark's results (`hw5jax.bench.suite.run_benchmark`) as a markdown table."""

from __future__ import annotations

from typing import Any

from hw5jax.bench.cases import REGISTRY


def fmt(value: float | None, spec: str = ".2f", none: str = "—") -> str:
    """`value` formatted by `spec`, or `none` if it is None."""
    return none if value is None else format(value, spec)


def table(results: dict[str, Any]) -> str:
    """One row per compared case, a paragraph on the machine and conditions, and the CNN
    formulations' table if they ran."""
    lines = [
        "| case | steps | hw5jax s | PyTorch s | ratio (target) | ratio per repeat | "
        "hw5jax compile s | hw5jax GFLOP/s | PyTorch GFLOP/s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for case, r in results["cases"].items():
        g = results["achieved_gflops"][case]
        spread = r.get("ratio_range")
        lines.append(
            f"| {case} | {r['steps']} | {r['hw5jax_s']:.3f} | {fmt(r['torch_s'], '.3f')} | "
            f"{fmt(r['ratio'])} (≥ {REGISTRY[case].target}) | "
            f"{f'{spread[0]:.2f}–{spread[1]:.2f}' if spread else '—'} | "
            f"{results['compile_s'][case]:.2f} | {g['hw5jax']:.1f} | {fmt(g['torch'], '.1f')} |"
        )
    peak, size = results["peak_matmul_gflops"], results["matmul_size"]
    torch_peak = results.get("peak_matmul_gflops_torch")
    lines += [
        "",
        f"Median of {results['repeats']} interleaved repeats (ratio per repeat: the "
        "lowest and highest of PyTorch s / hw5jax s over the repeats); data: "
        f"{results['data']}; {results['cpu_count']} CPUs as {results['devices']} JAX "
        f"device(s) (XLA_FLAGS '{results['xla_flags']}'); jax {results['jax']}, "
        f"torch {results['torch'] or 'absent'} ({results['torch_threads']} threads); "
        f"compile times {'cached' if results['quick'] else 'cold'}. "
        f"Peak {size}x{size} float32 matmul: {peak:.0f} GFLOP/s (jax)"
        + (f", {torch_peak:.0f} GFLOP/s (torch)" if torch_peak else "")
        + f". Peak RSS {results['peak_rss_mib']:.0f} MiB; wall "
        f"{results['wall_seconds']:.0f} s.",
    ]
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
