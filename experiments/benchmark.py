"""Issue 6: hw5jax against the homework's way of training, written plainly in PyTorch, in one
process on one machine: same data, same network, same initial weights, same number of steps.

    python -m experiments.benchmark                          # everything, 5 repeats
    python -m experiments.benchmark --cases cnn_epoch --repeats 3 --out /tmp/b
    python -m experiments.benchmark --quick --out /tmp/q     # smoke run (synthetic data)
    python -m experiments.benchmark --cases cnn_formulations --steps 40   # CNN variants

The PyTorch side is the homework's loop: eager, `torch.optim`, a shuffled index loop over
in-memory float tensors, batch 128, `torch.set_num_threads(os.cpu_count())`. The hw5jax side
is `Trainer.epoch_jit` (one scanned, compiled epoch) or, for the grid, `Trainer.epoch_shared`
(one vmapped program, the runs sharing every batch, sharded over one single-threaded device
per core: how `fit_grid` trains a tuning grid).
Both sides of a case run interleaved in the same process; each reports the median of
`--repeats` epochs. The first hw5jax call compiles: `compile_s` is that call minus the
steady-state median, reported separately, never hidden. A torch warm-up of a few steps is not
timed (its allocator and thread pool start on the first steps).

Cases (`--cases`):
  mlp_epoch_sgd, mlp_epoch_adam  784-100-100-10 ReLU, one epoch (390 steps of 128)
  grid8_mlp_epoch                one epoch of 8 SGD learning rates: one vmapped program vs
                                 8 PyTorch runs one after another
  cnn_epoch                      the homework CNN (Problem 5.2) with Adam, one epoch
  cnn_formulations               (not run by default) the CNN epoch with each way of writing
                                 its convolutions and pooling in JAX, timed, and checked
                                 against lax.conv + reduce_window at highest precision

Before timing, a parity check runs both sides from the same weights over the same batches
(hw5jax's own shuffle) and records the costs and the largest parameter difference.

Writes OUT/results.json and OUT/table.md.
"""

from __future__ import annotations

import functools
import os
import resource
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from hw5jax import data as mnist_data
from hw5jax.cli import one_device_per_core, parse_config, run_main
from hw5jax.core.optim import full_hparams
from hw5jax.core.sharding import runs_mesh, shard_runs
from hw5jax.core.train import Trainer
from hw5jax.errors import ConfigError
from hw5jax.models.cnn import CNN, conv_as_matmul, max_pool_2x2
from hw5jax.models.mlp import MLP
from hw5jax.reference.pytorch import (
    TORCH_INSTALL,
    import_torch,
    torch_cnn,
    torch_epoch,
    torch_mlp,
    torch_optimizer,
    torch_tensors,
)
from hw5jax.runs.files import output_dir, write_json, write_text

CASES = ("mlp_epoch_sgd", "mlp_epoch_adam", "grid8_mlp_epoch", "cnn_epoch")
EXTRA_CASES = ("cnn_formulations",)
TARGETS = {"mlp_epoch_sgd": 2.5, "mlp_epoch_adam": 2.5, "grid8_mlp_epoch": 4.0, "cnn_epoch": 1.5}
MLP_LAYERS = (784, 100, 100, 10)
CNN_CHANNELS, CNN_HIDDEN, KERNEL = (32, 64), (100, 100), 5
BATCH = 128
LEARNING_RATES = {"sgd": 0.1, "adam": 1e-3}
GRID_RATES = (0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0)
QUICK_STEPS = {"mlp": 8, "cnn": 2}
PARITY_STEPS = QUICK_STEPS  # the same shapes as --quick: no extra compilation there
WARMUP_STEPS = {"mlp": 20, "cnn": 3}  # untimed torch steps (thread pool, allocator)
MATMUL_SIZE = 4096
SEED = 0
TORCH_MISSING = (
    "torch is not installed: the PyTorch side is skipped (its times and ratios "
    f"are null); install it with `{TORCH_INSTALL}`"
)


