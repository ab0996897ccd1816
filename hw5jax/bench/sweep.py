"""The main job end to end: the optimizer sweep (Problem 3.1, `python -m experiments.optim_sweep`)
as hw5jax runs it, against the same runs trained the homework's way, in PyTorch, one after
another.

hw5jax's side is the sweep itself (its grids, successive halving, seeds and epochs; per-epoch
checkpoints, metrics, figures and results included: what a user waits for), run by the
`SweepRunner` the command line gives into a directory under the benchmark's output, which is
deleted afterwards (its results.json is kept as `sweep_results.json`). Its compile part is
the time JAX reports tracing, lowering and compiling programs (`jax.monitoring` events).

PyTorch's side is derived from that result (`sweep_runs`): every run the sweep trained (its
optimizer, hyperparameters, seed and the epochs it trained: successive halving stops some
early), checked against the sweep's own per-epoch log (`check_runs`, OUT/metrics.jsonl), then
trained on the same splits, one run after another: the same network (784-100-100-10),
optimizer, hyperparameters, L2 strength, learning-rate schedule and steps per epoch, the
validation accuracy after every epoch, and the test accuracy of each final model.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import math
import pickle
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import numpy as np

from hw5jax import data as mnist_data
from hw5jax.bench.device import synchronize
from hw5jax.bench.networks import synthetic
from hw5jax.bench.plan import Plan
from hw5jax.reference.pytorch import torch_accuracy, torch_epoch, torch_tensors
from hw5jax.runs.metrics import FILE as METRICS_FILE

RUN_DIR = "sweep_run"  # the sweep's run while it runs, under the benchmark's output
RESULTS = "sweep_results.json"  # its results.json, kept
COMPILE_EVENTS = (
    "/jax/core/compile/jaxpr_trace_duration",
    "/jax/core/compile/jaxpr_to_mlir_module_duration",
    "/jax/core/compile/backend_compile_duration",
)
# Synthetic splits (--data synthetic): MNIST's sizes; --quick: 8 steps of 128 per epoch.
SYNTHETIC_SIZES = {"train": 50_000, "val": 10_000, "test": 10_000}
QUICK_SIZES = {"train": 1024, "val": 256, "test": 256}


@dataclass(frozen=True)
class SweepRun:
    """One training run of the sweep: `optimizer` (its entry), `stage` ("grid": a point of its
    grid, on the first seed; "seeds": a final run), `hparams` (sorted (name, value) pairs),
    `seed`, `epochs` trained, and whether its model is `tested` (a final model)."""

    optimizer: str
    stage: str
    hparams: tuple[tuple[str, float], ...]
    seed: int
    epochs: int
    tested: bool = False

    @property
    def key(self) -> tuple[str, str, tuple[tuple[str, float], ...], int, int]:
        """What identifies it in the sweep's log (everything but `tested`)."""
        return (self.optimizer, self.stage, self.hparams, self.seed, self.epochs)


def _hparams(hp: Mapping[str, float]) -> tuple[tuple[str, float], ...]:
    return tuple(sorted((k, float(v)) for k, v in hp.items()))


def sweep_runs(results: Mapping[str, Any]) -> list[SweepRun]:
    """Every run a finished sweep trained, in the order it trained them, from its results
    (results.json): per optimizer each grid point on the first seed for the epochs it trained,
    then the selected point on the remaining seeds for `epochs`. When the grid trained the
    full `epochs`, the first seed's grid run at the selected point is that seed's final run
    (`hw5jax.core.sweep.tune_and_retrain`), tested rather than trained again."""
    seeds, epochs = list(results["seeds"]), int(results["epochs"])
    reuse = int(results["grid_epochs"]) == epochs
    runs: list[SweepRun] = []
    for name, entry in results["optimizers"].items():
        selected = entry.get("selected")
        reused = False
        for point in entry["grid"]:
            final = (
                reuse
                and not reused
                and selected is not None
                and _hparams(point["hparams"]) == _hparams(selected)
                and point["epochs"] == epochs
            )
            reused |= final
            runs.append(
                SweepRun(name, "grid", _hparams(point["hparams"]), seeds[0], point["epochs"], final)
            )
        if selected is None:  # every grid point diverged: no final runs
            continue
        for seed in seeds[1:] if reuse else seeds:
            runs.append(SweepRun(name, "seeds", _hparams(selected), seed, epochs, True))
    return runs


def logged_runs(path: Path) -> list[tuple[str, str, tuple[tuple[str, float], ...], int, int]]:
    """The runs the sweep's per-epoch log (OUT/metrics.jsonl) shows trained, as `SweepRun.key`s:
    each (stage, run) with its seed, hyperparameters and the number of epochs logged."""
    found: dict[tuple[str, int], dict[str, Any]] = {}
    for line in path.read_text().splitlines():
        record = json.loads(line)
        run = found.setdefault((record["stage"], record["run"]), {"epochs": set(), **record})
        run["epochs"].add(record["epoch"])
    keys = []
    for (stage, _), run in found.items():
        optimizer, _, program = stage.partition(": ")
        kind = "grid" if program.startswith("grid") else "seeds"
        keys.append((optimizer, kind, _hparams(run["hparams"]), run["seed"], len(run["epochs"])))
    return keys


