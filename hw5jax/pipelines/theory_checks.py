"""Problems 1, 2 and 5.1, end to end: measure every claim (`hw5jax.theory`), train the two
parts that need MNIST (1.2, and 2.3 on the MLP) through `hw5jax.core.fit`, then write
results.json, one PNG per figure and theory.md (the answer key).

    code = run(TheoryConfig(out="runs/theory"), argv)   # 0, or 1 if a check fails

The heuristic the homework asks to *assess* (1.2(c)'s "weights tail off around 1/sqrt(n)", in
two readings, over --l2-seeds seeds) is reported with its honest verdict but does not decide
the exit code. --quick runs on the first QUICK_SIZES images with the smaller QUICK_MEASURE
sizes (`hw5jax.configs.theory`). A bad --data fails
before anything is measured or written.
"""

from __future__ import annotations

import functools
import sys
import time

import jax
import numpy as np
from tqdm import tqdm

from hw5jax.configs.theory import QUICK_SIZES, TheoryConfig
from hw5jax.runs.files import output_dir, save_figure, write_json, write_text
from hw5jax.runs.rundir import stamp
from hw5jax.theory import (
    conv_backprop,
    hyperparameter_gradients,
    momentum,
    sigmoid_gain,
    unstable_gradients,
)
from hw5jax.theory.answer_key import render_answer_key, table_cell
from hw5jax.theory.checks import Check, is_heuristic
from hw5jax.theory.figures import all_figures
from hw5jax.theory.l2_decay import L2DecaySeeds, analyse_l2_decay, check_l2_decay
from hw5jax.theory.momentum import MomentumMLPResult, check_momentum_mlp

ORDER = ("1.1", "1.2", "2.1", "2.2", "2.3", "5.1")  # of the checks in results.json


def _kernels(params) -> list[np.ndarray]:
    """The weight matrices of an MLP's parameter state (what L2 penalises)."""
    return [
        np.asarray(leaf)
        for path, leaf in jax.tree_util.tree_leaves_with_path(params)
        if any(getattr(k, "key", None) == "kernel" for k in path)
    ]


def _bar(total: int, desc: str) -> tqdm:
    return tqdm(total=total, desc=desc, unit="epoch", file=sys.stderr, leave=False)


def train_l2_decay(
    mnist, config: TheoryConfig, eta: float = 0.5, lam: float = 5.0, m: int = 10
) -> L2DecaySeeds:
    """Problem 1.2 in Nielsen's setting (N(0, 1) weights, plain SGD with L2), for seeds
    config.seed .. config.seed + config.l2_seeds - 1 in one vmapped program: the weights
    recorded after every epoch, analysed by `analyse_l2_decay` (one result per seed)."""
    from hw5jax.core.fit import fit_grid
    from hw5jax.core.optim import full_hparams
    from hw5jax.core.train import Trainer
    from hw5jax.models.mlp import MLP

    n = len(mnist.train.labels)
    trainer = Trainer(
        functools.partial(
            MLP, layers=config.l2_layers, activation="sigmoid", weight_init="standard"
        ),
        "sgd",
        batch_size=m,
        lam=lam,
        n_train=n,
    )
    seeds = [config.seed + i for i in range(config.l2_seeds)]
    hparams = [{"learning_rate": eta}] * len(seeds)
    # The same initial states `fit_grid` starts from (same seeds, same hyperparameters).
    state0 = trainer.init_many(seeds, [full_hparams("sgd", hp) for hp in hparams])
    weights = [_kernels(state0["params"])]  # per epoch: matrices stacked over seeds
    bar = _bar(config.l2_epochs, f"1.2 L2 from N(0,1) init ({len(seeds)} seeds)")

    def on_epoch(epoch, state, metrics):
        weights.append(_kernels(state["params"]))
        bar.update()

    runs = fit_grid(
        trainer,
        mnist,
        hparams,
        seeds=seeds,
        epochs=config.l2_epochs,
        on_epoch=on_epoch,
    )
    bar.close()
    return L2DecaySeeds(
        seeds=tuple(seeds),
        runs=tuple(
            analyse_l2_decay(
                [[w[i] for w in ws] for ws in weights],
                eta,
                lam,
                n,
                m,
                config.l2_layers,
                run.history["val_accuracy"],
            )
            for i, run in enumerate(runs)
        ),
    )


