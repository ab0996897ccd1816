"""The answer key's sections, one per problem: the homework's answer beside ours (tables and
figures read from the results files) and a verdict computed from them. Nothing here types a
number of ours: each comes from a results.json (or theory.md, written from one); each verdict
is computed from the checks' `passed` fields and the measured values.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from hw5jax.configs import homework as hw
from hw5jax.reporting import page
from hw5jax.reporting.optimizers import format_hparams
from hw5jax.runs.results import ROOT, Result

WEIGHTS_README = ROOT / "weights" / "README.md"
Found = Mapping[str, Result | None]


# ------------------------------------------------------------------------- formatting


def pct(x: float | None, digits: int = 2) -> str:
    return "—" if x is None else f"{100 * x:.{digits}f}%"


def pm(values: Iterable[float]) -> str:
    """Mean ± population std of accuracies, in percent."""
    v = np.asarray(list(values), dtype=float)
    return f"{100 * v.mean():.2f}% ± {100 * v.std():.2f} ({len(v)} seed{'s' * (len(v) != 1)})"


def seeds_text(values: Iterable[float]) -> str:
    return ", ".join(f"{100 * v:.2f}" for v in values)


def verdict(kind: str, text: str) -> dict[str, str]:
    """kind: agrees | partly | disagrees | fails | not-checkable | not-run."""
    return {"kind": kind, "text": text}


def provenance_line(result: Result) -> str:
    p = result.provenance
    v = p.get("versions") or {}
    stack = ", ".join(f"{k} {v[k]}" for k in ("jax", "flax", "optax", "torch") if v.get(k))
    commit = (p.get("git_commit") or "unknown")[:10]
    date = (p.get("finished_utc") or "")[:10]
    wall = p.get("wall_seconds")
    wall_text = f"{wall:.0f} s" if isinstance(wall, (int, float)) else "wall time unknown"
    cpu = f"{p.get('cpu')}, {p.get('cores')} core{'s' * (p.get('cores') != 1)}"
    return f"{p.get('command')} · commit {commit} · {stack} · {cpu} · {date} · {wall_text}"


def figure(result: Result, name: str, caption: str = "") -> dict[str, Any]:
    return {"entry": result.entry.name, "name": name, "path": result.file(name), "caption": caption}


# ------------------------------------------------------------------- the theory problems


def _checks_of(theory: Result, problem: str) -> list[dict]:
    return [
        c
        for c in theory.results["checks"]
        if c["problem"] == problem or c["problem"].startswith(f"{problem}(")
    ]


def cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, dict):
        return ", ".join(f"{k}: {cell(v)}" for k, v in value.items())
    return str(value)


def _all_pass(checks: list[dict]) -> str:
    return "its one check passes" if len(checks) == 1 else f"all {len(checks)} checks pass"


def theory_verdict(
    checks: list[dict], against: tuple[str, ...] = (), against_kind: str = "partly"
) -> dict[str, str]:
    """From the checks' `passed` fields: a failing check is a failure of ours to confirm the
    result; a failing heuristic (a check named "... (heuristic)") is the homework's heuristic
    not holding; a passing check of `against` shows the homework wrong (`against_kind`: in
    part or altogether); otherwise the homework's answer is confirmed."""
    if not checks:
        return verdict("not-checkable", "no check of this problem in the results")
    failed = [
        c["name"] for c in checks if not c["passed"] and not c["name"].endswith("(heuristic)")
    ]
    heuristic = [c["name"] for c in checks if not c["passed"] and c["name"].endswith("(heuristic)")]
    contrary = [c["name"] for c in checks if c["passed"] and c["name"] in against]
    passed = sum(c["passed"] for c in checks)
    if failed:
        return verdict(
            "fails",
            f"{len(failed)} of {len(checks)} checks fail ({'; '.join(failed)}): the answer is "
            "not confirmed by this run",
        )
    if heuristic:
        return verdict(
            "disagrees",
            f"{passed} of {len(checks)} checks pass; the homework's heuristic does not hold: "
            f"{'; '.join(heuristic)}",
        )
    if contrary:
        return verdict(
            against_kind,
            f"{_all_pass(checks)}, and these show the homework's answer wrong"
            f"{' in part' if against_kind == 'partly' else ''}: {'; '.join(contrary)}",
        )
    return verdict("agrees", _all_pass(checks))


