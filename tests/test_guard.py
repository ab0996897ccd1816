"""A guarded run directory: one process at a time in an `--out` (a lock the kernel drops
with its holder), SIGTERM handled as Ctrl-C is, per-epoch checkpoints verified by sha256,
and run.json's record of the source a run started with."""

from __future__ import annotations

import fcntl
import functools
import gc
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from conftest import SHORT_SWEEP, run_as_two_processes

from hw5jax.cli import run_main
from hw5jax.core.fit import fit
from hw5jax.core.train import Trainer
from hw5jax.errors import CheckpointError, ConfigError
from hw5jax.models.mlp import MLP
from hw5jax.runs import rundir
from hw5jax.runs.checkpoint import DIGESTS
from hw5jax.runs.lock import LOCK_FILE
from hw5jax.runs.rundir import RunDir, Stopped, Terminated, stop_point
from hw5jax.runs.store import ProgramStore

ROOT = Path(__file__).resolve().parents[1]


def hold_elsewhere(out: Path, pid: int = 4242, host: str = "elsewhere") -> int:
    """OUT/run.lock locked through a descriptor of its own, as another process would hold
    it (flock locks belong to open files), its note naming `pid` on `host`."""
    fd = os.open(out / LOCK_FILE, os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    note = {"pid": pid, "host": host, "since": "2024-01-01T00:00:00Z"}
    os.write(fd, json.dumps(note).encode())
    return fd


# ------------------------------------------------------------------------------- the lock


def test_a_held_directory_is_refused_naming_its_holder(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    fd = hold_elsewhere(out)
    try:
        with pytest.raises(ConfigError) as info:
            RunDir.claim(out, "optim_sweep", {"epochs": 1})
    finally:
        os.close(fd)
    message = str(info.value)
    assert len(message.splitlines()) == 1
    assert f"--out {out}: in use by process 4242 on host elsewhere" in message
    assert not (out / "run.json").exists()  # refused before anything was written
    RunDir.claim(out, "optim_sweep", {"epochs": 1})  # released with its holder's descriptor


def test_the_lock_names_this_process_and_goes_when_the_run_does(tmp_path):
    out = tmp_path / "out"
    run_dir = RunDir.claim(out, "x", {})
    note = json.loads((out / LOCK_FILE).read_text())
    assert note["pid"] == os.getpid() and note["host"] == socket.gethostname()
    again = RunDir.claim(out, "x", {})  # the same process: a second lease on its lock
    run_dir.release()
    assert (out / LOCK_FILE).exists()
    del again
    gc.collect()
    assert sorted(p.name for p in out.iterdir()) == ["run.json"]


def test_an_error_inside_the_run_releases_the_lock(tmp_path):
    run_dir = RunDir.claim(tmp_path / "out", "x", {})
    with pytest.raises(RuntimeError), run_dir:
        raise RuntimeError("a failed epoch")
    assert not (tmp_path / "out" / LOCK_FILE).exists()
    fd = hold_elsewhere(tmp_path / "out")  # nobody holds it any more
    os.close(fd)


def test_a_refused_claim_leaves_the_directory_as_it_was(tmp_path):
    out = tmp_path / "out"
    RunDir.claim(out, "x", {"epochs": 1}).release()
    with pytest.raises(ConfigError, match=r"--epochs 2 \(was 1\)"):
        RunDir.claim(out, "x", {"epochs": 2})
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match="not a run of this project"):
        RunDir.claim(other, "x", {})
    assert [p.name for p in out.iterdir()] == ["run.json"]
    assert [p.name for p in other.iterdir()] == ["notes.txt"]


def test_a_lock_file_left_behind_does_not_block(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / LOCK_FILE).write_text('{"pid": 999999, "host": "gone", "since": "then"}\n')
    run_dir = RunDir.claim(out, "x", {})  # the file, but no flock on it: a holder that died
    assert json.loads((out / LOCK_FILE).read_text())["pid"] == os.getpid()
    run_dir.release()


HOLD = textwrap.dedent("""
    import sys, time
    from hw5jax.runs.lock import DirLock
    lock = DirLock.take(sys.argv[1])
    print("held", flush=True)
    time.sleep(600)
""")


@pytest.mark.slow
def test_a_lock_left_by_a_killed_process_does_not_block(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(out)], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(ConfigError, match=f"in use by process {holder.pid} on host"):
            RunDir.claim(out, "x", {})
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert (out / LOCK_FILE).exists()  # what the killed process left
    run_dir = RunDir.claim(out, "x", {})
    assert json.loads((out / LOCK_FILE).read_text())["pid"] == os.getpid()
    run_dir.release()


CLAIM = textwrap.dedent("""
    import sys
    from hw5jax.cli import run_main
    from hw5jax.runs.rundir import RunDir

    def main(argv):
        run_dir = RunDir.claim(argv[0], "x", {})
        print("lock", run_dir.lock is not None and run_dir.lock.path is not None)

    run_main(main, sys.argv[1:], several_processes=True)
""")


def _two_processes(out: Path) -> list[tuple[int, str, str]]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("JAX_")}
    return run_as_two_processes([sys.executable, "-c", CLAIM, str(out)], base, 300, cwd=ROOT)


