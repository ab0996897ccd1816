"""What one training run computes: pure, jitted steps; an epoch is one `lax.scan`. The loop
that drives them (`fit`, `fit_grid`) is `hw5jax.core.fit`.

    trainer = Trainer(partial(MLP, activation="relu"), "adam")
    state = trainer.init_jit(jnp.uint32(0), {"learning_rate": jnp.float32(1e-3)})
    state, metrics = trainer.epoch_jit(state, images, labels)

State is a plain pytree (big_vision style):
    {"params": nnx.State, "model_state": nnx.State (BatchNorm statistics, if any),
     "opt_state": optax state (its .hyperparams hold learning rate etc.),
     "step": int32[], "rng": uint32[2]}
so the same functions run one model (`jax.jit`) or a stack of runs (`jax.jit(jax.vmap(...))`):
a learning-rate grid or a set of seeds is one compiled program. The data stay on the device
as uint8; each step gathers its batch by index and scales it to [0, 1].

The cost is Nielsen's: mean cross-entropy + lam/(2n) * sum of squared weights (kernels only,
n = training-set size), so plain SGD decays each weight by (1 - eta*lam/n) per step.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from hw5jax.core.augment import Augment, View, view
from hw5jax.core.optim import full_hparams, make_optimizer

State = dict[str, Any]
Metrics = dict[str, jax.Array]


def _is_kernel(path) -> bool:
    return any(getattr(k, "key", getattr(k, "name", None)) == "kernel" for k in path)


def l2_penalty(params: Any) -> jax.Array:
    """Sum of squared weights (kernels; not biases or BatchNorm scales)."""
    leaves = [
        leaf for path, leaf in jax.tree_util.tree_leaves_with_path(params) if _is_kernel(path)
    ]
    return sum((jnp.sum(jnp.square(w)) for w in leaves), jnp.zeros((), jnp.float32))


def permutation(key: jax.Array, n: int) -> jax.Array:
    """`jax.random.permutation(key, n)`: the same array, about 4x faster on CPU for
    n <= 2**16 (50,000 training images: 8 ms against 37 ms, 10% of an MLP epoch).

    jax shuffles `arange(n)` by sorting it on random uint32 keys, a stable key-value sort,
    in ceil(3 ln n / ln(2**32 - 1)) rounds (2 for 50,000). XLA:CPU runs a key-value sort
    through a compiled comparator called per comparison (~18 ms per round here) but sorts
    a single integer array natively (~3.5 ms). So each round here is a stable radix sort in
    two 16-bit digits, each digit one single-array sort of (digit << 16 | position): the
    low halves first, then the high halves. Larger n falls back to jax's own. Tested equal
    to `jax.random.permutation` (`tests/test_train.py`): a change in jax's algorithm fails
    that test, not silently the shuffles.
    """
    if n > 2**16:
        return jax.random.permutation(key, n)
    x = jnp.arange(n, dtype=jnp.int32)
    position = jnp.arange(n, dtype=jnp.uint32)
    rounds = int(np.ceil(3 * np.log(max(1, n)) / np.log(np.iinfo(np.uint32).max)))
    for _ in range(rounds):
        key, subkey = jax.random.split(key)
        keys = jax.random.bits(subkey, (n,), jnp.uint32)
        by_low = jax.lax.sort((keys & 0xFFFF) << 16 | position) & 0xFFFF
        by_high = jax.lax.sort(keys[by_low] >> 16 << 16 | position) & 0xFFFF
        x = x[by_low[by_high]]
    return x


def as_float(images: jax.Array) -> jax.Array:
    """uint8 pixels -> float32 in [0, 1]."""
    return images.astype(jnp.float32) / 255.0


class Trainer:
    """Everything static about a training run: model, optimizer (by name), batch size, L2,
    augmentation, label smoothing, learning-rate schedule, weight averaging.
    Hyperparameter *values* (learning rate, momentum) and the seed are data, given to
    `init`, so one compiled program serves a whole grid.

    schedule: step -> factor multiplying every update (e.g. `optax.cosine_decay_schedule(1.0,
    total_steps)`), on top of the learning rate in the optimizer state.
    ema_decay: keep an exponential moving average of the parameters (Polyak averaging);
    evaluation then uses the average, training the raw parameters.
    """

    def __init__(
        self,
        model_fn: Callable[..., nnx.Module],
        optimizer: str,
        *,
        batch_size: int = 128,
        lam: float = 0.0,
        n_train: int = 50_000,
        augment: Augment | None = None,
        label_smoothing: float = 0.0,
        schedule: optax.Schedule | None = None,
        ema_decay: float | None = None,
        eval_batch_size: int = 2_000,
    ):
        self.model_fn = model_fn
        self.optimizer = optimizer
        self.schedule = schedule
        self.ema_decay = ema_decay
        self.tx = self.make_tx({})  # its update reads hyperparams from the state
        self.batch_size = batch_size
        self.lam = lam
        self.n_train = n_train
        self.augment = augment
        self.label_smoothing = label_smoothing
        self.eval_batch_size = eval_batch_size
        abstract = nnx.eval_shape(lambda: model_fn(rngs=nnx.Rngs(0)))
        self.graphdef = nnx.split(abstract, nnx.Param, ...)[0]
        # Compiled once per Trainer (and per input shape); vmapped twins for grids/seeds.
        self.init_jit = jax.jit(self.init)
        self.epoch_jit = jax.jit(self.epoch, donate_argnums=0)
        self.epoch_many = jax.jit(jax.vmap(self.epoch, in_axes=(0, None, None)), donate_argnums=0)
        # Runs that share a seed (a grid) share every batch: drawing the order once, outside
        # the vmap, turns each run's matmul into one wide matmul over the whole grid.
        self.epoch_shared = jax.jit(
            lambda stack, x, y: jax.vmap(self.epoch, in_axes=(0, None, None, None))(
                stack, x, y, stack["rng"][0]
            ),
            donate_argnums=0,
        )
        self.evaluate_jit = jax.jit(self.evaluate, static_argnames="views")
        self.evaluate_many = jax.jit(jax.vmap(self.evaluate, in_axes=(0, None, None)))

    def init_many(self, seeds: Sequence[int], hparams: Sequence[Mapping[str, float]]) -> State:
        """A stack of fresh runs (run i: `seeds[i]`, `hparams[i]`), each made by the one
        compiled `init` and stacked: the same arrays as `jax.vmap(init)`, without compiling a
        vmapped initialiser for every stack size (that took seconds per program)."""
        runs = [
            self.init_jit(jnp.uint32(seed), {k: jnp.float32(v) for k, v in hp.items()})
            for seed, hp in zip(seeds, hparams, strict=True)
        ]
        return jax.tree.map(lambda *leaves: jnp.stack(leaves), *runs)

    def abstract_state(self) -> State:
        """Shapes and dtypes of a state (no arrays allocated): the target for restoring a
        checkpoint with `hw5jax.runs.checkpoint.restore(path, like=trainer.abstract_state())`."""
        hparams = {k: jnp.float32(v) for k, v in full_hparams(self.optimizer, {}).items()}
        return jax.eval_shape(self.init, jnp.uint32(0), hparams)

    # ------------------------------------------------------------------ pure functions

    def make_tx(self, hparams: Mapping[str, Any]) -> optax.GradientTransformation:
        tx = make_optimizer(self.optimizer, **hparams)
        if self.schedule is not None:
            tx = optax.chain(tx, optax.scale_by_schedule(self.schedule))
        return tx

    def init(self, seed: jax.Array, hparams: Mapping[str, jax.Array]) -> State:
        """A fresh run: parameters from `seed`, optimizer state carrying `hparams`."""
        init_key, rng = jax.random.split(jax.random.PRNGKey(seed))
        model = self.model_fn(rngs=nnx.Rngs(init_key))
        _, params, model_state = nnx.split(model, nnx.Param, ...)  # type: ignore[misc]
        state = {
            "params": params,
            "model_state": model_state,
            "opt_state": self.make_tx(hparams).init(params),
            "step": jnp.zeros((), jnp.int32),
            "rng": rng,
        }
        if self.ema_decay is not None:
            state["ema"] = jax.tree.map(jnp.copy, params)
        return state

    def eval_params(self, state: State):
        """The parameters evaluation uses: the running average if there is one."""
        return state.get("ema", state["params"])

    def apply(
        self, params, model_state, images: jax.Array, *, train: bool, key: jax.Array | None = None
    ) -> tuple[jax.Array, Any]:
        """logits float[B, 10] and the model state after the call (BatchNorm updates it in
        training mode only)."""
        model = nnx.merge(self.graphdef, params, model_state, copy=True)
        rngs = nnx.Rngs(dropout=key) if key is not None else None
        logits = model(images, train=train, rngs=rngs)
        return logits, nnx.split(model, nnx.Param, ...)[2]  # type: ignore[misc]

    def cost(self, params, model_state, images, labels, key) -> tuple[jax.Array, Any]:
        """Training cost of one batch: C0 (cross-entropy) + lam/(2n) sum w^2."""
        logits, model_state = self.apply(params, model_state, images, train=True, key=key)
        if self.label_smoothing:
            targets = optax.smooth_labels(
                jax.nn.one_hot(labels, logits.shape[-1]), self.label_smoothing
            )
            c0 = optax.softmax_cross_entropy(logits, targets).mean()
        else:
            c0 = optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()
        if self.lam:
            c0 = c0 + self.lam / (2 * self.n_train) * l2_penalty(params)
        return c0, model_state

    def train_step(
        self, state: State, images: jax.Array, labels: jax.Array, key: jax.Array
    ) -> tuple[State, jax.Array]:
        """One optimizer step on a batch (uint8 images). Returns (new state, batch cost)."""
        aug_key, dropout_key = jax.random.split(key)
        x = as_float(images)
        if self.augment is not None:
            x = self.augment(aug_key, x)
        (cost, model_state), grads = jax.value_and_grad(self.cost, has_aux=True)(
            state["params"], state["model_state"], x, labels, dropout_key
        )
        updates, opt_state = self.tx.update(grads, state["opt_state"], state["params"])
        params = optax.apply_updates(state["params"], updates)
        new = {
            **state,
            "params": params,
            "model_state": model_state,
            "opt_state": opt_state,
            "step": state["step"] + 1,
        }
        if self.ema_decay is not None:
            new["ema"] = optax.incremental_update(params, state["ema"], 1.0 - self.ema_decay)
        return new, cost

    def epoch(
        self, state: State, images: jax.Array, labels: jax.Array, key: jax.Array | None = None
    ) -> tuple[State, Metrics]:
        """One pass over shuffled training data, as one `lax.scan` of `train_step`.

        images: uint8[N, 28, 28, 1], labels: int32[N]; the last N % batch_size examples of
        each shuffle are left out of that epoch (a different few every epoch).
        `key` stands in for `state["rng"]` when it is known to hold the same value (see
        `epoch_shared`); the arithmetic is the same either way.
        Metrics: mean training cost over the epoch, and whether all parameters are finite.
        """
        n = images.shape[0]
        steps = n // self.batch_size
        rng, perm_key, step_key = jax.random.split(state["rng"] if key is None else key, 3)
        if key is not None:
            # The same value, computed from this run's own key: a sharded stack of runs then
            # gets its next keys back sharded as they came (from the shared key they would
            # come back replicated, and the next epoch would compile a second program).
            rng = jax.random.split(state["rng"], 3)[0]
        order = permutation(perm_key, n)[: steps * self.batch_size]
        order = order.reshape(steps, self.batch_size)

        def body(state, xs):
            idx, i = xs
            return self.train_step(state, images[idx], labels[idx], jax.random.fold_in(step_key, i))

        state, costs = jax.lax.scan(body, {**state, "rng": rng}, (order, jnp.arange(steps)))
        finite = jnp.all(
            jnp.array([jnp.all(jnp.isfinite(p)) for p in jax.tree.leaves(state["params"])])
        )
        return state, {"train_cost": costs.mean(), "finite": finite & jnp.isfinite(costs).all()}

    def evaluate(
        self,
        state: State,
        images: jax.Array,
        labels: jax.Array,
        views: tuple[View, ...] | None = None,
    ) -> Metrics:
        """Accuracy and mean cross-entropy in evaluation mode (BatchNorm running averages),
        in chunks of `eval_batch_size` (the last one zero-padded and masked).

        views: test-time augmentation, e.g. `hw5jax.core.augment.TTA_VIEWS["shift1rot5"]`: the
        prediction is the mean of the softmax over the warped copies of each image, and the
        cost is the cross-entropy of that mean. None: one plain forward pass (the logits).
        """
        n = images.shape[0]
        chunk = min(self.eval_batch_size, n)
        pad = (-n) % chunk
        x = jnp.pad(images, [(0, pad)] + [(0, 0)] * (images.ndim - 1))
        y = jnp.pad(labels, (0, pad))
        mask = jnp.arange(n + pad) < n

        def logits_of(xb):
            return self.apply(self.eval_params(state), state["model_state"], xb, train=False)[0]

        def one(xs):
            xb, yb, mb = xs
            xb = as_float(xb)
            if views is None:
                logits = logits_of(xb)
                ce = optax.softmax_cross_entropy_with_integer_labels(logits, yb)
            else:
                # log of the mean softmax, as a logsumexp (no log(0) when a view's softmax
                # underflows).
                logits = jax.nn.logsumexp(
                    jnp.stack([jax.nn.log_softmax(logits_of(view(xb, v))) for v in views]), axis=0
                ) - jnp.log(len(views))
                ce = -jnp.take_along_axis(logits, yb[:, None], axis=-1)[:, 0]
            return (jnp.sum((logits.argmax(-1) == yb) & mb), jnp.sum(jnp.where(mb, ce, 0.0)))

        shape = (-1, chunk)
        correct, ce = jax.lax.map(
            one, (x.reshape(shape + x.shape[1:]), y.reshape(shape), mask.reshape(shape))
        )
        return {"accuracy": correct.sum() / n, "cost": ce.sum() / n}