def theory_section(problem: hw.Problem, found: Found, parts: Mapping[str, dict]) -> dict:
    theory = found["theory_checks"]
    if theory is None:
        return {}
    checks = _checks_of(theory, problem.id)
    part = parts.get(problem.id, {"text": "", "figures": []})
    rows = [
        [
            c["name"],
            cell(c["expected"]),
            cell(c["measured"]),
            cell(c["tolerance"]),
            "pass"
            if c["passed"]
            else "does not hold"
            if c["name"].endswith("(heuristic)")
            else "FAIL",
        ]
        for c in checks
    ]
    return {
        "ours_html": page.markdown(part["text"]),
        "tables": [
            {
                "caption": "The checks (results.json)",
                "headers": ["check", "expected", "measured", "tolerance", "verdict"],
                "rows": rows,
            }
        ],
        "figures": [figure(theory, name) for name in part["figures"]],
        "verdict": theory_verdict(checks, problem.against, problem.against_kind),
    }


# ------------------------------------------------------------------ the trained problems


def trained_rows(entries: Mapping[str, Mapping]) -> tuple[list[list[str]], dict[str, float]]:
    """Per entry of a sweep (optimizer or variant): [name, selected, mean ± std, per seed],
    or a "diverged" row; and the mean test accuracy of each entry that trained."""
    rows, means = [], {}
    for name, entry in entries.items():
        if entry.get("selected") is None:
            rows.append([name, "every grid point diverged", "—", ""])
            continue
        means[name] = entry["test_accuracy_mean"]
        acc = entry["test_accuracy"]
        rows.append([name, format_hparams(entry["selected"]), pm(acc), seeds_text(acc)])
    return rows, means


def optimizers_section(found: Found) -> dict:
    sweep = found["optim_sweep"]
    if sweep is None:
        return {}
    rows, means = trained_rows(sweep.results["optimizers"])
    for row in rows:
        setting, theirs = hw.OPTIMIZERS.get(row[0], ("—", None))
        row += [setting, pct(theirs)]
    best = max(means, key=means.__getitem__) if means else None
    if best is None:
        found_verdict = verdict("fails", "every optimizer diverged")
    elif best == hw.BEST_OPTIMIZER:
        found_verdict = verdict("agrees", f"{best} has the best mean test accuracy here too")
    else:
        found_verdict = verdict(
            "disagrees",
            f"best here: {best} ({pct(means[best])} mean); {hw.BEST_OPTIMIZER}: "
            f"{pct(means.get(hw.BEST_OPTIMIZER))}; the homework picked {hw.BEST_OPTIMIZER}",
        )
    return {
        "tables": [
            {
                "caption": "Selected on validation, tested once per seed (ours); the homework's",
                "headers": [
                    "optimizer",
                    "selected (ours)",
                    "test, mean ± std (ours)",
                    "per seed, % (ours)",
                    "homework's setting",
                    "homework's test",
                ],
                "rows": rows,
            }
        ],
        "figures": [
            figure(sweep, "train_cost.png", "training cost per epoch"),
            figure(sweep, "val_accuracy.png", "validation accuracy per epoch"),
        ],
        "verdict": found_verdict,
    }


def batchnorm_section(found: Found) -> dict:
    bn = found["batchnorm"]
    if bn is None:
        return {}
    rows, means = trained_rows(bn.results["variants"])
    rows.append(
        [
            "batchnorm (homework's)",
            f"eta = {hw.BATCHNORM['learning_rate']:g}",
            pct(hw.BATCHNORM["test_accuracy"], 1),
            "one run",
        ]
    )
    if {"batchnorm", "plain"} <= set(means):
        gain = means["batchnorm"] - means["plain"]
        if gain > 0:
            found_verdict = verdict(
                "disagrees",
                f"BatchNorm helps here: {100 * gain:+.2f} points of mean test accuracy "
                f"({pct(means['batchnorm'])} against {pct(means['plain'])} without)",
            )
        else:
            found_verdict = verdict(
                "agrees",
                f"BatchNorm does not help here either: {100 * gain:+.2f} points "
                f"({pct(means['batchnorm'])} against {pct(means['plain'])} without)",
            )
    else:
        found_verdict = verdict("fails", "a variant diverged everywhere")
    figures = [figure(bn, p.name) for p in sorted(bn.path.glob("*.png"))]
    return {
        "tables": [
            {
                "caption": "SGD, learning rate retuned on validation for each variant",
                "headers": ["variant", "selected", "test, mean ± std", "per seed, %"],
                "rows": rows,
            }
        ],
        "figures": figures,
        "verdict": found_verdict,
    }