def train_momentum_mlp(
    mnist, config: TheoryConfig, mus: tuple[float, ...] = (1.1, -0.5, 0.0, 0.9)
) -> MomentumMLPResult:
    """Problem 2.3 on the sweep's MLP (784-100-100-10, sigmoid): the four mu in one vmapped
    program, per-epoch training cost and the diverged flag of each."""
    from hw5jax.core.fit import fit_grid
    from hw5jax.core.train import Trainer
    from hw5jax.models.mlp import MLP

    layers = (784, 100, 100, 10)
    trainer = Trainer(
        functools.partial(MLP, layers=layers, activation="sigmoid"),
        "momentum",
        batch_size=128,
        n_train=len(mnist.train.labels),
    )
    bar = _bar(config.mlp_epochs, "2.3 momentum on the MLP")
    runs = fit_grid(
        trainer,
        mnist,
        [{"learning_rate": config.mlp_eta, "momentum": mu} for mu in mus],
        seeds=[config.seed] * len(mus),
        epochs=config.mlp_epochs,
        on_epoch=lambda *_: bar.update(),
    )
    bar.close()
    return MomentumMLPResult(
        eta=config.mlp_eta,
        epochs=config.mlp_epochs,
        layers=layers,
        n_train=len(mnist.train.labels),
        mus=tuple(mus),
        train_cost={
            mu: [float(c) for c in r.history["train_cost"]] for mu, r in zip(mus, runs, strict=True)
        },
        diverged={mu: r.diverged for mu, r in zip(mus, runs, strict=True)},
    )


def measure_all(mnist, config: TheoryConfig) -> tuple[dict, dict[str, list[Check]]]:
    """Every part, in the order that front-loads the cheap ones: (results, checks), keyed by
    problem ("2.3mlp": 2.3 on the MLP, whose checks join `checks["2.3"]`). The measure
    functions are looked up on their modules when called (tests replace them there)."""
    seed = config.seed
    opts = config.measure_options
    stages = [
        (
            "2.2",
            lambda: sigmoid_gain.measure_sigmoid_gain(**opts("2.2")),
            sigmoid_gain.check_sigmoid_gain,
        ),
        (
            "2.1",
            lambda: unstable_gradients.measure_unstable_gradients(seed=seed, **opts("2.1")),
            unstable_gradients.check_unstable_gradients,
        ),
        (
            "2.3",
            lambda: momentum.measure_momentum_quadratic(**opts("2.3")),
            momentum.check_momentum_quadratic,
        ),
        (
            "5.1",
            lambda: conv_backprop.measure_conv_backprop(seed=seed, **opts("5.1")),
            conv_backprop.check_conv_backprop,
        ),
        (
            "1.1",
            lambda: hyperparameter_gradients.measure_hypergradients(seed=seed, **opts("1.1")),
            hyperparameter_gradients.check_hypergradients,
        ),
        ("1.2", lambda: train_l2_decay(mnist, config), check_l2_decay),
        ("2.3mlp", lambda: train_momentum_mlp(mnist, config), check_momentum_mlp),
    ]
    results: dict = {}
    checks: dict[str, list[Check]] = {}
    with tqdm(stages, desc="theory checks", unit="part", file=sys.stderr) as bar:
        for key, measure, check in bar:
            bar.set_postfix_str(key)
            results[key] = measure()
            checks[key] = check(results[key])
    checks["2.3"] = checks["2.3"] + checks.pop("2.3mlp")
    return results, checks


def run(config: TheoryConfig, argv: list[str]) -> int:
    """The whole experiment; `argv` is the command line as given (quoted in theory.md).
    Prints one line per check and a summary on stderr, the results.json path on stdout;
    returns 1 if any check (heuristics aside) fails, else 0."""
    from hw5jax.data import load_mnist, subset

    config = config.effective()
    mnist = load_mnist(config.data)  # bad --data fails before anything is computed or written
    if config.quick:
        mnist = subset(mnist, QUICK_SIZES)
    out = output_dir(config.out, "theory_checks")
    stamp(out, "theory_checks", config)
    start = time.perf_counter()
    results, checks = measure_all(mnist, config)
    for name, fig in all_figures(results).items():
        save_figure(fig, out / name)

    flat = [c for key in ORDER for c in checks[key]]
    wall = time.perf_counter() - start
    write_json(
        out / "results.json",
        {
            "experiment": "theory_checks",
            "checks": [c.as_dict() for c in flat],
            "wall_seconds": round(wall, 2),
        },
    )
    write_text(out / "theory.md", render_answer_key(results, checks, argv, wall))

    failed = [c for c in flat if not c.passed and not is_heuristic(c)]
    heuristic = [c for c in flat if not c.passed and is_heuristic(c)]
    for c in flat:
        mark = "ok  " if c.passed else ("HEUR" if is_heuristic(c) else "FAIL")
        print(f"{mark} {c.problem:9s} {c.name}: measured {table_cell(c.measured)}", file=sys.stderr)
    print(
        f"{len(flat) - len(failed) - len(heuristic)}/{len(flat)} checks passed, "
        f"{len(heuristic)} heuristic(s) do not hold, {len(failed)} failed; "
        f"{wall:.0f} s",
        file=sys.stderr,
    )
    print(out / "results.json")
    return 1 if failed else 0