@pytest.mark.slow
def test_several_processes_lock_once_on_process_zero(tmp_path):
    out = tmp_path / "out"
    (zero, one) = _two_processes(out)
    assert zero[0] == 0 and one[0] == 0, (zero[2][-2000:], one[2][-2000:])
    said = [
        [line for line in out.splitlines() if line.startswith("lock ")] for _, out, _ in (zero, one)
    ]
    assert said == [["lock True"], ["lock False"]]
    fd = hold_elsewhere(out)
    try:
        (zero, one) = _two_processes(out)
    finally:
        os.close(fd)
    assert zero[0] == one[0] == 2
    assert zero[2].strip() == f"error: --out {out}: in use by process 4242 on host elsewhere " + (
        "(since 2024-01-01T00:00:00Z); wait for it to end, or choose another --out"
    )
    assert one[2].strip() == f"error: --out {out}: process 0 could not lock it (see its error)"


# ------------------------------------------------------------------------------- SIGTERM


def test_sigterm_inside_a_run_stops_at_the_next_stop_point_with_143(tmp_path, capsys):
    run_dir = RunDir.claim(tmp_path / "out", "x", {})
    with pytest.raises(Stopped) as info, run_dir:
        os.kill(os.getpid(), signal.SIGTERM)  # deferred: the epoch goes on
        time.sleep(0.05)
        stop_point()
    assert info.value.exit_code == 143 and isinstance(info.value.__cause__, Terminated)
    assert str(info.value).startswith("stopped by SIGTERM")
    assert f"rerun the same command with --out {tmp_path / 'out'}" in str(info.value)
    assert "SIGTERM: stopping after this epoch's checkpoint" in capsys.readouterr().err
    assert signal.getsignal(signal.SIGTERM) is not rundir._on_stop  # restored
    assert not (tmp_path / "out" / LOCK_FILE).exists()


def test_a_second_signal_stops_at_once(tmp_path):
    with pytest.raises(Stopped) as info, RunDir.claim(tmp_path / "out", "x", {}):
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.05)
        os.kill(os.getpid(), signal.SIGTERM)  # raises here, no stop point needed
        time.sleep(5)
        pytest.fail("the second signal did not stop the run")
    assert info.value.exit_code == 143


def test_the_command_line_exits_143_on_sigterm(tmp_path, capsys):
    def main(argv):
        with RunDir.claim(tmp_path / "out", "x", {}):
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.05)
            stop_point()

    with pytest.raises(SystemExit) as info:
        run_main(main, [])
    assert info.value.code == 143
    assert f"--out {tmp_path / 'out'}" in capsys.readouterr().err.strip().splitlines()[-1]

    def outside(argv):  # not in a run: SIGTERM unwinds at once, as Ctrl-C does
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)

    with pytest.raises(SystemExit) as info:
        run_main(outside, [])
    assert info.value.code == 143 and capsys.readouterr().err.strip() == "interrupted"


# ------------------------------------------------------------- per-epoch checkpoints' sha256


@pytest.fixture(scope="module")
def trainer():
    return Trainer(functools.partial(MLP, (784, 16, 10)), "sgd", batch_size=64)


def _train(trainer, tiny, directory: Path, epochs: int = 2):
    return fit(
        trainer, tiny, {"learning_rate": 0.1}, seed=0, epochs=epochs, store=ProgramStore(directory)
    )


