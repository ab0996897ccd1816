"""Problem 5.2 end to end: a CNN recipe trained in JAX (`run_cnn_mnist`), the homework's
recipe trained in PyTorch (`run_cnn_torch`) and the checkpoints of `cnn_mnist` runs evaluated
again, plain and with test-time augmentation, one by one and optionally as one ensemble
(`run_cnn_eval`). Each claims its output directory, trains (resumably, one stage per seed) or
evaluates, and writes its report.
"""

from __future__ import annotations

import functools
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import optax
from tqdm import tqdm

from hw5jax import data as mnist_data
from hw5jax.configs.cnn import (
    HOMEWORK_TEST_ACCURACY,
    QUICK_SIZES,
    CNNConfig,
    EvalConfig,
    TorchCNNConfig,
)
from hw5jax.core.augment import make_augment, tta_views
from hw5jax.core.fit import accuracy_of, accuracy_on, fit, probabilities_on
from hw5jax.core.optim import full_hparams
from hw5jax.core.train import Trainer
from hw5jax.errors import ConfigError
from hw5jax.kernels.conv import resolve
from hw5jax.models.cnn import CNN
from hw5jax.pipelines.common import finished, prepare
from hw5jax.reference.pytorch import TORCH_INSTALL, import_torch, torch_tensors, train_cnn
from hw5jax.reporting.cnn import report, write_eval_report
from hw5jax.reporting.progress import Progress
from hw5jax.runs import checkpoint
from hw5jax.runs.files import output_dir, write_file
from hw5jax.runs.metrics import MetricsLog, step_size
from hw5jax.runs.rundir import stamp, stop_point
from hw5jax.runs.store import ProgramStore

# Evaluation in chunks of 250 images: the im2col patches of 2,000 (the MLP's chunk) take
# 1.25 GB; 10,000 test images took 4.7 s in chunks of 2,000, 2.8-3.5 s in chunks of 250
# (probes on the idle machine).
EVAL_BATCH_SIZE = 250
TORCH_LABEL = "homework (PyTorch)"