def weights_readme_excerpt(path: Path = WEIGHTS_README) -> str:
    """weights/README.md's section on the real pretrained weights (what to do with them)."""
    text = path.read_text() if path.is_file() else ""
    match = re.search(r"^## The real pretrained weights.*?(?=^## |\Z)", text, flags=re.M | re.S)
    return match.group(0).strip() if match else ""


def alexnet_section(problem: hw.Problem, found: Found) -> dict:
    readout = found["alexnet_readout"]
    if readout is None:
        return {}
    r = readout.results
    weights = r["weights"]
    pretrained = bool(weights.get("pretrained"))
    stand_in = (
        "The weights are a random stand-in (a torchvision-layout AlexNet with random "
        "weights, converted like the real file): shapes and the readout are exact, but the "
        "classes mean nothing."
    )
    images = r["images"]
    out: dict[str, Any] = {"notice": None if pretrained else stand_in}
    if problem.id == "4.1":
        out["tables"] = [
            {
                "caption": "The converted checkpoint",
                "headers": ["source", "sha256", "pretrained"],
                "rows": [
                    [
                        weights.get("source"),
                        (weights.get("sha256") or "")[:16] + "…",
                        str(pretrained),
                    ]
                ],
            }
        ]
        out["ours_html"] = page.markdown(
            "With the real checkpoint (`weights/README.md`):\n\n" + weights_readme_excerpt()
        )
        out["verdict"] = (
            verdict("agrees", "torchvision's pretrained file, converted and verified by sha256")
            if pretrained
            else verdict(
                "not-checkable",
                "the pretrained file cannot be downloaded here: a random stand-in is converted "
                "instead (see weights/README.md for the real one)",
            )
        )
    elif problem.id == "4.2":
        shapes = {tuple(i["conv1_shape"]) for i in images}
        out["tables"] = [
            {
                "caption": "conv1's output per image (channels × height × width)",
                "headers": ["image", "input (H × W × C)", "conv1 output"],
                "rows": [
                    [
                        i["path"],
                        " × ".join(map(str, i["input_shape"])),
                        " × ".join(map(str, i["conv1_shape"])),
                    ]
                    for i in images
                ],
            }
        ]
        out["figures"] = [figure(readout, i["figure"], i["path"]) for i in images]
        theirs = " × ".join(map(str, hw.CONV1_SHAPE))
        ours = "; ".join(" × ".join(map(str, s)) for s in sorted(shapes))
        if shapes == {hw.CONV1_SHAPE}:
            out["verdict"] = verdict("agrees", f"{ours}, as the homework")
        elif {s[0] for s in shapes} == {hw.CONV1_SHAPE[0]}:
            out["verdict"] = verdict(
                "partly",
                f"{hw.CONV1_SHAPE[0]} channels, as the homework (not the prompt's 96), but "
                f"{ours} at a {r['size']} × {r['size']} input, not {theirs}",
            )
        else:
            out["verdict"] = verdict("disagrees", f"ours {ours}; the homework's {theirs}")
    elif problem.id == "4.3":
        dims = sorted({i["final_layer_dim"] for i in images})
        out["tables"] = [
            {
                "caption": "The final layer's size per image",
                "headers": ["image", "final layer"],
                "rows": [[i["path"], str(i["final_layer_dim"])] for i in images],
            }
        ]
        out["verdict"] = (
            verdict("agrees", f"{dims[0]}, one per ImageNet class")
            if dims == [hw.FINAL_LAYER_DIM]
            else verdict("disagrees", f"ours {dims}; the homework's {hw.FINAL_LAYER_DIM}")
        )
    else:  # 4.4
        rows = [
            [i["path"], str(rank + 1), p["name"], f"{100 * p['probability']:.2f}%"]
            for i in images
            for rank, p in enumerate(i["top5"])
        ]
        out["tables"] = [
            {
                "caption": "Top-5 per image",
                "headers": ["image", "rank", "class", "probability"],
                "rows": rows,
            }
        ]
        out["verdict"] = (
            verdict(
                "not-checkable", "whether the classes are right is judged by eye: see the table"
            )
            if pretrained
            else verdict(
                "not-checkable",
                "with random weights the top-5 is meaningless; convert the pretrained file "
                "(4.1) and rerun the readout to check it",
            )
        )
    return out