def test_every_epoch_checkpoint_records_its_digests(trainer, tiny, tmp_path):
    _train(trainer, tiny, tmp_path, epochs=3)
    for step in ("2", "3"):
        files = json.loads((tmp_path / step / DIGESTS).read_text())["files"]
        assert "record/metadata" in files and any(f.startswith("state/") for f in files)


def _flip_a_bit(step: Path) -> str:
    """Flip one bit in the middle of the largest array file of a per-epoch checkpoint."""
    target = max((p for p in (step / "state").rglob("*") if p.is_file()), key=os.path.getsize)
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0x10
    target.write_bytes(bytes(data))
    return target.relative_to(step).as_posix()


def test_a_flipped_bit_in_an_epoch_checkpoint_is_one_error_line_naming_it(trainer, tiny, tmp_path):
    _train(trainer, tiny, tmp_path)
    damaged = _flip_a_bit(tmp_path / "2")
    with pytest.raises(CheckpointError) as info:
        _train(trainer, tiny, tmp_path, epochs=3)
    message = str(info.value)
    assert len(message.splitlines()) == 1
    assert message.startswith(f"{tmp_path / '2'}: cannot resume from this checkpoint")
    assert f"{damaged} does not match its recorded sha256" in message
    assert sorted(p.name for p in tmp_path.iterdir()) == ["1", "2"]  # nothing trained again


def test_an_epoch_checkpoint_from_before_the_digests_still_resumes(trainer, tiny, tmp_path):
    _train(trainer, tiny, tmp_path)
    (tmp_path / "2" / DIGESTS).unlink()
    resumed = _train(trainer, tiny, tmp_path, epochs=3)
    assert resumed.epochs == 3


# ------------------------------------------------------------------ the source of a run


def test_run_json_records_the_source(tmp_path):
    RunDir.claim(tmp_path / "out", "x", {"epochs": 1, "out": "a", "strict_resume": True})
    stamp = json.loads((tmp_path / "out" / "run.json").read_text())
    assert stamp["config"] == {"epochs": 1}  # where and how strictly are not what
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    assert stamp["git_commit"] == (head or None)
    lock = ROOT / "requirements.lock"
    if lock.is_file():
        from hw5jax.data.fetch import sha256_file

        assert stamp["requirements_lock_sha256"] == sha256_file(lock)


def test_run_json_records_where_it_ran(tmp_path, monkeypatch):
    import types

    import jax

    main = types.ModuleType("__main__")
    main.__spec__ = types.SimpleNamespace(name="experiments.optim_sweep")
    monkeypatch.setitem(sys.modules, "__main__", main)
    monkeypatch.setattr(sys, "argv", ["/x/optim_sweep.py", "--epochs", "2", "--out", "a b"])
    RunDir.claim(tmp_path / "out", "x", {"epochs": 2})
    env = json.loads((tmp_path / "out" / "run.json").read_text())["environment"]
    assert env["command"] == "python -m experiments.optim_sweep --epochs 2 --out 'a b'"
    assert env["versions"]["jax"] == jax.__version__
    assert env["cores"] >= 1 and env["cpu"]
    assert env["started_utc"].endswith("+00:00")


def test_no_commit_outside_a_checkout_or_without_git(tmp_path, monkeypatch):
    assert rundir.source_commit(tmp_path) is None
    assert rundir.provenance(tmp_path) == {"git_commit": None, "requirements_lock_sha256": None}
    monkeypatch.setenv("PATH", str(tmp_path))  # no git anywhere
    assert rundir.source_commit() is None


def _started_under(out: Path, **stamps) -> None:
    RunDir.claim(out, "x", {"epochs": 1}).release()
    stamp = json.loads((out / "run.json").read_text())
    for key, value in stamps.items():
        if value is None:
            stamp.pop(key, None)
        else:
            stamp[key] = value
    (out / "run.json").write_text(json.dumps(stamp))


