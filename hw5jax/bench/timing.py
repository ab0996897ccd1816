"""The timing harness: the first (compiling) hw5jax call, then interleaved repeats of both
sides with their medians and each repeat's own ratio; the machine's matmul peak; peak RSS.
"""

from __future__ import annotations

import resource
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from hw5jax.bench.device import synced

MATMUL_SIZE = 4096


def block(tree: Any) -> Any:
    """`tree` once every array in it is computed (JAX dispatches asynchronously)."""
    return jax.block_until_ready(tree)


def timed(fn: Callable[[], Any]) -> float:
    """Seconds one call of `fn` takes."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def compare(
    jax_epoch: Callable[[], Any],
    torch_run: Callable[[], Any] | None,
    repeats: int,
    label: str,
    first: float | None = None,
) -> dict[str, Any]:
    """First hw5jax call (compile + run; timed here unless given), then `repeats` interleaved
    epochs of both sides (alternating which goes first); medians."""
    first = timed(jax_epoch) if first is None else first
    jax_times: list[float] = []
    torch_times: list[float] = []
    for r in range(repeats):
        sides = [(jax_epoch, jax_times), (torch_run, torch_times)]
        for fn, times in sides if r % 2 == 0 else sides[::-1]:
            if fn is not None:
                times.append(timed(fn))
        print(
            f"  {label} repeat {r + 1}/{repeats}: hw5jax {jax_times[-1]:.3f} s"
            + (f", torch {torch_times[-1]:.3f} s" if torch_times else ""),
            file=sys.stderr,
        )
    hw = statistics.median(jax_times)
    th = statistics.median(torch_times) if torch_times else None
    # Each repeat's own ratio (its two sides ran back to back): how far this machine's noise
    # moves the ratio within one run.
    paired = [t / j for j, t in zip(jax_times, torch_times, strict=True)] if torch_times else []
    return {
        "hw5jax_s": hw,
        "torch_s": th,
        "ratio": th / hw if th else None,
        "ratio_range": [min(paired), max(paired)] if paired else None,
        "hw5jax_first_call_s": first,
        "compile_s": max(first - hw, 0.0),
        "hw5jax_all_s": jax_times,
        "torch_all_s": torch_times,
    }


def achieved_gflops(flops: int, timing: dict[str, Any]) -> dict[str, float | None]:
    """GFLOP/s of each side of a `compare` result that did `flops` per epoch."""
    return {
        "hw5jax": flops / timing["hw5jax_s"] / 1e9,
        "torch": flops / timing["torch_s"] / 1e9 if timing["torch_s"] else None,
    }


def peak_matmul_gflops(
    torch: Any, repeats: int = 5, size: int = MATMUL_SIZE, device: str = "cpu"
) -> dict[str, Any]:
    """GFLOP/s of a size x size float32 matmul (2 size^3 flops): best of `repeats`, for jax
    (its default device) and (if `torch` is not None) for torch on `device`."""
    a = jax.random.normal(jax.random.PRNGKey(0), (size, size), jnp.float32)
    b = jax.random.normal(jax.random.PRNGKey(1), (size, size), jnp.float32)
    matmul = jax.jit(jnp.dot)
    block(matmul(a, b))
    flops = 2 * size**3
    out = {"jax": flops / min(timed(lambda: block(matmul(a, b))) for _ in range(repeats)) / 1e9}
    if torch is not None:
        ta = torch.from_numpy(np.array(a)).to(device)  # np.array: writable
        tb = torch.from_numpy(np.array(b)).to(device)
        product = synced(torch, device, lambda: ta @ tb)
        product()
        out["torch"] = flops / min(timed(product) for _ in range(repeats)) / 1e9
    return out


def peak_rss_mib() -> float:
    """The largest resident set this process has had, in MiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB
