"""Time the homework CNN's convolutions (batch 128, 5x5 SAME) with each formulation, and one
40-step Adam epoch of the homework CNN with conv="xla" against conv="onednn".

    python -m hw5jax.kernels.probe            # JAX's default: one device, 2 Eigen threads
    XLA_FLAGS="--xla_force_host_platform_device_count=2 --xla_cpu_multi_thread_eigen=false" \\
        python -m hw5jax.kernels.probe        # as `hw5jax.cli.one_device_per_core` sets it
    python -m hw5jax.kernels.probe --torch    # also PyTorch's conv2d (NCHW) for reference

Each conv line: forward + the gradients the network needs (conv 1: the kernel's only, its
input is the image; conv 2: input and kernel), jitted, median of `--repeats` calls, ms.
"""

from __future__ import annotations

import argparse
import functools
import statistics
import time
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from hw5jax.kernels.conv import available, onednn_conv, onednn_version, threads

# (input NHWC, kernel HWIO, whether the network needs the input gradient)
CONVS = {
    "conv 1 (28x28x1 -> 32)": ((128, 28, 28, 1), (5, 5, 1, 32), False),
    "conv 2 (14x14x32 -> 64)": ((128, 14, 14, 32), (5, 5, 32, 64), True),
}


def median_ms(fn: Callable[[], object], repeats: int) -> float:
    """The median wall time of `repeats` calls after one warm-up (compilation), in ms."""
    jax.block_until_ready(fn())
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - t0)
    return 1e3 * statistics.median(times)


def lax_conv(lhs, rhs, *_, **__):
    return jax.lax.conv_general_dilated(
        lhs, rhs, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")
    )


def conv_step(conv: Callable, need_dx: bool) -> Callable:
    """x, w -> the forward output and the gradients (of sum(y * 1)) the network needs."""

    def step(x, w):
        y, vjp = jax.vjp(conv, x, w)
        dx, dw = vjp(jnp.ones_like(y))
        return (y, dx, dw) if need_dx else (y, dw)

    return jax.jit(step)


def torch_ms(x_shape, w_shape, need_dx: bool, repeats: int) -> float:
    """PyTorch's conv2d forward + backward on NCHW, 2 threads (its oneDNN)."""
    import torch

    torch.set_num_threads(2)
    n, h, w, c = x_shape
    kh, kw, _, o = w_shape
    x = torch.randn(n, c, h, w, requires_grad=need_dx)
    k = torch.randn(o, c, kh, kw, requires_grad=True)

    def step():
        y = torch.nn.functional.conv2d(x, k, padding=kh // 2)
        y.backward(torch.ones_like(y))

    return median_ms(step, repeats)


def conv_probes(repeats: int, with_torch: bool) -> None:
    from hw5jax.models.cnn import conv_as_matmul

    formulations = {"lax.conv": lax_conv, "conv_as_matmul": conv_as_matmul}
    if available():
        formulations["onednn_conv"] = onednn_conv
    key = jax.random.PRNGKey(0)
    for name, (x_shape, w_shape, need_dx) in CONVS.items():
        x = jax.random.normal(key, x_shape)
        w = 0.1 * jax.random.normal(key, w_shape)
        for label, conv in formulations.items():
            step = conv_step(conv, need_dx)
            ms = median_ms(functools.partial(step, x, w), repeats)
            print(f"{name}: {label:15s} {ms:7.2f} ms")
        if with_torch:
            ms = torch_ms(x_shape, w_shape, need_dx, repeats)
            print(f"{name}: {'torch conv2d':15s} {ms:7.2f} ms")


def epoch_probe(conv: str, repeats: int, steps: int = 40) -> float:
    """Seconds of one `steps`-step Adam epoch (batch 128) of the homework CNN, median."""
    from hw5jax.core.optim import full_hparams
    from hw5jax.core.train import Trainer
    from hw5jax.models.cnn import CNN

    trainer = Trainer(functools.partial(CNN, conv=conv), "adam", batch_size=128)
    hp = full_hparams("adam", {"learning_rate": 1e-3})
    holder = {"state": trainer.init_jit(jnp.uint32(0), {k: jnp.float32(v) for k, v in hp.items()})}
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.integers(0, 256, (steps * 128, 28, 28, 1), dtype=np.uint8))
    y = jnp.asarray(rng.integers(0, 10, steps * 128, dtype=np.int32))

    def epoch():
        holder["state"], metrics = trainer.epoch_jit(holder["state"], x, y)
        return metrics

    return median_ms(epoch, repeats) / 1e3


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--epoch-repeats", type=int, default=5)
    parser.add_argument("--torch", action="store_true", help="also time torch's conv2d")
    parser.add_argument("--no-epoch", action="store_true", help="only the conv probes")
    args = parser.parse_args(argv)
    devices = jax.devices("cpu")
    print(
        f"jax {jax.__version__}, oneDNN {onednn_version() or 'not built'}, "
        f"{len(devices)} CPU device(s), oneDNN threads per call {threads() or 'auto'}"
    )
    conv_probes(args.repeats, args.torch)
    if not args.no_epoch:
        for conv in ("xla", "onednn") if available() else ("xla",):
            seconds = epoch_probe(conv, args.epoch_repeats)
            step_ms = seconds / 40 * 1e3
            print(f"40-step Adam epoch, conv={conv}: {seconds:.3f} s ({step_ms:.1f} ms/step)")


if __name__ == "__main__":
    main()