@dataclass(frozen=True)
class BenchmarkConfig:
    out: str | None = field(
        default=None,
        metadata={"help": "output directory (default runs/benchmark/<UTC time>)", "metavar": "DIR"},
    )
    repeats: int = field(default=5, metadata={"help": "timed epochs per side; medians reported"})
    cases: tuple[str, ...] = field(
        default=CASES,
        metadata={
            "help": f"cases to run, of {', '.join(CASES + EXTRA_CASES)}",
            "metavar": "A,B,...",
        },
    )
    data: str = field(
        default="auto",
        metadata={
            "help": "MNIST source (auto, embedded, tfds, IDX dir, .pkl.gz) or 'synthetic' "
            "(random MNIST-shaped data)",
            "metavar": "SOURCE",
        },
    )
    steps: int | None = field(
        default=None,
        metadata={"help": "steps per epoch (default: a full epoch of the training split, 390)"},
    )
    torch_threads: int | None = field(
        default=None,
        metadata={
            "help": "torch.set_num_threads (default: os.cpu_count(), the homework's setting)"
        },
    )
    quick: bool = field(
        default=False, metadata={"help": "smoke run: synthetic data, 1 repeat, a few steps"}
    )

    def __post_init__(self):
        if self.repeats < 1:
            raise ConfigError(f"--repeats {self.repeats}: must be at least 1")
        if self.torch_threads is not None and self.torch_threads < 1:
            raise ConfigError(f"--torch-threads {self.torch_threads}: must be at least 1")
        if self.steps is not None and self.steps < 1:
            raise ConfigError(f"--steps {self.steps}: must be at least 1")
        if not self.cases:
            raise ConfigError("--cases: name at least one case")
        for case in self.cases:
            if case not in CASES + EXTRA_CASES:
                raise ConfigError(
                    f"--cases: unknown case {case!r}; use {', '.join(CASES + EXTRA_CASES)}"
                )

    def effective(self) -> BenchmarkConfig:
        return replace(self, data="synthetic", repeats=1) if self.quick else self

    def warmup(self, kind: str) -> int:
        return 1 if self.quick else WARMUP_STEPS[kind]

    def steps_for(self, kind: str) -> int | None:
        return QUICK_STEPS[kind] if self.quick else self.steps


# ----------------------------------------------------------------------------- work counts


def mlp_example_flops(layers=MLP_LAYERS) -> int:
    """Multiply-adds x2 of one training example: forward (x @ W), weight gradients (x^T @ g)
    and input gradients (g @ W^T) for every layer but the first (the image needs none)."""
    macs = [i * o for i, o in zip(layers[:-1], layers[1:], strict=True)]
    return 2 * (2 * sum(macs) + sum(macs[1:]))


def cnn_example_flops(channels=CNN_CHANNELS, hidden=CNN_HIDDEN, k=KERNEL) -> int:
    """The same count for the CNN: a 'same' conv on an HxW map costs H*W*C_out*k*k*C_in
    multiply-adds; pooling, ReLU and the optimizer are not counted."""
    convs = [28 * 28 * channels[0] * k * k * 1, 14 * 14 * channels[1] * k * k * channels[0]]
    widths = [7 * 7 * channels[-1], *hidden, 10]
    dense = [i * o for i, o in zip(widths[:-1], widths[1:], strict=True)]
    macs = convs + dense
    return 2 * (2 * sum(macs) + sum(macs[1:]))


# ----------------------------------------------------------------------------- data


