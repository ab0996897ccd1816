"""Runs the named cases of `hw5jax.bench.cases.REGISTRY` into the benchmark's results: per
case its measurements, compile time, work and achieved GFLOP/s; the probes under their own
names; the machine (the device asked for and its GPUs' names, JAX devices, versions, matmul
peak, peak RSS).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Any

import jax
import numpy as np

from hw5jax.bench.cases import REGISTRY, Case
from hw5jax.bench.device import Device
from hw5jax.bench.networks import BATCH, CNN_NETWORK, cnn_conv
from hw5jax.bench.plan import Plan
from hw5jax.bench.timing import MATMUL_SIZE, achieved_gflops, peak_matmul_gflops, peak_rss_mib
from hw5jax.errors import ConfigError
from hw5jax.kernels.conv import onednn_version
from hw5jax.reference.pytorch import TORCH_INSTALL

QUICK_MATMUL_SIZE = 1024
TORCH_MISSING = (
    "torch is not installed: the PyTorch side is skipped (its times and ratios "
    f"are null); install it with `{TORCH_INSTALL}`"
)


def case_data(
    case: Case, images: np.ndarray, labels: np.ndarray, plan: Plan
) -> tuple[np.ndarray, np.ndarray]:
    """The images and labels one epoch of `case` trains on: the plan's steps of its network
    (all of them if None); more steps than the data hold are a ConfigError."""
    steps = plan.steps_for(case.network)
    if steps is None:
        return images, labels
    if steps * BATCH > len(labels):
        raise ConfigError(f"--steps {steps}: the data hold only {len(labels) // BATCH}")
    return images[: steps * BATCH], labels[: steps * BATCH]


def run_benchmark(
    names: Sequence[str],
    torch: Any,
    images: np.ndarray,
    labels: np.ndarray,
    source: str,
    plan: Plan,
    device: Device | None = None,
) -> dict[str, Any]:
    """The cases `names` (keys of `REGISTRY`, in that order; the probes after the compared
    cases) on `images`, `labels` (from `source`); `torch` None skips the PyTorch side;
    `device`: where both sides run (recorded; default the CPU). Returns the results, all but
    the wall time."""
    device = device or Device("cpu", "cpu")
    cases: dict[str, Any] = {}
    flops: dict[str, int] = {}
    probes: list[tuple[Case, np.ndarray, np.ndarray]] = []
    for name in names:
        case = REGISTRY[name]
        x, y = (images, labels) if case.own_data else case_data(case, images, labels, plan)
        steps = len(y) // BATCH
        print(
            f"{name}: {'its own data' if case.own_data else f'{steps} steps of {BATCH}'}",
            file=sys.stderr,
        )
        if case.is_probe:
            probes.append((case, x, y))
            continue
        cases[name] = case.measure(case, torch, x, y, plan)
        steps = cases[name].setdefault("steps", steps)
        flops[name] = case.epoch_flops(steps) * cases[name].get("run_epochs", 1)

    results: dict[str, Any] = {
        "experiment": "benchmark",
        "quick": plan.quick,
        "data": source,
        "repeats": plan.repeats,
        "batch_size": BATCH,
        **device.record(),
        "cpu_count": os.cpu_count(),
        "devices": jax.device_count(),
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
        "jax": jax.__version__,
        "torch": torch.__version__ if torch is not None else None,
        "torch_threads": torch.get_num_threads() if torch is not None else None,
        "conv": cnn_conv() if any(REGISTRY[n].network is CNN_NETWORK for n in names) else None,
        "onednn": onednn_version(),
        "compile_note": (
            "--quick: the persistent compilation cache may have served these"
            if plan.quick
            else "cold: the persistent compilation cache is off in this process"
        ),
        "torch_note": None if torch is not None else TORCH_MISSING,
        "cases": {},
        "compile_s": {},
        "epoch_gflop": {k: v / 1e9 for k, v in flops.items()},
        "achieved_gflops": {},
    }
    for name, r in cases.items():
        results["compile_s"][name] = r.pop("compile_s")
        results["cases"][name] = r
        results["achieved_gflops"][name] = achieved_gflops(flops[name], r)
    for case, x, y in probes:
        results[case.name] = case.measure(case, torch, x, y, plan)
    size = QUICK_MATMUL_SIZE if plan.quick else MATMUL_SIZE
    peak = peak_matmul_gflops(torch, repeats=1 if plan.quick else 5, size=size, device=plan.device)
    results["peak_matmul_gflops"] = peak["jax"]
    results["matmul_size"] = size
    results["peak_matmul_gflops_torch"] = peak.get("torch")
    results["peak_rss_mib"] = peak_rss_mib()
    return results
