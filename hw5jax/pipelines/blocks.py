"""The README's and docs' result blocks, generated from `results/`: each page marks a block

    <!-- results:NAME -->
    ...generated; `make docs` rewrites it...
    <!-- /results:NAME -->

and `refresh` rewrites every block from the results set, `stale` lists the blocks that differ
from it (a test fails on any). NAME is one of BLOCKS: "glance" (the README's results at a
glance), "speed" (the README's benchmark ratios) or an entry of `results/` (its table.md and
provenance).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from pathlib import Path

from hw5jax.bench.cases import REGISTRY
from hw5jax.bench.report import spread
from hw5jax.errors import ConfigError
from hw5jax.pipelines import answers
from hw5jax.pipelines.report import build_sections
from hw5jax.runs.results import BY_NAME, ROOT, Result

PAGES = (ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")))
MARK = re.compile(r"(<!-- results:(\w+) -->\n)(.*?)(<!-- /results:\2 -->)", re.S)


def _provenance(result: Result) -> str:
    return f"From `results/{result.entry.name}/`: `{answers.provenance_line(result)}`."


def entry_block(name: str) -> Callable[[answers.Found], str]:
    """An entry's table.md (as the run wrote it) and its provenance line."""

    def render(found: answers.Found) -> str:
        result = found[name]
        if result is None:
            return f"Not run: `{BY_NAME[name].command}` (then `make docs`).\n"
        table = result.file("table.md")
        text = table.read_text().strip() if table.is_file() else _summary(result)
        return f"{text}\n\n{_provenance(result)}\n"

    return render


def _summary(result: Result) -> str:
    """A block for an entry without table.md: the theory checks' count, AlexNet's shapes."""
    r = result.results
    if result.entry.experiment == "theory_checks":
        checks = r["checks"]
        passed = sum(c["passed"] for c in checks)
        rows = [
            f"{passed} of {len(checks)} checks pass.",
            "",
            "| problem | check | measured | expected | verdict |",
            "|---|---|---|---|---|",
        ]
        for c in checks:
            mark = "pass" if c["passed"] else "**does not hold**" if _heuristic(c) else "**FAIL**"
            cells = [c["problem"], c["name"], _cell(c["measured"]), _cell(c["expected"]), mark]
            rows.append("| " + " | ".join(cells) + " |")
        return "\n".join(rows)
    if result.entry.experiment == "alexnet_readout":
        rows = ["| image | input | conv1 output | final layer | top-1 |", "|---|---|---|---|---|"]
        for i in r["images"]:
            top = i["top5"][0]
            rows.append(
                f"| `{i['path']}` | {' × '.join(map(str, i['input_shape']))} | "
                f"{' × '.join(map(str, i['conv1_shape']))} | {i['final_layer_dim']} | "
                f"{top['name']} {100 * top['probability']:.1f}% |"
            )
        notice = r["weights"].get("notice")
        return "\n".join(rows) + (f"\n\n{notice}" if notice else "")
    return "(no table)"


def _heuristic(check: dict) -> bool:
    return check["name"].endswith("(heuristic)")


def _cell(value) -> str:
    return answers.cell(value).replace("|", "\\|")


def glance(found: answers.Found) -> str:
    """The README's table: each problem's verdict, computed as the answer key computes it."""
    rows = ["| problem | verdict | ours, against the homework's |", "|---|---|---|"]
    for s in build_sections(found):
        text, title = (v.replace("|", "\\|") for v in (s["verdict"]["text"], s["title"]))
        rows.append(f"| [{s['id']}]({_link(s['id'])}) {title} | {s['verdict']['kind']} | {text} |")
    used = [r for r in found.values() if r is not None]
    stacks = sorted({answers.provenance_line(r).split(" · ")[2] for r in used})
    cpus = sorted({f"{r.provenance.get('cpu')}" for r in used})
    return (
        "\n".join(rows)
        + f"\n\nFrom `results/` ({len(used)} of {len(found)} experiments run; "
        + f"{'; '.join(stacks) or 'no runs'}; {', '.join(cpus) or 'no CPU'}). "
        + "`python -m experiments.report` renders every problem in full.\n"
    )