def check_runs(runs: list[SweepRun], logged: list[tuple]) -> None:
    """`runs` (derived from the results) must be the runs the log shows, each once: a
    ValueError naming those missing from either side (PyTorch would train other runs)."""
    derived, shown = Counter(r.key for r in runs), Counter(logged)
    if derived != shown:
        missing, extra = shown - derived, derived - shown
        raise ValueError(
            f"the runs derived from the sweep's results differ from those it logged: "
            f"not derived {sorted(missing)}, not logged {sorted(extra)}"
        )


def write_synthetic(path: Path, sizes: Mapping[str, int]) -> str:
    """Synthetic MNIST-shaped splits (`hw5jax.bench.networks.synthetic`) in Nielsen's
    `.pkl.gz` format at `path`, a source the sweep loads like any other; returns it."""
    names = ("train", "val", "test")
    images, labels = synthetic(sum(sizes[k] for k in names))  # one draw: the same classes
    x = images.reshape(len(labels), 784).astype(np.float32) / np.float32(256.0)
    ends = np.cumsum([sizes[k] for k in names])
    splits = [
        (x[end - sizes[k] : end], labels[end - sizes[k] : end].astype(np.int64))
        for k, end in zip(names, ends, strict=True)
    ]
    with gzip.open(path, "wb", compresslevel=1) as f:
        pickle.dump(tuple(splits), f, protocol=2)  # protocol 2: what the safe reader accepts
    return str(path)


@contextlib.contextmanager
def compile_clock() -> Iterator[dict[str, float]]:
    """Seconds JAX spends tracing, lowering and compiling while the block runs, per event
    (`COMPILE_EVENTS`), summed."""
    totals = dict.fromkeys(COMPILE_EVENTS, 0.0)

    def listener(event: str, duration_secs: float, **_: str | int) -> None:
        if event in totals:
            totals[event] += duration_secs

    jax.monitoring.register_event_duration_secs_listener(listener)
    try:
        yield totals
    finally:
        jax.monitoring.unregister_event_duration_listener(listener)


def sweep_mlp(torch: Any, layers: list[int], activation: str) -> Any:
    """The sweep's MLP in PyTorch (PyTorch's own initialisation, from `torch.manual_seed`)."""
    nn = torch.nn
    act = {"relu": nn.ReLU, "sigmoid": nn.Sigmoid}[activation]
    modules: list[Any] = [nn.Flatten()]
    for i, (n_in, n_out) in enumerate(zip(layers[:-1], layers[1:], strict=True)):
        modules.append(nn.Linear(n_in, n_out))
        if i < len(layers) - 2:
            modules.append(act())
    return nn.Sequential(*modules)


def sweep_optimizer(
    torch: Any, name: str, hparams: Mapping[str, float], model: Any, weight_decay: float
) -> Any:
    """The torch.optim twin of hw5jax's optimizer `name` (`hw5jax.core.optim`) at `hparams`,
    with Nielsen's L2 as the weights' `weight_decay` (lam / n; biases none)."""
    params = list(model.parameters())
    groups = [
        {"params": [p for p in params if p.ndim > 1], "weight_decay": weight_decay},
        {"params": [p for p in params if p.ndim <= 1], "weight_decay": 0.0},
    ]
    lr = hparams["learning_rate"]
    if name == "sgd":
        return torch.optim.SGD(groups, lr=lr)
    if name == "momentum":
        return torch.optim.SGD(groups, lr=lr, momentum=hparams["momentum"])
    if name == "adagrad":
        return torch.optim.Adagrad(groups, lr=lr, initial_accumulator_value=0.0, eps=1e-10)
    if name == "adam":
        return torch.optim.Adam(groups, lr=lr, betas=(0.9, 0.999), eps=1e-8)
    raise ValueError(f"no PyTorch twin of optimizer {name!r}")


def cosine_factor(total_steps: int):
    """optax.cosine_decay_schedule(1, total_steps): update u is scaled by this(u)."""
    return lambda u: 0.5 * (1.0 + math.cos(math.pi * min(u, total_steps) / total_steps))