def cnn_section(found: Found) -> dict:
    rows = [["homework's (PyTorch, one run)", pct(hw.CNN_TEST_ACCURACY), "—", "one run"]]
    seeds: list[float] = []
    for name, label in (
        ("cnn_homework", "homework's recipe (hw5jax)"),
        ("cnn_torch", "homework's recipe (PyTorch twin)"),
        ("cnn_best", "best recipe (hw5jax)"),
    ):
        result = found[name]
        if result is None or result.results.get("test_accuracy") is None:
            continue
        acc = result.results["test_accuracy"]
        if name != "cnn_best":
            seeds += acc
        rows.append([label, pct(result.results["test_accuracy_mean"]), pm(acc), seeds_text(acc)])
    ensemble = found["cnn_ensemble"]
    if ensemble is not None:
        e = ensemble.results["ensemble"]
        n = len(e["members"])
        single = ensemble.results["with_tta"]["test_accuracy"]
        rows.append(
            [
                f"ensemble of {n} seeds, plain (hw5jax)",
                pct(e["plain"]["test_accuracy"]),
                "—",
                f"single seeds: {pm(ensemble.results['plain']['test_accuracy']['per_seed'])}",
            ]
        )
        rows.append(
            [
                f"ensemble of {n} seeds, test-time views (hw5jax)",
                pct(e["with_tta"]["test_accuracy"]),
                "—",
                f"single seeds: {pm(single['per_seed'])}",
            ]
        )
    sweep = found["optim_sweep"]
    mlp = None
    if sweep is not None:
        _, means = trained_rows(sweep.results["optimizers"])
        if means:
            best = max(means, key=means.__getitem__)
            mlp = means[best]
            rows.append([f"the MLP, best optimizer ({best})", pct(mlp), "—", "Problem 3.1"])
    if not seeds:
        return (
            {
                "tables": [
                    {
                        "caption": "Test accuracy",
                        "headers": ["run", "test", "mean ± std", "per seed"],
                        "rows": rows,
                    }
                ]
            }
            if len(rows) > 1
            else {}
        )
    mean = float(np.mean(seeds))
    beats = mlp is not None and mean > mlp
    inside = min(seeds) <= hw.CNN_TEST_ACCURACY <= max(seeds)
    spread = f"our {len(seeds)} seeds of its recipe ({pct(min(seeds))}–{pct(max(seeds))})"
    where = f"within the range of {spread}" if inside else f"outside the range of {spread}"
    claim = (
        f"the CNN beats the MLP ({pct(mean)} against {pct(mlp)})"
        if beats
        else "the CNN does not beat the MLP here"
        if mlp is not None
        else "no MLP result to compare"
    )
    kind = "agrees" if beats and inside else "partly" if beats or inside else "disagrees"
    return {
        "tables": [
            {
                "caption": "Test accuracy (mean over seeds; the homework's is one run)",
                "headers": ["run", "test", "mean ± std", "per seed, %"],
                "rows": rows,
            }
        ],
        "figures": [
            figure(r, p.name)
            for name in ("cnn_homework", "cnn_best")
            if (r := found[name]) is not None
            for p in sorted(r.path.glob("*.png"))
        ],
        "verdict": verdict(kind, f"{claim}; the homework's {pct(hw.CNN_TEST_ACCURACY)} is {where}"),
    }
