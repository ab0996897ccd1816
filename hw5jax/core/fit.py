"""The one training loop of the project: epochs of `hw5jax.core.train.Trainer` over MNIST,
for one run (`fit`) or a stack of runs as one vmapped program (`fit_grid`: a learning-rate
grid or a set of seeds), validation after every epoch, per-epoch checkpoints in a `Store`
that the caller opens (the loop knows nothing of run directories). A final model is evaluated
by `accuracy_on`, or `probabilities_on` for its class probabilities (e.g. to average over an
ensemble; `accuracy_of` scores the argmax).

    trainer = Trainer(partial(MLP, activation="relu"), "adam")
    result = fit(trainer, mnist, {"learning_rate": 1e-3}, seed=0, epochs=30)
    result.history["val_accuracy"]            # one value per epoch
    results = fit_grid(trainer, mnist, [{"learning_rate": lr} for lr in grid], seeds=[0]*6)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import jax
import jax.numpy as jnp
import numpy as np

from hw5jax.core.augment import View, view
from hw5jax.core.optim import full_hparams
from hw5jax.core.sharding import runs_mesh, shard_runs, to_host
from hw5jax.core.train import State, Trainer, as_float
from hw5jax.data import MNIST, Split


@dataclass
class FitResult:
    """One run: final state, per-epoch history, and whether it diverged (NaN/inf)."""

    state: State
    hparams: dict[str, float]
    seed: int
    history: dict[str, list[float]] = field(default_factory=dict)
    diverged: bool = False

    @property
    def epochs(self) -> int:
        """Epochs trained (fewer than asked if successive halving stopped the run)."""
        return len(self.history.get("val_accuracy", []))


def device_split(
    split: Split, sharding: jax.sharding.Sharding | None = None
) -> tuple[jax.Array, jax.Array]:
    """A split's arrays on the device (replicated over `sharding`'s mesh if given)."""
    return jax.device_put((split.images, split.labels), sharding)


OnEpoch = Callable[[int, State, dict[str, np.ndarray]], None]


class Store(Protocol):
    """Where one program's per-epoch checkpoints go; the training loop knows nothing else of
    them. The experiment layer passes `hw5jax.runs.store.ProgramStore` (orbax, on disk); the
    loop closes every store it is given."""

    def latest(self, like: State) -> tuple[State, dict[str, Any]] | None:
        """(state shaped like `like`, its record) of the latest saved epoch, or None."""
        ...

    def save(self, epoch: int, state: State, record: Mapping[str, Any]) -> None:
        """Keep `state` and `record` (the history so far, which runs stayed finite)."""
        ...

    def close(self) -> None:
        """Wait for pending writes; raise if one failed."""
        ...


# Called after each epoch, once its checkpoint is saved: a safe place to stop, so it may
# raise (e.g. KeyboardInterrupt after a Ctrl-C that `hw5jax.runs.rundir.RunDir` deferred).
StopCheck = Callable[[], None]
# Keys of the per-epoch history (each [epochs, runs]).
HISTORY = ("train_cost", "val_accuracy")


def _segment(
    epoch_fn,
    evaluate_fn,
    state: State,
    data: MNIST,
    start: int,
    stop: int,
    on_epoch: OnEpoch | None,
    data_sharding: jax.sharding.Sharding | None = None,
    store: Store | None = None,
    stop_check: StopCheck | None = None,
) -> tuple[State, dict[str, np.ndarray], np.ndarray]:
    """Epochs start+1..stop of a program (one run, or a stack): a scanned pass over
    `data.train`, then validation. With `store`, the state and the history so far are
    checkpointed after every epoch, and a call finding checkpoints there continues from the
    latest (a finished segment only restores). An empty `data.val` (nothing held out, e.g.
    training on train+val) is not evaluated: its "val_accuracy" entries are NaN. Returns the
    state, the history of these epochs ({key: array [stop - start, ...]}) and which runs
    stayed finite."""
    history: dict[str, list] = {k: [] for k in HISTORY}
    finite = np.ones(np.shape(state["step"]), bool)
    ckpt = store
    try:
        if ckpt is not None and (saved := ckpt.latest(like=state)) is not None:
            state, record = saved
            history = {k: [np.asarray(v) for v in record["history"][k]] for k in HISTORY}
            finite = np.asarray(record["finite"], bool)
            start = record["epoch"]
            if on_epoch is not None and history["val_accuracy"]:
                on_epoch(start, state, {k: v[-1] for k, v in history.items()} | {"finite": finite})
        train_x, train_y = device_split(data.train, data_sharding)
        has_val = len(data.val.labels) > 0  # nothing held out (train+val): not evaluated
        if has_val:
            val_x, val_y = device_split(data.val, data_sharding)
        for epoch in range(start + 1, stop + 1):
            state, metrics = epoch_fn(state, train_x, train_y)
            cost = to_host(metrics["train_cost"])
            history["train_cost"].append(cost)
            history["val_accuracy"].append(
                to_host(evaluate_fn(state, val_x, val_y)["accuracy"])
                if has_val
                else np.full(cost.shape, np.nan, np.float32)
            )
            finite = finite & to_host(metrics["finite"])
            if ckpt is not None:
                ckpt.save(epoch, state, {"history": history, "finite": finite})
            if on_epoch is not None:
                on_epoch(epoch, state, {k: v[-1] for k, v in history.items()} | {"finite": finite})
            if stop_check is not None:
                stop_check()
    finally:
        if ckpt is not None:
            ckpt.close()
    return state, {k: np.stack(v) for k, v in history.items()}, finite


def _take(state: State, rows: Sequence[int]) -> State:
    idx = np.asarray(rows)
    return jax.tree.map(lambda leaf: leaf[idx], state)


def _with_rows(on_epoch: OnEpoch, rows: np.ndarray) -> OnEpoch:
    """`on_epoch` told which run each row of the stack is (metrics["run"])."""
    return lambda epoch, state, metrics: on_epoch(epoch, state, {**metrics, "run": rows})


def fit_grid(
    trainer: Trainer,
    data: MNIST,
    hparams: Sequence[Mapping[str, float]],
    seeds: Sequence[int],
    epochs: int,
    *,
    on_epoch: OnEpoch | None = None,
    mesh: jax.sharding.Mesh | None | str = "auto",
    keep: tuple[int, int] | None = None,
    store: Callable[[str], Store] | None = None,
    stop_check: StopCheck | None = None,
) -> list[FitResult]:
    """Train len(seeds) runs at once (run i: `hparams[i]`, `seeds[i]`) as one vmapped program.

    Each epoch: one scanned pass over `data.train`, then validation accuracy. A run whose cost
    or parameters become NaN/inf is marked diverged; it never stops the others.
    `on_epoch(epoch, stacked_state, metrics)` is called after each epoch (1-based epoch;
    metrics are numpy arrays with one entry per row of the stack: "run" is each row's index
    into `hparams`/`seeds`, -1 for a padding row).

    keep=(e, k): successive halving. After epoch e only the k runs with the best validation
    accuracy (diverged runs last; ties to the earlier run) train on to `epochs`; the others
    stop there (their FitResult has e epochs of history and their state after epoch e).
    With several devices k is rounded up to fill them (a padding slot would cost as much).

    With several devices (`mesh="auto"`: `runs_mesh()`), the stack of runs is sharded over
    them (padded with copies of its first run to a multiple of the device count; the copies
    are dropped); `mesh=None` keeps everything on one device.

    store: opens the `Store` of one segment of the program, by name ("part0", and "part1"
    after a successive-halving cut); a call interrupted at any point and repeated with the
    same stores continues from the latest and returns the same results.
    stop_check: called after every epoch (see `StopCheck`).
    """
    if len(hparams) != len(seeds):
        raise ValueError(f"{len(hparams)} hparam sets for {len(seeds)} seeds")
    mesh = runs_mesh() if isinstance(mesh, str) else mesh  # "auto"
    size = 1 if mesh is None else mesh.size
    n = len(seeds)
    full = [full_hparams(trainer.optimizer, hp) for hp in hparams]
    stops = [epochs]
    if keep is not None and 0 < keep[0] < epochs and -(-keep[1] // size) * size < n:
        stops = [keep[0], epochs]
        keep_count = max(1, -(-keep[1] // size) * size)
    epoch_fn = trainer.epoch_shared if len(set(seeds)) == 1 else trainer.epoch_many

    alive = list(range(n))  # runs of the current segment, by index into hparams/seeds
    history: list[dict[str, list[float]]] = [{k: [] for k in HISTORY} for _ in range(n)]
    finite = np.ones(n, bool)
    states: dict[int, State] = {}
    state = trainer.init_many(seeds, full)
    start = 0
    for part, stop in enumerate(stops):
        if part > 0:  # successive halving: the best `keep_count` runs go on
            score = [history[i]["val_accuracy"][-1] if finite[i] else -np.inf for i in alive]
            ranked = sorted(range(len(alive)), key=lambda j: (-score[j], j))
            survivors = sorted(ranked[:keep_count])
            for j in set(range(len(alive))) - set(survivors):
                states[alive[j]] = _take(state, [j])
            state = _take(state, survivors)
            alive = [alive[j] for j in survivors]
        pad = (-len(alive)) % size
        padded = _take(state, [*range(len(alive)), *[0] * pad]) if pad else state
        padded, data_sharding = shard_runs(padded, mesh)
        rows = np.asarray([*alive, *[-1] * pad])
        padded, seg, seg_finite = _segment(
            epoch_fn,
            trainer.evaluate_many,
            padded,
            data,
            start,
            stop,
            None if on_epoch is None else _with_rows(on_epoch, rows),
            data_sharding,
            None if store is None else store(f"part{part}"),
            stop_check,
        )
        state = _take(padded, range(len(alive))) if pad else padded
        for j, i in enumerate(alive):
            for k in HISTORY:
                history[i][k] += seg[k][:, j].tolist()
            finite[i] &= bool(seg_finite[j])
        start = stop
    for j, i in enumerate(alive):
        states[i] = _take(state, [j])
    return [
        FitResult(
            state=jax.tree.map(lambda leaf: leaf[0], states[i]),
            hparams=full[i],
            seed=int(seeds[i]),
            history=history[i],
            diverged=not finite[i],
        )
        for i in range(n)
    ]


def fit(
    trainer: Trainer,
    data: MNIST,
    hparams: Mapping[str, float],
    *,
    seed: int = 0,
    epochs: int,
    on_epoch: OnEpoch | None = None,
    store: Store | None = None,
    stop_check: StopCheck | None = None,
) -> FitResult:
    """Train one run (not vmapped): the same arithmetic as one entry of `fit_grid`.
    store: per-epoch checkpoints (see `Store`); a repeated call with a store over the same
    place continues from the latest. stop_check: called after every epoch."""
    full = full_hparams(trainer.optimizer, hparams)
    state = trainer.init_jit(jnp.uint32(seed), {k: jnp.float32(v) for k, v in full.items()})
    state, history, finite = _segment(
        trainer.epoch_jit,
        trainer.evaluate_jit,
        state,
        data,
        0,
        epochs,
        on_epoch,
        store=store,
        stop_check=stop_check,
    )
    return FitResult(
        state, full, seed, {k: v.tolist() for k, v in history.items()}, diverged=not bool(finite)
    )


def accuracy_on(
    trainer: Trainer, state: State, split: Split, views: tuple[View, ...] | None = None
) -> float:
    """Accuracy of one trained state on a split (used once per final model, on test);
    `views`: test-time augmentation (see `Trainer.evaluate`)."""
    x, y = device_split(split)
    return float(trainer.evaluate_jit(state, x, y, views=views)["accuracy"])


def _probabilities(
    trainer: Trainer, state: State, images: jax.Array, views: tuple[View, ...] | None
) -> jax.Array:
    """float[n, classes]: `Trainer.evaluate`'s predictions as probabilities, in the same
    chunks (the last one zero-padded, the padding dropped)."""
    n = images.shape[0]
    chunk = min(trainer.eval_batch_size, n)
    pad = (-n) % chunk
    x = jnp.pad(images, [(0, pad)] + [(0, 0)] * (images.ndim - 1))

    def logits_of(xb):
        return trainer.apply(trainer.eval_params(state), state["model_state"], xb, train=False)[0]

    def one(xb):
        xb = as_float(xb)
        if views is None:
            return jax.nn.softmax(logits_of(xb))
        # the mean softmax over the views, through its log as `Trainer.evaluate` takes it
        log_mean = jax.nn.logsumexp(
            jnp.stack([jax.nn.log_softmax(logits_of(view(xb, v))) for v in views]), axis=0
        ) - jnp.log(len(views))
        return jnp.exp(log_mean)

    probs = jax.lax.map(one, x.reshape((-1, chunk) + x.shape[1:]))
    return probs.reshape((n + pad, -1))[:n]


# Compiled once per Trainer (hashed by identity) and per views and input shape.
_probabilities_jit = jax.jit(_probabilities, static_argnames=("trainer", "views"))


def probabilities_on(
    trainer: Trainer, state: State, split: Split, views: tuple[View, ...] | None = None
) -> np.ndarray:
    """Class probabilities float32[n, classes] of one trained state on a split: the softmax
    of the plain forward pass, or with `views` the mean softmax over them (the averaging of
    `accuracy_on`). For ensembles: average these over models, then take the argmax."""
    images = jax.device_put(split.images)
    return np.asarray(_probabilities_jit(trainer, state, images, views=views))


def accuracy_of(probs: np.ndarray, labels: np.ndarray) -> float:
    """Accuracy of the argmax of `probs` [n, classes], as `Trainer.evaluate` computes it (the
    float32 quotient of correct over n, so one model's `probabilities_on` and `accuracy_on`
    give the same number)."""
    correct = np.sum(np.argmax(probs, axis=-1) == np.asarray(labels))
    return float(np.float32(correct) / np.float32(len(labels)))