def torch_sweep(
    torch: Any, runs: list[SweepRun], results: Mapping[str, Any], source: str, device: str
) -> dict[str, Any]:
    """`runs` trained one after another the homework's way on `source`'s splits (loaded here:
    part of the time), as the sweep `results` trained them; per optimizer the test accuracy
    of its final models. Returns those and "torch_s", the seconds it all took."""
    start = time.perf_counter()
    mnist = mnist_data.load_mnist(source)
    (x, y), (vx, vy), (tx, ty) = (
        torch_tensors(torch, s.images, s.labels, nchw=False, device=device) for s in mnist
    )
    batch, model_record = int(results["batch_size"]), results["model"]
    steps = len(y) // batch
    weight_decay = float(results["lam"]) / len(y)
    tested: dict[str, list[float]] = {}
    for i, run in enumerate(runs, 1):
        print(
            f"sweep (PyTorch): run {i}/{len(runs)}, {run.optimizer} {run.stage} seed "
            f"{run.seed}, {run.epochs} epoch(s), {time.perf_counter() - start:.0f} s so far",
            file=sys.stderr,
        )
        torch.manual_seed(run.seed)
        model = sweep_mlp(torch, model_record["layers"], model_record["activation"]).to(device)
        opt = sweep_optimizer(torch, run.optimizer, dict(run.hparams), model, weight_decay)
        scheduler = None
        if results.get("schedule") == "cosine":
            factor = cosine_factor(int(results["epochs"]) * steps)
            scheduler = torch.optim.lr_scheduler.LambdaLR(opt, factor)
        for _ in range(run.epochs):
            torch_epoch(torch, model, opt, x, y, batch_size=batch, scheduler=scheduler)
            torch_accuracy(torch, model, vx, vy)  # the per-epoch validation
        if run.tested:
            tested.setdefault(run.optimizer, []).append(torch_accuracy(torch, model, tx, ty))
    synchronize(torch, device)
    return {
        "torch_s": time.perf_counter() - start,
        "torch_test_accuracy": tested,
    }


def measure_sweep(
    case: Any, torch: Any, images: np.ndarray, labels: np.ndarray, plan: Plan
) -> dict[str, Any]:
    """The sweep by `plan.sweep` (its defaults; `plan.sweep_epochs` epochs if given; its
    --quick smoke run with `plan.quick`) on `plan.data`, timed with its compile part; its runs
    derived and checked against its log; the same runs in PyTorch (`torch_sweep`), timed."""
    if plan.sweep is None:
        raise ValueError("the sweep case needs plan.sweep (the command line provides it)")
    own_dir = plan.workdir is None
    workdir = Path(tempfile.mkdtemp(prefix="hw5jax-sweep-")) if own_dir else plan.workdir
    assert workdir is not None
    source, synthetic_file = plan.data, None
    if plan.data == "synthetic":
        synthetic_file = workdir / "sweep_data.pkl.gz"
        source = write_synthetic(synthetic_file, QUICK_SIZES if plan.quick else SYNTHETIC_SIZES)
    run_dir = workdir / RUN_DIR
    try:
        with compile_clock() as compile_events:
            start = time.perf_counter()
            results = plan.sweep(run_dir, source, plan.sweep_epochs, plan.quick)
            hw5jax_s = time.perf_counter() - start
        runs = sweep_runs(results)
        check_runs(runs, logged_runs(run_dir / METRICS_FILE))
        if not own_dir:
            shutil.copyfile(run_dir / "results.json", workdir / RESULTS)
        shutil.rmtree(run_dir)
        print(f"sweep: {len(runs)} runs, PyTorch one after another", file=sys.stderr)
        torch_side = (
            torch_sweep(torch, runs, results, source, plan.device) if torch is not None else None
        )
    finally:
        if synthetic_file is not None:
            synthetic_file.unlink(missing_ok=True)
        if own_dir:
            shutil.rmtree(workdir, ignore_errors=True)
    compile_s = sum(compile_events.values())
    torch_s = None if torch_side is None else torch_side["torch_s"]
    optimizers = {}
    for name, entry in results["optimizers"].items():
        mine = [r for r in runs if r.optimizer == name]
        torch_test = [] if torch_side is None else torch_side["torch_test_accuracy"].get(name, [])
        optimizers[name] = {
            "runs": len(mine),
            "run_epochs": sum(r.epochs for r in mine),
            "selected": entry.get("selected"),
            "hw5jax_test_accuracy_mean": entry.get("test_accuracy_mean"),
            "torch_test_accuracy": torch_test,
            "torch_test_accuracy_mean": float(np.mean(torch_test)) if torch_test else None,
        }
    return {
        "hw5jax_s": hw5jax_s,
        "torch_s": torch_s,
        "ratio": torch_s / hw5jax_s if torch_s else None,
        "ratio_range": None,  # one run of each side
        "hw5jax_first_call_s": None,
        "compile_s": compile_s,
        "compile_events_s": {k.rsplit("/", 1)[-1]: v for k, v in compile_events.items()},
        "hw5jax_all_s": [hw5jax_s],
        "torch_all_s": [] if torch_s is None else [torch_s],
        "steps": int(results["data"]["train"]) // int(results["batch_size"]),
        "runs": len(runs),
        "run_epochs": sum(r.epochs for r in runs),
        "tested_runs": sum(r.tested for r in runs),
        "runs_checked": f"against the sweep's {METRICS_FILE}",
        "sweep_epochs": int(results["epochs"]),
        "grid_epochs": int(results["grid_epochs"]),
        "prune_at": results.get("prune_at"),
        "seeds": list(results["seeds"]),
        "schedule": results.get("schedule"),
        "sweep_quick": bool(plan.quick),
        "sweep_results": None if own_dir else RESULTS,
        "optimizers": optimizers,
    }
