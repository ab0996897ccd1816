"""The answer key page (`python -m experiments.report`): one section per problem in the
homework's order, numbers read from the results (never typed), verdicts computed from them,
and bad input refused with one line and nothing written."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from markupsafe import escape

from hw5jax.configs.homework import PROBLEMS
from hw5jax.configs.report import ReportConfig
from hw5jax.pipelines import report
from hw5jax.runs import results

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "fixtures" / "results"


@pytest.fixture
def fixture_set(tmp_path) -> Path:
    root = tmp_path / "results"
    shutil.copytree(FIXTURE, root)
    return root


def render(root: Path, out: Path, **options) -> str:
    report.write_report(ReportConfig(results=str(root), out=str(out), **options))
    return (out / "index.html").read_text()


def section(html: str, anchor: str) -> str:
    match = re.search(rf'<section class="problem" id="{anchor}">(.*?)</section>', html, re.S)
    assert match, anchor
    return match.group(1)


def test_every_problem_in_the_homeworks_order(fixture_set, tmp_path):
    html = render(fixture_set, tmp_path / "out")
    ids = re.findall(r'<section class="problem" id="([^"]+)">', html)
    assert len(ids) == len(PROBLEMS) == 17
    wanted = ["1.1", "1.2(a)", "1.2(b)", "1.2(c)", "2.1", "2.2(a)", "2.2(b)", "2.2(c)", "2.3"]
    wanted += ["3.1", "3.2", "4.1", "4.2", "4.3", "4.4", "5.1", "5.2"]
    assert [p.id for p in PROBLEMS] == wanted
    titles = re.findall(r"<h2>Problem ([^ ]+) —", html)
    assert titles == wanted
    for src in re.findall(r'<img src="([^"]+)"', html):
        assert (tmp_path / "out" / src).is_file(), src  # every figure beside the page


def test_numbers_are_read_from_the_results(fixture_set, tmp_path):
    before = section(render(fixture_set, tmp_path / "a"), "p3-1")
    path = fixture_set / "optim_sweep" / "results.json"
    record = json.loads(path.read_text())
    record["optimizers"]["adagrad"]["test_accuracy"] = [0.98765]
    record["optimizers"]["adagrad"]["test_accuracy_mean"] = 0.98765
    path.write_text(json.dumps(record))
    after = section(render(fixture_set, tmp_path / "b"), "p3-1")
    assert "98.77%" in after and "98.77%" not in before


def test_a_failing_check_shows_as_failing(fixture_set, tmp_path):
    path = fixture_set / "theory_checks" / "results.json"
    record = json.loads(path.read_text())
    for check in record["checks"]:
        if check["problem"] == "2.2(a)":
            assert check["passed"]
    assert "agrees" in section(render(fixture_set, tmp_path / "a"), "p2-2-a")
    first = next(c for c in record["checks"] if c["problem"] == "2.2(a)")
    first["passed"] = False  # a wrong claim
    path.write_text(json.dumps(record))
    page = section(render(fixture_set, tmp_path / "b"), "p2-2-a")
    assert "check fails" in page and str(escape(first["name"])) in page


def test_a_missing_experiment_is_shown_not_run(fixture_set, tmp_path):
    shutil.rmtree(fixture_set / "batchnorm")
    html = render(fixture_set, tmp_path / "out")
    bn = section(html, "p3-2")
    assert "Not run — <code>make reproduce</code> or <code>python -m experiments.batchnorm" in bn
    with pytest.raises(Exception, match="--strict: not run: batchnorm"):
        render(fixture_set, tmp_path / "strict", strict=True)
    assert not (tmp_path / "strict").exists()


def test_the_alexnet_stand_in_is_said_plainly(fixture_set, tmp_path):
    html = render(fixture_set, tmp_path / "out")
    assert "random stand-in" in section(html, "p4-1")
    assert "download.pytorch.org/models/alexnet-owt-7be5be79.pth" in section(html, "p4-1")
    assert "top-5 is meaningless" in section(html, "p4-4")


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "experiments.report", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda root: shutil.rmtree(root), "no results directory"),
        (lambda root: (root / "batchnorm" / "results.json").unlink(), "half-written"),
        (
            lambda root: (root / "cnn_best" / "results.json").write_text(
                json.dumps({"experiment": "cnn_mnist", "recipe": "homework"})
            ),
            "not of cnn_best",
        ),
    ],
    ids=["missing", "half-written", "other-experiment"],
)
def test_bad_results_one_line_exit_2_nothing_written(fixture_set, tmp_path, damage, message):
    damage(fixture_set)
    done = cli("--results", str(fixture_set), "--out", str(tmp_path / "out"))
    assert done.returncode == 2
    assert done.stderr.startswith("error: ") and done.stderr.count("\n") == 1
    assert message in done.stderr
    assert not (tmp_path / "out").exists()


def test_a_quick_run_is_refused(tmp_path):
    from test_results import make_run

    run = make_run(tmp_path / "q", "optim_sweep", quick=True, optimizers={})
    done = cli("--runs", str(run), "--out", str(tmp_path / "out"))
    assert done.returncode == 2 and "--quick run" in done.stderr
    assert not (tmp_path / "out").exists()


def test_pdf_without_chromium_is_one_line_and_writes_nothing(fixture_set, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.delenv("HW5JAX_CHROMIUM", raising=False)
    with pytest.raises(Exception, match="Chromium not found"):
        render(fixture_set, tmp_path / "out", pdf=True)
    assert not (tmp_path / "out").exists()


def test_the_committed_results_answer_every_problem(tmp_path):
    """On the committed results/, every problem has an answer: none is "not run"."""
    found = results.load_set()
    missing = [name for name, r in found.items() if r is None]
    assert missing == []
    sections = report.build_sections(found)
    assert [s["verdict"]["kind"] for s in sections if s["verdict"]["kind"] == "not-run"] == []


def test_theory_md_is_split_by_problem_and_part():
    from hw5jax.theory.answer_key import theory_parts

    md = (
        "# key\n\n## Problem 1.1 — x\n\nProse one.\n\n| check | verdict |\n|---|---|\n"
        "| c1 | pass |\n\n- *c1*: its claim\n\nFigures: `a.png`, `b.png`.\n\n"
        "## Problem 1.2 — y\n\nPreamble.\n\n**(a) A.** text a\n\n- *All weights*: a prose "
        "bullet\n\n**(b) B.** text b\n\nFigure: `l2.png`.\n"
    )
    parts = theory_parts(md)
    assert list(parts) == ["1.1", "1.2(a)", "1.2(b)"]
    one = parts["1.1"]["text"]
    assert "Prose one" in one and "its claim" not in one and "c1" not in one
    assert parts["1.1"]["figures"] == ["a.png", "b.png"]
    assert "Preamble" in parts["1.2(a)"]["text"] and "a prose bullet" in parts["1.2(a)"]["text"]
    assert "Preamble" not in parts["1.2(b)"]["text"] and "text b" in parts["1.2(b)"]["text"]
    assert parts["1.2(a)"]["figures"] == [] and parts["1.2(b)"]["figures"] == ["l2.png"]


def test_the_contrary_checks_are_real_checks():
    """Each check a problem names as showing the homework wrong exists (a typo would make
    the verdict "agrees" silently)."""
    names = {
        c["name"]
        for c in json.loads((FIXTURE / "theory_checks" / "results.json").read_text())["checks"]
    }
    for problem in PROBLEMS:
        assert set(problem.against) <= names, problem.id
