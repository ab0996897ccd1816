"""theory.md, the answer key to Problems 1, 2 and 5.1: `answer_key.md.j2` rendered with Jinja2.

The template holds the prose; this module hands it the measured results and the few numbers
derived from them (spreads, medians, the tail-off epoch, ...), never formatted text.

    text = render_answer_key(results, checks, argv, wall_seconds)
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import jinja2
import numpy as np

from hw5jax.theory.checks import Check, is_heuristic
from hw5jax.theory.hyperparameter_gradients import HypergradientResult
from hw5jax.theory.l2_decay import (
    L2DecayResult,
    L2DecaySeeds,
    decay_per_epoch,
    tail_levels,
    tail_off_epoch,
)
from hw5jax.theory.momentum import (
    MomentumMLPResult,
    MomentumQuadraticResult,
    blow_up,
    polyak_optimum,
)
from hw5jax.theory.unstable_gradients import first_vs_last

TEMPLATE = "answer_key.md.j2"


def table_cell(value: Any) -> str:
    """One value as a markdown table cell (and as the summary line shows it): floats to six
    significant digits, anything else as text with its `|` escaped."""
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value).replace("|", "\\|")


def sign_change(r: HypergradientResult) -> tuple[float, float]:
    """Problem 1.1(ii): the grid interval of λ where d(validation)/dλ first changes sign."""
    i = np.flatnonzero(np.diff(np.sign(r.d_val)) != 0)
    return (float(r.lams[i[0]]), float(r.lams[i[0] + 1])) if i.size else (math.nan, math.nan)


def final_costs(r: MomentumMLPResult) -> list[tuple[float, float | None]]:
    """Problem 2.3 on the MLP: (mu, last epoch's training cost), None where the run diverged
    (`momentum.blow_up`: non-finite, or a 10x rise)."""
    return [
        (mu, None if blow_up(r.train_cost[mu], r.diverged[mu])[0] else r.train_cost[mu][-1])
        for mu in r.mus
    ]


def held(checks: dict[str, list[Check]], key: str, *names: str) -> bool:
    """Whether every named check of `checks[key]` passed (the template's verdicts come from
    here, never from fixed text). An unknown name is an error, not a silent False."""
    by_name = {c.name: c for c in checks[key]}
    missing = [n for n in names if n not in by_name]
    if missing:
        raise KeyError(f"no check {missing} under {key}")
    return all(by_name[n].passed for n in names)


def answer_key_values(
    results: dict, checks: dict[str, list[Check]], argv: list[str], wall_seconds: float
) -> dict[str, Any]:
    """What the template reads: each problem's result (keyed by its name in the template) and
    the numbers derived from them. `results` and `checks` are keyed by problem ("1.1", ...,
    "2.3mlp" for 2.3 on the MLP; `checks["2.3"]` holds both halves of 2.3)."""
    hyper: HypergradientResult = results["1.1"]
    l2_runs: L2DecaySeeds = results["1.2"]
    l2: L2DecayResult = l2_runs.primary
    quadratic: MomentumQuadraticResult = results["2.3"]
    chain = results["2.1"]
    conv = results["5.1"]
    exact, approx = decay_per_epoch(l2.eta, l2.lam, l2.n, l2.m)
    tail = tail_off_epoch(l2)
    polyak_mu, polyak_rate = polyak_optimum(quadratic.kappa)
    above_one = (quadratic.mus[:, None] > 1) & (quadratic.eta_hs[None, :] > 0)
    return {
        "command": ("python -m experiments.theory_checks " + " ".join(argv)).strip(),
        "wall_seconds": wall_seconds,
        "checks": checks,
        "held": lambda key, *names: held(checks, key, *names),
        "check": lambda key, name: {c.name: c for c in checks[key]}[name],
        # Problem 1.1
        "hyper": hyper,
        "smallest_train_hypergradient": min(hyper.d_train_C.min(), hyper.d_train_C0.min()),
        "sign_change": sign_change(hyper),
        "plain_gd_spread": float(np.ptp(hyper.eta_descent_final[hyper.betas == 0][0])),
        "eta_descent_spread": float(
            np.ptp(hyper.eta_descent_final[hyper.betas >= 0.05], axis=1).max()
        ),
        "working_betas": [float(b) for b in hyper.betas[hyper.betas >= 0.05]],
        # Problem 1.2
        "l2": l2,
        "l2_epochs": len(l2.rms) - 1,
        "decay_exact": exact,
        "decay_approx": approx,
        "shrink": list(l2.rms[1:] / l2.rms[:-1]),  # a list: Jinja tests truth
        "early_deviation_percent": 100
        * float(np.max(np.abs(l2.rms[1:3] / l2.rms[:2] / approx - 1))),
        "tail": tail,
        "level": l2.rms[tail] if tail is not None else l2.rms[-1],
        "target": 1 / math.sqrt(l2.n_weights),
        "l2_seeds": list(l2_runs.seeds),
        "levels": tail_levels(l2_runs),
        "layer_seed_levels": [
            {
                "index": i + 1,
                "rms": float(lv.layer_level[:, i].mean()),
                "init": float(lv.layer_target[i]),
                "low": float(lv.layer_ratio[:, i].min()),
                "high": float(lv.layer_ratio[:, i].max()),
            }
            for lv in [tail_levels(l2_runs)]
            for i in range(len(lv.layer_target))
        ],
        "per_layer_closer": bool(
            tail_levels(l2_runs).layer_ratio.max() < tail_levels(l2_runs).ratio.min()
        ),
        "output_layer_grows": bool(
            l2.layer_rms[tail if tail is not None else -1, -1] > l2.layer_rms[0, -1]
        ),
        # Problem 2.1
        "chain": chain,
        "first_vs_last_log10": first_vs_last(chain.vanish_log10_grad)[0],
        "explode_first_vs_last_log10": first_vs_last(chain.explode_log10_grad)[0],
        "explode_factor": math.exp(chain.explode_log_factor),
        "explode_expected": math.exp(chain.explode_log_factor_expected),
        # Problem 2.2
        "gain": results["2.2"],
        "width_bs": list(map(float, results["2.2"].width_b)),
        # Problem 2.3
        "quadratic": quadratic,
        "rho_min_above_one": quadratic.rho[above_one].min(),
        "plain_gd_rate": (quadratic.kappa - 1) / (quadratic.kappa + 1),
        "polyak_mu": polyak_mu,
        "polyak_rate": polyak_rate,
        "mlp": results["2.3mlp"],
        "mlp_final_costs": final_costs(results["2.3mlp"]),
        # Problem 5.1
        "conv": conv,
        "homework_median_error": np.median(conv.homework_rel_err),
        "overwrite_median_error": np.median(conv.overwrite_rel_err[conv.shared_argmax]),
    }


def environment() -> jinja2.Environment:
    """The Jinja2 environment of the answer key: no HTML escaping (it is markdown), undefined
    names are errors, `fmt` is Python's format(value, spec), `cell` is `table_cell`."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(Path(__file__).parent),
        autoescape=False,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["fmt"] = format
    env.filters["cell"] = table_cell
    env.filters["layer_text"] = lambda d: (
        f"layer {d['index']}: RMS {d['rms']:.3f} vs {d['init']:.3f} "
        f"(×{d['low']:.1f}–{d['high']:.1f})"
    )
    env.tests["heuristic"] = is_heuristic
    return env


def render_answer_key(
    results: dict, checks: dict[str, list[Check]], argv: list[str], wall_seconds: float
) -> str:
    """theory.md for this run: `argv` as given on the command line, `wall_seconds` its time."""
    template = environment().get_template(TEMPLATE)
    return template.render(answer_key_values(results, checks, argv, wall_seconds))


def theory_parts(markdown: str) -> dict[str, dict[str, Any]]:
    """theory.md split by problem: {"1.1": {"text", "figures"}, "1.2(a)": ...}. A problem
    with parts ("**(a) ...") gives each part its paragraphs (the first part also the
    problem's preamble, the last its figures). Tables and claim lists are left out (the page
    shows the checks from results.json)."""
    parts: dict[str, dict[str, Any]] = {}
    for block in re.split(r"^## Problem ", markdown, flags=re.M)[1:]:
        number = block.split()[0]
        lines = block.splitlines()[1:]
        kept = _without_check_tables(lines)
        figures = re.findall(r"`([\w.-]+\.png)`", block)
        text = "\n".join(kept)
        pieces = re.split(r"^(?=\*\*\([a-c]\))", text, flags=re.M)
        if len(pieces) == 1:
            parts[number] = {"text": text.strip(), "figures": figures}
            continue
        preamble, subparts = pieces[0], pieces[1:]
        for i, piece in enumerate(subparts):
            key = f"{number}({piece[3]})"
            body = (preamble if i == 0 else "") + "\n\n" + piece
            last = i == len(subparts) - 1
            parts[key] = {"text": body.strip(), "figures": figures if last else []}
    return parts


def _without_check_tables(lines: list[str]) -> list[str]:
    """theory.md's lines less each checks table, the list of claims after it and the
    "Figure(s): ..." lines."""
    kept: list[str] = []
    skipping = None  # None, "table", "gap" (blank lines after it), "claims"
    for line in lines:
        if line.startswith("| check |"):
            skipping = "table"
        if skipping == "table" and not line.startswith("|"):
            skipping = "gap"
        if skipping == "gap" and line.strip():
            skipping = "claims" if line.startswith("- *") else None
        if skipping == "claims" and not line.strip():
            skipping = None
        if skipping is None and not line.startswith("Figure"):
            kept.append(line)
    return kept