def make_trainer(hp: dict[str, Any], n_train: int, conv: str = "xla") -> Trainer:
    """A Trainer for one recipe (`hp` as returned by `CNNConfig.hparams`, or as a checkpoint's
    metadata records it). `conv`: the convolutions that run, "xla" or "onednn" (resolved;
    the parameters are the same either way)."""
    model_fn = functools.partial(
        CNN,
        tuple(hp["channels"]),
        tuple(hp["hidden"]),
        batch_norm=hp["batch_norm"],
        dropout=hp["dropout"],
        weight_init=hp["weight_init"],
        normalize=hp["normalize"],
        conv=conv,
    )
    schedule = None
    if hp["schedule"] == "cosine":
        total = hp["epochs"] * (n_train // hp["batch_size"])
        schedule = optax.warmup_cosine_decay_schedule(
            0.0, 1.0, warmup_steps=max(1, total // 10), decay_steps=total, end_value=0.0
        )
    return Trainer(
        model_fn,
        "adam",
        batch_size=hp["batch_size"],
        n_train=n_train,
        augment=make_augment(hp["max_shift"], hp["max_degrees"]),
        label_smoothing=hp["label_smoothing"],
        schedule=schedule,
        ema_decay=hp["ema_decay"] or None,
        eval_batch_size=EVAL_BATCH_SIZE,
    )


def eval_views(hp: dict[str, Any]) -> tuple | None:
    """The views of the recipe's final evaluation; None: the plain forward pass."""
    name = hp.get("tta", "none")
    return None if name == "none" else tta_views(name)


def training_data(
    mnist: mnist_data.MNIST, record: dict, *, quick: bool, train_on: str
) -> tuple[mnist_data.MNIST, dict, int]:
    """The splits a CNN run uses: with `quick` the first QUICK_SIZES images of each; with
    train_on "train+val" the validation images moved into training (none held out). Returns
    (the splits, `record` with their sizes, the number of validation images before the
    move)."""
    if quick:
        mnist = mnist_data.subset(mnist, QUICK_SIZES)
    n_val = len(mnist.val.labels)
    if train_on == "train+val":
        mnist = mnist_data.merge_val_into_train(mnist)
    return mnist, {**record, **mnist_data.describe(mnist)}, n_val


def run_cnn_mnist(config: CNNConfig) -> dict:
    """Train the config's recipe for each seed (checkpointed every epoch, resumable), test
    it, save OUT/checkpoints/<recipe>_seed<k>/ and the report. Returns the results."""
    start = time.perf_counter()
    requested = config
    config = config.effective()
    hp = config.hparams()
    conv = resolve(config.conv or "auto")  # --conv onednn where it cannot run: nothing written
    # bad input: nothing written; the recipe's values are stamped, not only the overrides
    mnist, data_record, run_dir = prepare(config, "cnn_mnist", {"hparams": hp})
    if (done := finished(run_dir)) is not None:
        return done
    mnist, data_record, n_val = training_data(
        mnist, data_record, quick=requested.quick, train_on=config.train_on
    )
    held_out = config.train_on == "train"
    out = run_dir.path
    trainer = make_trainer(hp, n_train=len(mnist.train.labels), conv=conv)
    seeds = list(range(config.first_seed, config.first_seed + config.seeds))
    sizes = step_size(trainer)
    optimizer_hparams = full_hparams(trainer.optimizer, {"learning_rate": hp["learning_rate"]})

    def train_seed(seed: int, progress: Progress, log: MetricsLog) -> dict:
        """One seed, checkpointed every epoch (OUT/state/seed<k>/), each epoch a line of
        OUT/metrics.jsonl, tested once, saved."""
        t0 = time.perf_counter()
        runs = [{"run": 0, "seed": seed, "hparams": optimizer_hparams}]

        def on_epoch(epoch: int, _state, metrics: dict) -> None:
            progress(f"cnn_mnist {config.recipe}: seed {seed}", epoch, metrics)
            seconds = time.perf_counter() - t0
            log.program_epoch(
                f"seed {seed}", epoch, {**metrics, "runs": runs, "seconds": seconds}, sizes
            )

        result = fit(
            trainer,
            mnist,
            {"learning_rate": hp["learning_rate"]},
            seed=seed,
            epochs=hp["epochs"],
            store=ProgramStore(run_dir.state / f"seed{seed}"),
            stop_check=stop_point,
            on_epoch=on_epoch,
        )
        # Test with the recipe's test-time augmentation, if any (validation: the plain
        # forward pass of every epoch; `experiments.cnn_eval` compares the two on both).
        acc = (
            None
            if config.no_test
            else accuracy_on(trainer, result.state, mnist.test, eval_views(hp))
        )
        checkpoint.save(
            out / "checkpoints" / f"{config.recipe}_seed{seed}",
            result.state,
            {
                "experiment": "cnn_mnist",
                "recipe": config.recipe,
                "hparams": hp,
                "seed": seed,
                "val_accuracy": result.history["val_accuracy"][-1] if held_out else None,
                "test_accuracy": acc,
                "diverged": result.diverged,
            },
        )
        # Training + per-epoch validation + test, in this invocation (a resumed seed: the
        # rest).
        return {
            "test": acc,
            "seconds": time.perf_counter() - t0,
            "history": result.history,
            "diverged": result.diverged,
        }

    log = MetricsLog(out, "cnn_mnist", tensorboard=config.tensorboard)
    with run_dir, Progress(len(seeds) * hp["epochs"], f"cnn_mnist {config.recipe}") as bar, log:
        done_seeds = [
            run_dir.stage(
                f"seed{seed}",
                functools.partial(train_seed, seed, bar, log),
                on_skip=lambda: bar.skip(hp["epochs"]),
            )
            for seed in seeds
        ]
    return report(
        out,
        done_seeds,
        {
            "experiment": "cnn_mnist",
            "recipe": config.recipe,
            "epochs": hp["epochs"],
            "hparams": hp,
            "conv": conv,
            "data": data_record,
            "seeds": seeds,
            "quick": requested.quick,
            "diverged": [d["diverged"] for d in done_seeds],
        },
        start=start,
        homework_test_accuracy=HOMEWORK_TEST_ACCURACY,
        n_val=n_val,
        held_out=held_out,
        tested=not config.no_test,
        label=config.recipe,
        name=f"CNN ({config.recipe} recipe)",
    )


def run_cnn_torch(config: TorchCNNConfig) -> dict:
    """Train the homework's recipe in PyTorch for each seed (a seed interrupted trains again
    on resume), save OUT/checkpoints/homework_seed<k>.pt and the report (cnn_mnist's keys,
    plus "framework" and "threads"). Returns the results."""
    start = time.perf_counter()
    torch = import_torch(config.threads)
    if torch is None:
        raise ConfigError(f"torch is not installed; this command needs it: `{TORCH_INSTALL}`")
    requested, config = config, config.effective()
    hp = config.hparams()
    mnist, data_record, run_dir = prepare(config, "cnn_torch", {"hparams": hp})
    if (done := finished(run_dir)) is not None:
        return done
    mnist, data_record, n_val = training_data(
        mnist, data_record, quick=requested.quick, train_on=config.train_on
    )
    held_out = config.train_on == "train"
    data = [
        torch_tensors(torch, s.images, s.labels, nchw=True, normalize=hp["normalize"])
        for s in mnist
    ]
    seeds = list(range(config.first_seed, config.first_seed + config.seeds))
    out = run_dir.path

    log = MetricsLog(out, "cnn_torch", tensorboard=config.tensorboard)
    with run_dir, Progress(len(seeds) * hp["epochs"], "cnn_torch") as bar, log:

        def one(seed: int) -> dict:
            t0 = time.perf_counter()
            # torch.optim.Adam's lr: constant (no schedule in the homework's recipe)
            runs = [{"run": 0, "seed": seed, "hparams": {"learning_rate": hp["learning_rate"]}}]

            def on_epoch(epoch: int, acc: float, cost: float) -> None:
                metrics = {"val_accuracy": [acc], "train_cost": [cost]}
                bar(f"cnn_torch: seed {seed}", epoch, metrics)
                seconds = time.perf_counter() - t0
                log.program_epoch(
                    f"seed {seed}",
                    epoch,
                    {**metrics, "runs": runs, "seconds": seconds},
                    lambda hparams, _epoch: hparams["learning_rate"],
                )
                stop_point()  # Ctrl-C: stop here; this seed trains again on resume

            record = train_cnn(torch, hp, data, seed, on_epoch)
            weights = record.pop("model").state_dict()
            (out / "checkpoints").mkdir(exist_ok=True)
            write_file(
                out / "checkpoints" / f"homework_seed{seed}.pt", lambda f: torch.save(weights, f)
            )
            return record

        done_seeds = [
            run_dir.stage(
                f"seed{s}", functools.partial(one, s), on_skip=lambda: bar.skip(hp["epochs"])
            )
            for s in seeds
        ]
    return report(
        out,
        done_seeds,
        {
            "experiment": "cnn_torch",
            "recipe": TORCH_LABEL,
            "framework": f"torch {torch.__version__}, eager, CPU",
            "threads": torch.get_num_threads(),
            "epochs": hp["epochs"],
            "hparams": hp,
            "data": data_record,
            "seeds": seeds,
            "quick": requested.quick,
        },
        start=start,
        homework_test_accuracy=HOMEWORK_TEST_ACCURACY,
        n_val=n_val,
        held_out=held_out,
        tested=True,
        label=TORCH_LABEL,
        name="the homework CNN in PyTorch",
    )


def _seed_of(path: Path) -> int:
    return int(path.name.rsplit("_seed", 1)[1])


def checkpoints_of(run: Path) -> list[Path]:
    """The run's final checkpoints (RUN/checkpoints/<recipe>_seed<k>), by seed."""
    found = [
        p
        for p in (run / "checkpoints").iterdir()
        if "_seed" in p.name
        and p.name.rsplit("_seed", 1)[1].isdigit()
        and checkpoint.is_checkpoint(p)
    ]
    if not found:
        raise ConfigError(f"{run}: no <recipe>_seed<k> checkpoints in {run / 'checkpoints'}")
    return sorted(found, key=_seed_of)


def _members(runs: list[Path]) -> list[tuple[Path, dict]]:
    """Every final checkpoint of `runs` (in the order given, each run's by seed) with its
    metadata. Two with the same seed and the same hyperparameters are a ConfigError (the
    same model twice, e.g. one run given twice)."""
    found = []
    seen: dict[tuple[int, str], Path] = {}
    for run in runs:
        for path in checkpoints_of(run):
            meta = checkpoint.read_metadata(path)
            key = (meta["seed"], json.dumps(meta["hparams"], sort_keys=True))
            if key in seen:
                raise ConfigError(
                    f"{path}: seed {meta['seed']} with the same hyperparameters as {seen[key]} "
                    "(give each checkpoint once)"
                )
            seen[key] = path
            found.append((path, meta))
    return found


def _summary(values: list[float | None]) -> dict:
    present = [v for v in values if v is not None]
    if len(present) < len(values):
        return {"per_seed": None, "mean": None, "std": None}
    return {"per_seed": present, "mean": float(np.mean(present)), "std": float(np.std(present))}


def _ensemble(rows: list[dict], probs: list[dict], mnist: mnist_data.MNIST) -> dict:
    """results.json's "ensemble": the accuracy of the argmax of the members' mean
    probabilities, plain and with the views; validation None when a member trained on it."""
    result: dict[str, Any] = {
        "members": [r["seed"] for r in rows],
        "checkpoints": [r["checkpoint"] for r in rows],
    }
    for name in ("plain", "with_tta"):
        accuracy: dict[str, float | None] = {}
        for split in ("val", "test"):
            member_probs = [p[name][split] for p in probs]
            accuracy[f"{split}_accuracy"] = (
                None
                if any(m is None for m in member_probs)
                else accuracy_of(np.mean(member_probs, axis=0), getattr(mnist, split).labels)
            )
        result[name] = {**accuracy, "seconds_per_member": [p[name]["seconds"] for p in probs]}
    return result


def run_cnn_eval(config: EvalConfig) -> dict:
    """Restore every checkpoint of the config's runs and measure its validation (null for a
    run trained on train+val) and test accuracy, plain and with the views of `config.tta`;
    with `config.ensemble` also the ensemble of them all (the argmax of the mean of their
    probabilities). Writes OUT/run.json, results.json and table.md. Returns the results."""
    start = time.perf_counter()
    runs = [Path(r) for r in config.runs]
    members = _members(runs)  # bad input: refused before anything is written
    mnist = mnist_data.load_mnist(config.data)
    views = tta_views(config.tta)
    # Either convolution evaluates a checkpoint (the same parameters): oneDNN's where built.
    conv = resolve("auto")
    out = output_dir(config.out, "cnn_eval")
    stamp(out, "cnn_eval", config)
    rows = []
    probs: list[dict] = []  # with --ensemble, per checkpoint: {name: {split: [n, 10] | None}}
    trainers: dict[str, Trainer] = {}  # one per recipe: its evaluation compiles once
    with tqdm(total=len(members), unit="seed", desc="cnn_eval", file=sys.stderr) as bar:
        for path, meta in members:
            hp = meta["hparams"]  # says how to build the trainer
            key = json.dumps(hp, sort_keys=True)
            if key not in trainers:
                trainers[key] = make_trainer(hp, n_train=len(mnist.train.labels), conv=conv)
            trainer = trainers[key]
            state, _ = checkpoint.restore(path, like=trainer.abstract_state())
            held_out = hp.get("train_on", "train") == "train"
            row = {"seed": meta["seed"], "checkpoint": str(path)}
            member: dict = {}
            for name, v in (("plain", None), ("with_tta", views)):
                t0 = time.perf_counter()
                row[name] = {
                    "val": accuracy_on(trainer, state, mnist.val, v) if held_out else None,
                    "test": accuracy_on(trainer, state, mnist.test, v),
                }
                row[name]["seconds"] = time.perf_counter() - t0
                if config.ensemble:
                    t0 = time.perf_counter()
                    member[name] = {
                        "val": probabilities_on(trainer, state, mnist.val, v) if held_out else None,
                        "test": probabilities_on(trainer, state, mnist.test, v),
                    }
                    member[name]["seconds"] = time.perf_counter() - t0
            rows.append(row)
            probs.append(member)
            bar.update(1)
            bar.set_postfix_str(
                f"seed {row['seed']}: test {row['plain']['test']:.4f} -> "
                f"{row['with_tta']['test']:.4f}"
            )
    results: dict[str, Any] = {
        "experiment": "cnn_eval",
        **({"run": str(runs[0])} if len(runs) == 1 else {}),
        "runs": [str(r) for r in runs],
        "tta": config.tta,
        "conv": conv,
        "views": [list(v) for v in views],
        "seeds": [r["seed"] for r in rows],
        "data": {"source": config.data, **mnist_data.describe(mnist)},
        **{
            name: {
                "val_accuracy": _summary([r[name]["val"] for r in rows]),
                "test_accuracy": _summary([r[name]["test"] for r in rows]),
                "seconds_per_seed": [r[name]["seconds"] for r in rows],
            }
            for name in ("plain", "with_tta")
        },
        "checkpoints": [r["checkpoint"] for r in rows],
    }
    if config.ensemble:
        results["ensemble"] = _ensemble(rows, probs, mnist)
    results["wall_seconds"] = time.perf_counter() - start
    return write_eval_report(out, results)