def synthetic(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """n MNIST-shaped examples: a class prototype plus noise (uint8[n, 28, 28, 1], int32[n]).
    Never clipped, so no flat regions: no tied maxima in the max-pools, where PyTorch and
    hw5jax pick different (equally valid) subgradients."""
    rng = np.random.default_rng(seed)
    prototypes = rng.uniform(0, 200, (10, 28, 28, 1))
    labels = rng.integers(0, 10, n).astype(np.int32)
    images = prototypes[labels] + rng.uniform(0, 55, (n, 28, 28, 1))
    return images.astype(np.uint8), labels


def load_train(config: BenchmarkConfig) -> tuple[np.ndarray, np.ndarray, str]:
    """The training images and labels, cut to `config.steps` batches if given."""
    if config.data == "synthetic":
        n = BATCH * (config.steps or 50_000 // BATCH)
        return (*synthetic(n), "synthetic")
    mnist = mnist_data.load_mnist(config.data)
    source = config.data
    if source == "auto":
        source = "embedded" if mnist_data.embedded_path().is_file() else "tfds"
    return mnist.train.images, mnist.train.labels, source


# ----------------------------------------------------------------------------- hw5jax side


def mlp_trainer(optimizer: str) -> Trainer:
    return Trainer(
        functools.partial(MLP, MLP_LAYERS, activation="relu"), optimizer, batch_size=BATCH
    )


def cnn_trainer(model_fn: Callable[..., nnx.Module] | None = None) -> Trainer:
    model_fn = model_fn or functools.partial(CNN, CNN_CHANNELS, CNN_HIDDEN, kernel_size=KERNEL)
    return Trainer(model_fn, "adam", batch_size=BATCH)


def init_state(trainer: Trainer, learning_rate: float, seed: int = SEED):
    hp = full_hparams(trainer.optimizer, {"learning_rate": learning_rate})
    return trainer.init_jit(jnp.uint32(seed), {k: jnp.float32(v) for k, v in hp.items()})


def init_grid(trainer: Trainer, rates) -> Any:
    hp = [full_hparams(trainer.optimizer, {"learning_rate": r}) for r in rates]
    return trainer.init_many([0] * len(rates), hp)


def epoch_order(state, n: int, batch_size: int = BATCH) -> np.ndarray:
    """The batches `Trainer.epoch` will draw from `state` (int[steps, batch]): it splits
    state["rng"] into (next rng, permutation key, step key). Parity checks only; if the
    Trainer changes how it shuffles, the parity check fails loudly."""
    _, perm_key, _ = jax.random.split(state["rng"], 3)
    steps = n // batch_size
    order = jax.random.permutation(perm_key, n)[: steps * batch_size]
    return np.array(order).reshape(steps, batch_size)  # writable: torch.from_numpy wants it


def numpy_params(state) -> dict:
    return jax.tree.map(np.asarray, nnx.to_pure_dict(state["params"]))


# ----------------------------------------------------------------------------- timing


def block(tree) -> Any:
    return jax.block_until_ready(tree)


def timed(fn: Callable[[], Any]) -> float:
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
    jax_times, torch_times = [], []
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


def peak_matmul_gflops(torch, repeats: int = 5, size: int = MATMUL_SIZE) -> dict[str, Any]:
    """GFLOP/s of a size x size float32 matmul (2 size^3 flops): best of `repeats`."""
    a = jax.random.normal(jax.random.PRNGKey(0), (size, size), jnp.float32)
    b = jax.random.normal(jax.random.PRNGKey(1), (size, size), jnp.float32)
    matmul = jax.jit(jnp.dot)
    block(matmul(a, b))
    flops = 2 * size**3
    out = {"jax": flops / min(timed(lambda: block(matmul(a, b))) for _ in range(repeats)) / 1e9}
    if torch is not None:
        ta, tb = torch.from_numpy(np.array(a)), torch.from_numpy(np.array(b))  # writable
        ta @ tb
        out["torch"] = flops / min(timed(lambda: ta @ tb) for _ in range(repeats)) / 1e9
    return out


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


# ----------------------------------------------------------------------------- cases


def parity(
    torch,
    trainer: Trainer,
    make_torch,
    learning_rate: float,
    images,
    labels,
    steps: int,
    nchw: bool,
) -> dict[str, Any]:
    """Both sides from the same weights over the same `steps` batches (hw5jax's shuffle):
    mean training cost of each, and the largest |difference| of any parameter after."""
    x, y = images[: steps * BATCH], labels[: steps * BATCH]
    state = init_state(trainer, learning_rate)
    start = numpy_params(state)
    order = epoch_order(state, len(y))
    grad_diff = gradient_parity(torch, trainer, state, make_torch, x[order[0]], y[order[0]], nchw)
    state, metrics = trainer.epoch_jit(state, jnp.asarray(x), jnp.asarray(y))
    end = numpy_params(state)
    model = make_torch(torch, start)
    opt = torch_optimizer(torch, trainer.optimizer, model, learning_rate)
    tx, ty = torch_tensors(torch, x, y, nchw)
    torch_cost = torch_epoch(torch, model, opt, tx, ty, order=torch.from_numpy(order))
    torch_end = {k: v.detach().numpy() for k, v in model.state_dict().items()}
    ref = make_torch(torch, end).state_dict()
    diff = max(float(np.max(np.abs(torch_end[k] - ref[k].numpy()))) for k in torch_end)
    scale = max(float(np.max(np.abs(ref[k].numpy()))) for k in ref)
    return {
        "steps": steps,
        "hw5jax_cost": float(metrics["train_cost"]),
        "torch_cost": torch_cost,
        "max_param_diff": diff,
        "max_param_abs": scale,
        "max_rel_grad_diff": grad_diff,
    }


def gradient_parity(
    torch, trainer: Trainer, state, make_torch, images, labels, nchw: bool
) -> float:
    """Largest |torch grad - hw5jax grad| / max |hw5jax grad| over the parameters, on one
    batch from the same weights: the two sides compute the same function and derivative."""
    x = jnp.asarray(images).astype(jnp.float32) / 255.0

    def cost(params):
        return trainer.cost(
            params, state["model_state"], x, jnp.asarray(labels), jax.random.PRNGKey(0)
        )[0]

    grads = jax.tree.map(np.asarray, nnx.to_pure_dict(jax.grad(cost)(state["params"])))
    model = make_torch(torch, numpy_params(state))
    tx, ty = torch_tensors(torch, images, labels, nchw)
    torch.nn.functional.cross_entropy(model(tx), ty).backward()
    # The jax gradients in torch's layout: the same conversion as the weights.
    ref = make_torch(torch, grads).state_dict()
    return max(
        float(
            np.max(np.abs(p.grad.numpy() - ref[k].numpy()))
            / (np.max(np.abs(ref[k].numpy())) + 1e-30)
        )
        for k, p in model.named_parameters()
    )


def run_single(
    torch,
    trainer: Trainer,
    make_torch,
    optimizer: str,
    kind: str,
    case: str,
    images,
    labels,
    config: BenchmarkConfig,
) -> dict[str, Any]:
    """One network, one optimizer: a compiled hw5jax epoch against the eager PyTorch loop,
    from the same weights, after checking that both compute the same steps.
    `kind` is "mlp" or "cnn" (warm-up and parity step counts; the CNN's PyTorch side is NCHW)."""
    lr = LEARNING_RATES[optimizer]
    nchw = kind == "cnn"
    x, y = jnp.asarray(images), jnp.asarray(labels)
    holder = {"state": init_state(trainer, lr)}
    start = numpy_params(holder["state"])

    def jax_epoch():
        holder["state"], metrics = trainer.epoch_jit(holder["state"], x, y)
        block(metrics)

    first = timed(jax_epoch)  # compiles (before the parity check can)
    result: dict[str, Any] = {}
    torch_run = None
    if torch is not None:
        result["parity"] = parity(
            torch, trainer, make_torch, lr, images, labels, PARITY_STEPS[kind], nchw=nchw
        )
        model = make_torch(torch, start)
        opt = torch_optimizer(torch, optimizer, model, lr)
        tx, ty = torch_tensors(torch, images, labels, nchw=nchw)
        torch_epoch(torch, model, opt, tx, ty, steps=config.warmup(kind))  # untimed
        torch_run = functools.partial(torch_epoch, torch, model, opt, tx, ty)
    return {**result, **compare(jax_epoch, torch_run, config.repeats, case, first)}


def run_mlp(torch, optimizer: str, images, labels, config: BenchmarkConfig) -> dict[str, Any]:
    return run_single(
        torch,
        mlp_trainer(optimizer),
        torch_mlp,
        optimizer,
        "mlp",
        f"mlp_epoch_{optimizer}",
        images,
        labels,
        config,
    )


def run_grid(torch, images, labels, config: BenchmarkConfig) -> dict[str, Any]:
    """The 8 rates as a tuning sweep trains them (`fit_grid`): one program, the runs sharing
    the seed and so every batch (`Trainer.epoch_shared`), the stack split over the devices
    (`runs_mesh`; one single-threaded device per core, see `main`)."""
    trainer = mlp_trainer("sgd")
    state = init_grid(trainer, GRID_RATES)
    start = numpy_params(jax.tree.map(lambda leaf: leaf[0], state))
    mesh = runs_mesh()
    if mesh is not None and len(GRID_RATES) % mesh.size:
        mesh = None  # the runs do not split evenly (fit_grid would pad): one device
    state, data_sharding = shard_runs(state, mesh)
    x, y = jax.device_put((images, labels), data_sharding)
    holder = {"state": state}

    def jax_epoch():
        holder["state"], metrics = trainer.epoch_shared(holder["state"], x, y)
        block(metrics)

    torch_run = None
    if torch is not None:
        tx, ty = torch_tensors(torch, images, labels, nchw=False)
        runs = []
        for lr in GRID_RATES:
            model = torch_mlp(torch, start)
            runs.append((model, torch_optimizer(torch, "sgd", model, lr)))
        torch_epoch(torch, *runs[0], tx, ty, steps=config.warmup("mlp"))

        def torch_run():
            for model, opt in runs:  # the homework's way: one run after another
                torch_epoch(torch, model, opt, tx, ty)

    return {
        "learning_rates": list(GRID_RATES),
        "devices": 1 if mesh is None else mesh.size,
        **compare(jax_epoch, torch_run, config.repeats, "grid8_mlp_epoch"),
    }


def run_cnn(torch, images, labels, config: BenchmarkConfig) -> dict[str, Any]:
    return run_single(
        torch, cnn_trainer(), torch_cnn, "adam", "cnn", "cnn_epoch", images, labels, config
    )


# ----------------------------------------------------------------------------- CNN variants


def conv_lax(lhs, rhs, *args, **kwargs):
    """XLA's own convolution (what nnx.Conv uses by default)."""
    return jax.lax.conv_general_dilated(lhs, rhs, *args, **kwargs)


def conv_patches(lhs, rhs, window_strides=(1, 1), padding="SAME", *_, precision=None, **__):
    """im2col by `lax.conv_general_dilated_patches` (itself a convolution with a 0/1 kernel),
    then one matmul. Its patch features are ordered (c_in, kh, kw)."""
    kh, kw, c_in, c_out = rhs.shape
    patches = jax.lax.conv_general_dilated_patches(
        lhs, (kh, kw), window_strides, padding, dimension_numbers=("NHWC", "HWIO", "NHWC")
    )
    kernel = jnp.transpose(rhs, (2, 0, 1, 3)).reshape(c_in * kh * kw, c_out)
    return jnp.einsum("bhwk,ko->bhwo", patches, kernel, precision=precision)


def conv_nchw(lhs, rhs, window_strides=(1, 1), padding="SAME", *_, precision=None, **__):
    """XLA's convolution in PyTorch's layout (NCHW input, OIHW kernel), transposed around."""
    out = jax.lax.conv_general_dilated(
        jnp.transpose(lhs, (0, 3, 1, 2)),
        jnp.transpose(rhs, (3, 2, 0, 1)),
        window_strides,
        padding,
        dimension_numbers=("NCHW", "OIHW", "NCHW"),
        precision=precision,
    )
    return jnp.transpose(out, (0, 2, 3, 1))


def pool_reduce_window(x):
    """flax's max-pool: `lax.reduce_window`; its gradient is XLA's select-and-scatter."""
    return nnx.max_pool(x, (2, 2), strides=(2, 2))


FORMULATIONS: dict[str, tuple[Callable, Callable]] = {
    "lax.conv NHWC + reduce_window pool (flax defaults)": (conv_lax, pool_reduce_window),
    "lax.conv NHWC + reshape-max pool": (conv_lax, max_pool_2x2),
    "lax.conv NCHW/OIHW + reshape-max pool": (conv_nchw, max_pool_2x2),
    "conv_general_dilated_patches + matmul + reshape-max": (conv_patches, max_pool_2x2),
    "im2col (shifted slices) + matmul + reduce_window pool": (conv_as_matmul, pool_reduce_window),
    "im2col (shifted slices) + matmul + reshape-max (hw5jax.models.cnn)": (
        conv_as_matmul,
        max_pool_2x2,
    ),
}


class CNNVariant(CNN):
    """The homework CNN (no BatchNorm, no dropout) with its conv and pooling swapped."""

    def __init__(self, conv: Callable, pool: Callable, *, rngs: nnx.Rngs):
        super().__init__(CNN_CHANNELS, CNN_HIDDEN, kernel_size=KERNEL, rngs=rngs)
        for layer in self.convs:
            layer.conv_general_dilated = conv
        self.pool = pool

    def features(self, x, *, train: bool = False):
        maps = []
        for layer in self.convs:
            x = jax.nn.relu(self.pool(layer(x)))
            maps.append(x)
        return maps


def run_formulations(images, labels, config: BenchmarkConfig) -> dict[str, Any]:
    """Each formulation: an Adam epoch of `steps` steps (first call, median of repeats), and
    its logits and gradients on one batch against lax.conv + reduce_window at 'highest'."""
    lr = LEARNING_RATES["adam"]
    x, y = jnp.asarray(images), jnp.asarray(labels)
    batch = x[:BATCH].astype(jnp.float32) / 255.0

    def loss_and_grad(model_fn, precision):
        trainer = cnn_trainer(model_fn)
        state = init_state(trainer, lr)

        def loss(p):
            with jax.default_matmul_precision(precision):
                logits, _ = trainer.apply(p, state["model_state"], batch, train=False)
            return jnp.mean(jax.nn.logsumexp(logits, -1) - logits[jnp.arange(BATCH), y[:BATCH]])

        value, grads = jax.jit(jax.value_and_grad(loss))(state["params"])
        return value, jax.tree.leaves(grads)

    ref_loss, ref_grads = loss_and_grad(
        functools.partial(CNNVariant, conv_lax, pool_reduce_window), "highest"
    )
    out = {}
    for name, (conv, pool) in FORMULATIONS.items():
        model_fn = functools.partial(CNNVariant, conv, pool)
        value, grads = loss_and_grad(model_fn, "default")
        grad_err = max(
            float(jnp.max(jnp.abs(g - r)) / (jnp.max(jnp.abs(r)) + 1e-30))
            for g, r in zip(grads, ref_grads, strict=True)
        )
        trainer = cnn_trainer(model_fn)
        holder = {"state": init_state(trainer, lr)}

        def jax_epoch(trainer=trainer, holder=holder):
            holder["state"], metrics = trainer.epoch_jit(holder["state"], x, y)
            block(metrics)

        timing = compare(jax_epoch, None, config.repeats, name)
        out[name] = {
            "epoch_s": timing["hw5jax_s"],
            "compile_s": timing["compile_s"],
            "loss_diff": abs(float(value - ref_loss)),
            "max_rel_grad_diff": grad_err,
        }
        print(f"{name}: {timing['hw5jax_s']:.3f} s, grad diff {grad_err:.1e}", file=sys.stderr)
    return {
        "steps": len(labels) // BATCH,
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
        "variants": out,
    }


# ----------------------------------------------------------------------------- report


def fmt(value, spec: str = ".2f", none: str = "—") -> str:
    return none if value is None else format(value, spec)


def table(results: dict) -> str:
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
            f"{fmt(r['ratio'])} (≥ {TARGETS[case]}) | "
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


def run(config: BenchmarkConfig) -> dict:
    start = time.perf_counter()
    requested, config = config, config.effective()
    torch = import_torch(config.torch_threads)
    if torch is None:
        print(TORCH_MISSING, file=sys.stderr)
    images, labels, source = load_train(config)
    out = output_dir(config.out, "benchmark")

    def cut(kind: str):
        steps = config.steps_for(kind)
        if steps is None:
            return images, labels
        if steps * BATCH > len(labels):
            raise ConfigError(f"--steps {steps}: the data hold only {len(labels) // BATCH}")
        return images[: steps * BATCH], labels[: steps * BATCH]

    cases: dict[str, Any] = {}
    flops: dict[str, int] = {}
    for case in config.cases:
        kind = "cnn" if case.startswith("cnn") else "mlp"
        x, y = cut(kind)
        print(f"{case}: {len(y) // BATCH} steps of {BATCH}", file=sys.stderr)
        if case == "cnn_formulations":
            continue
        if case.startswith("mlp_epoch_"):
            cases[case] = run_mlp(torch, case.removeprefix("mlp_epoch_"), x, y, config)
        elif case == "grid8_mlp_epoch":
            cases[case] = run_grid(torch, x, y, config)
        else:
            cases[case] = run_cnn(torch, x, y, config)
        steps = len(y) // BATCH
        cases[case]["steps"] = steps
        per_example = cnn_example_flops() if kind == "cnn" else mlp_example_flops()
        flops[case] = per_example * steps * BATCH * (len(GRID_RATES) if "grid" in case else 1)

    results: dict[str, Any] = {
        "experiment": "benchmark",
        "quick": requested.quick,
        "data": source,
        "repeats": config.repeats,
        "batch_size": BATCH,
        "cpu_count": os.cpu_count(),
        "devices": jax.device_count(),
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
        "jax": jax.__version__,
        "torch": torch.__version__ if torch is not None else None,
        "torch_threads": torch.get_num_threads() if torch is not None else None,
        "compile_note": (
            "--quick: the persistent compilation cache may have served these"
            if requested.quick
            else "cold: the persistent compilation cache is off in this process"
        ),
        "torch_note": None if torch is not None else TORCH_MISSING,
        "cases": {},
        "compile_s": {},
        "epoch_gflop": {k: v / 1e9 for k, v in flops.items()},
        "achieved_gflops": {},
    }
    for case, r in cases.items():
        results["compile_s"][case] = r.pop("compile_s")
        results["cases"][case] = r
        results["achieved_gflops"][case] = {
            "hw5jax": flops[case] / r["hw5jax_s"] / 1e9,
            "torch": flops[case] / r["torch_s"] / 1e9 if r["torch_s"] else None,
        }
    if "cnn_formulations" in config.cases:
        results["cnn_formulations"] = run_formulations(*cut("cnn"), config)
    peak = peak_matmul_gflops(
        torch, repeats=1 if requested.quick else 5, size=1024 if requested.quick else MATMUL_SIZE
    )
    results["peak_matmul_gflops"] = peak["jax"]
    results["matmul_size"] = 1024 if requested.quick else MATMUL_SIZE
    results["peak_matmul_gflops_torch"] = peak.get("torch")
    results["peak_rss_mib"] = peak_rss_mib()
    results["wall_seconds"] = time.perf_counter() - start
    write_text(out / "table.md", table(results))
    write_json(out / "results.json", results)
    return {**results, "out": str(out)}


def main(argv: list[str] | None = None) -> None:
    config = parse_config(
        BenchmarkConfig, argv, description=__doc__, prog="python -m experiments.benchmark"
    )
    # As the sweeps run: each core a single-threaded device. The grid case shards its runs
    # over them; a single run (MLP, CNN) uses one of them, which measured as fast as one
    # device with a 2-thread pool here (README, "Speed").
    one_device_per_core()
    # Compile time is part of what is measured: no reuse of a previous run's programs
    # (except in a --quick smoke run, whose times mean nothing).
    cache = jax.config.jax_enable_compilation_cache
    jax.config.update("jax_enable_compilation_cache", config.quick and cache)
    try:
        results = run(config)
    finally:
        jax.config.update("jax_enable_compilation_cache", cache)
    print(table(results), end="")
    print(f"results: {results['out']}/results.json")


if __name__ == "__main__":
    run_main(main)