def test_resuming_under_another_commit_warns_once(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(rundir, "source_commit", lambda root=None: "b" * 40)
    out = tmp_path / "out"
    _started_under(out, git_commit="a" * 40)
    RunDir.claim(out, "x", {"epochs": 1}).release()
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        f"warning: --out {out}: started under commit {'a' * 12} (this source: {'b' * 12}); "
        "resuming it anyway"
    ]
    (out / "results.json").write_text("{}")  # a finished run is read, not resumed: no warning
    RunDir.claim(out, "x", {"epochs": 1}).release()
    assert capsys.readouterr().err == ""


def test_strict_resume_refuses_another_commit(tmp_path, monkeypatch):
    monkeypatch.setattr(rundir, "source_commit", lambda root=None: "b" * 40)
    out = tmp_path / "out"
    _started_under(out, git_commit="a" * 40)
    with pytest.raises(ConfigError) as info:
        RunDir.claim(out, "x", {"epochs": 1, "strict_resume": True}, strict=True)
    assert len(str(info.value).splitlines()) == 1
    assert f"--out {out}: started under commit {'a' * 12}" in str(info.value)
    assert "--strict-resume refuses" in str(info.value)
    assert not (out / LOCK_FILE).exists()
    _started_under(out, git_commit="b" * 40)  # the same commit: resumed, strict or not
    RunDir.claim(out, "x", {"epochs": 1}, strict=True).release()


def test_a_run_json_without_the_stamps_still_resumes(tmp_path, capsys):
    out = tmp_path / "out"
    _started_under(out, git_commit=None, requirements_lock_sha256=None)
    RunDir.claim(out, "x", {"epochs": 1}, strict=True).release()
    RunDir.claim(out, "x", {"epochs": 1}).release()
    assert capsys.readouterr().err == ""


# ------------------------------------------------------------------------- real commands


QUICK = ["--quick", "--optimizers", "sgd,adam"]
SHORT = SHORT_SWEEP


def _sweep(argv: list[str], out: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "experiments.optim_sweep", *argv, "--out", str(out)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _finish(proc: subprocess.Popen) -> str:
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-3000:]
    return err


def _results(out: Path) -> dict:
    results = json.loads((out / "results.json").read_text())
    return {
        name: {k: entry[k] for k in ("grid", "selected", "test_accuracy", "history")}
        for name, entry in results["optimizers"].items()
    }


@pytest.mark.slow
@pytest.mark.mnist
def test_two_starts_in_one_directory_one_refused_at_once(mnist, tmp_path):
    out = tmp_path / "same"
    first = _sweep(QUICK, out)
    deadline = time.monotonic() + 120
    while not (out / LOCK_FILE).is_file() or not (out / LOCK_FILE).read_text():
        assert time.monotonic() < deadline and first.poll() is None
        time.sleep(0.1)
    second = _sweep(QUICK, out)
    _, err = second.communicate(timeout=120)
    assert first.poll() is None, "the first run ended before the second was refused"
    assert second.returncode == 2, err[-3000:]
    assert err.strip() == (
        f"error: --out {out}: in use by process {first.pid} on host {socket.gethostname()} "
        f"(since {json.loads((out / LOCK_FILE).read_text())['since']}); wait for it to end, or "
        "choose another --out"
    )
    _finish(first)
    _finish(_sweep(QUICK, tmp_path / "solo"))
    assert _results(out) == _results(tmp_path / "solo")
    assert not (out / LOCK_FILE).exists()


@pytest.mark.slow
@pytest.mark.mnist
def test_sigterm_mid_epoch_then_resume_equals_an_uninterrupted_run(mnist, tmp_path):
    clean = _sweep(SHORT, tmp_path / "clean")
    out = tmp_path / "stopped"
    proc = _sweep(SHORT, out)
    deadline = time.monotonic() + 300
    while not (out / "state").is_dir():  # the first epoch's checkpoint: now mid-epoch
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 143, err[-3000:]
    last = err.strip().splitlines()[-1]
    assert last == (
        f"stopped by SIGTERM; what finished is saved in {out}. To continue, rerun the same "
        f"command with --out {out}"
    )
    assert "SIGTERM: stopping after this epoch's checkpoint" in err and "Traceback" not in err
    assert not (out / "results.json").exists() and not (out / LOCK_FILE).exists()
    assert "continuing the interrupted run" in _finish(_sweep(SHORT, out))
    _finish(clean)
    assert _results(out) == _results(tmp_path / "clean")