# The README's words for each benchmark case (its cases not named here keep their names).
CASE_WORDS = {
    "mlp_epoch_sgd": "an MLP epoch, SGD",
    "mlp_epoch_adam": "an MLP epoch, Adam",
    "grid8_mlp_epoch": "an epoch of 8 SGD learning rates",
    "cnn_epoch": "a CNN epoch, Adam",
    "grid_scaling": "an SGD grid of {target_size}, per run-epoch",
    "sweep": "the optimizer sweep, end to end",
}


def speed(found: answers.Found) -> str:
    """The README's speed table: each benchmark case's ratio (PyTorch s / hw5jax s) against
    its target, from results/benchmark."""
    result = found["benchmark"]
    if result is None:
        return f"Not run: `{BY_NAME['benchmark'].command}` (then `make docs`).\n"
    r = result.results
    rows = [
        "| hw5jax against the homework's PyTorch loop | ratio | per repeat | target |",
        "|---|---|---|---|",
    ]
    for name, case in r["cases"].items():
        words = CASE_WORDS.get(name, name).format(**case)
        target = REGISTRY[name].target if name in REGISTRY else None
        ratio = case.get("ratio")
        verdict = "—" if ratio is None or target is None else "met" if ratio >= target else "missed"
        cells = [
            "—" if ratio is None else f"{ratio:.2f}×",
            spread(case, none="one run"),
            f"≥ {target} ({verdict})",
        ]
        rows.append(f"| {words} | " + " | ".join(cells) + " |")
    device = "the GPU" if r.get("device") == "gpu" else f"{r.get('cpu_count')} CPU cores"
    return (
        "\n".join(rows)
        + f"\n\nOn {device} ({result.provenance.get('cpu')}); the verdict is the median's. "
        + "Timings on a shared machine move from run to run; other runs and the reasons are in "
        + f"[performance](docs/performance.md). {_provenance(result)}\n"
    )


# The docs page of each problem (Problems 1, 2 and 5.1 are the theory page's).
PAGE_OF = {"3.1": "optimizers", "3.2": "batchnorm", "4": "alexnet", "5.2": "cnn"}


def _link(problem: str) -> str:
    page = PAGE_OF.get(problem, PAGE_OF.get(problem.split(".")[0], "theory"))
    return f"docs/{page}.md"


BLOCKS: dict[str, Callable[[answers.Found], str]] = {
    "glance": glance,
    "speed": speed,
    **{name: entry_block(name) for name in BY_NAME},
}


def render_blocks(found: answers.Found) -> dict[str, str]:
    return {name: render(found) for name, render in BLOCKS.items()}


def _replace(text: str, blocks: dict[str, str], where: Path) -> str:
    def one(match: re.Match) -> str:
        name = match.group(2)
        if name not in blocks:
            raise ConfigError(
                f"{where}: unknown results block {name!r} (blocks: {', '.join(blocks)})"
            )
        return match.group(1) + blocks[name] + match.group(4)

    return MARK.sub(one, text)


def stale(found: answers.Found, pages: Iterable[Path] = PAGES) -> list[str]:
    """`page: block` for every block that differs from what `found` renders."""
    blocks = render_blocks(found)
    out = []
    for path in pages:
        text = path.read_text()
        for match in MARK.finditer(text):
            name = match.group(2)
            if name not in blocks or match.group(3) != blocks[name]:
                out.append(f"{path.name}: {name}")
    return out


def refresh(found: answers.Found, pages: Iterable[Path] = PAGES) -> list[Path]:
    """Rewrite every block of `pages` from `found`; returns the pages that changed."""
    from hw5jax.runs.files import write_text

    blocks = render_blocks(found)
    changed = []
    for path in pages:
        text = path.read_text()
        new = _replace(text, blocks, path)
        if new != text:
            write_text(path, new)
            changed.append(path)
    return changed
