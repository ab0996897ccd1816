"""Hostile and broken inputs across the command lines: each one ends as one `error:`
line and exit code 2, leaves nothing behind (no temporary files, no half-written checkpoint,
no output directory), and shows a traceback only with `--debug`.

Covered elsewhere, not repeated here: bad option values (test_optim_sweep), unreadable or
corrupt MNIST files (test_data), undecodable images (test_images), bad .pth files and a
foreign checkpoint given to the AlexNet command lines (test_alexnet).

A full disk is a tiny tmpfs (when this process may mount one) or RLIMIT_FSIZE (anyone); a
read-only directory is a read-only tmpfs when running as root (root ignores permissions),
else a chmod 0555 directory. What cannot be set up here is skipped, never faked as passing.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import pickle
import shutil
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from experiments import (
    alexnet_readout,
    batchnorm,
    benchmark,
    cnn_mnist,
    convert_alexnet,
    optim_sweep,
    theory_checks,
)
from hw5jax import data
from hw5jax.alexnet import images
from hw5jax.cli import run_main
from hw5jax.data import __main__ as data_cli
from hw5jax.data import safe
from hw5jax.runs import checkpoint
from hw5jax.runs import files as results
from hw5jax.runs.checkpoint import CheckpointError

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "JAX_PLATFORMS": "cpu"}
NON_UTF8 = os.fsdecode(b"caf\xe9-\xff")  # Latin-1 "café" and a byte no encoding decodes


pytestmark = pytest.mark.slow  # the long tier: hostile inputs across every command line


# ---------------------------------------------------------------------------- helpers


def nielsen_file(path: Path, mnist) -> Path:
    """`mnist` written in Nielsen's mnist.pkl.gz format (pixels k/256, protocol 2)."""
    splits = tuple(
        (
            (s.images.reshape(len(s.labels), 784) / 256.0).astype(np.float32),
            s.labels.astype(np.int64),
        )
        for s in mnist
    )
    with gzip.open(path, "wb") as f:
        pickle.dump(splits, f, protocol=2)
    return path


class _RunsACommand:
    """Unpickling this calls os.system: a loader must refuse it before it runs."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch '{self.marker}'",))


def evil_pickle(path: Path, marker: Path) -> Path:
    with gzip.open(path, "wb") as f:
        pickle.dump(((_RunsACommand(marker), np.zeros(1)),) * 3, f, protocol=2)
    return path


def png_header(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height RGB pixels, with one tiny data chunk."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body))
            + kind
            + body
            + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\0"))
        + chunk(b"IEND", b"")
    )


def leftovers(directory: Path) -> list[str]:
    """Temporary files or directories of an interrupted write under `directory`."""
    marks = (".tmp", "orbax-checkpoint-tmp", ".hw5jax-saving-", ".hw5jax-replaced-")
    return sorted(str(p) for p in directory.rglob("*") if any(m in p.name for m in marks))


def one_error_line(code: int, stderr: bytes | str) -> str:
    """Assert a real process ended as one `error:` line, exit code 2, no traceback."""
    err = stderr.decode("utf-8", "backslashreplace") if isinstance(stderr, bytes) else stderr
    lines = err.strip().splitlines()
    assert code == 2, err
    assert "Traceback" not in err, err
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


def data_cli_error(argv: list[str], capsys) -> str:
    """`python -m hw5jax.data ARGV` in-process: one error line, exit code 2."""
    with pytest.raises(SystemExit) as info:
        run_main(data_cli.main, argv)
    return one_error_line(info.value.code, capsys.readouterr().err)


@contextlib.contextmanager
def tmpfs(path: Path, options: str):
    """Mount a tmpfs at `path` (skip the test if this process may not)."""
    path.mkdir(parents=True, exist_ok=True)
    if shutil.which("mount") is None or not sys.platform.startswith("linux"):
        pytest.skip("no mount(8) here")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True, text=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield path
    finally:
        if subprocess.run(["umount", str(path)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(path)], capture_output=True)


@pytest.fixture
def tiny_disk(tmp_path):
    """A directory on a 256 KiB filesystem: a checkpoint of the MLP does not fit."""
    with tmpfs(tmp_path / "tiny_disk", "size=256k,mode=0755") as path:
        yield path


@pytest.fixture
def full_disk(tmp_path):
    """A directory on a 16 KiB filesystem: room for directories, not for a checkpoint."""
    with tmpfs(tmp_path / "full_disk", "size=16k,mode=0755") as path:
        yield path


@pytest.fixture
def readonly_dir(tmp_path):
    """A directory nothing can be written into (EROFS as root, EACCES otherwise)."""
    path = tmp_path / "readonly"
    if os.geteuid() != 0:
        path.mkdir()
        path.chmod(0o555)
        try:
            yield path
        finally:
            path.chmod(0o755)
        return
    with tmpfs(path, "ro,size=64k,mode=0755"):
        yield path


@pytest.fixture(scope="module")
def files(tmp_path_factory, tiny):
    """Inputs shared by the tests: tiny MNIST in Nielsen's format, a photo, an evil pickle."""
    tmp = tmp_path_factory.mktemp("hostile")
    small = type(tiny)(*(type(s)(s.images[:128], s.labels[:128]) for s in tiny))
    photo = tmp / "photo.png"
    Image.new("RGB", (80, 70), (200, 120, 40)).save(photo)
    return {
        "tiny": nielsen_file(tmp / "tiny.pkl.gz", small),
        "photo": photo,
        "tmp": tmp,
    }


def small_checkpoint(path: Path) -> Path:
    rng = np.random.default_rng(0)
    state = {
        "params": {
            "w": rng.standard_normal((64, 32)).astype(np.float32),
            "b": np.zeros(32, np.float32),
        },
        "step": np.int32(7),
    }
    return checkpoint.save(path, state, {"model": "test"})


# ---------------------------------------------------------------------------- pickles

MNIST_CLIS = {
    "optim_sweep": (optim_sweep.main, ["--quick"]),
    "batchnorm": (batchnorm.main, ["--quick"]),
    "cnn_mnist": (cnn_mnist.main, ["--quick"]),
    "benchmark": (benchmark.main, ["--cases", "mlp_epoch_sgd", "--repeats", "1"]),
}


@pytest.mark.parametrize("cli", sorted(MNIST_CLIS))
def test_a_pickle_with_foreign_globals_never_runs(cli, tmp_path, bad_input):
    main, extra = MNIST_CLIS[cli]
    marker = tmp_path / "payload-ran"
    evil = evil_pickle(tmp_path / "evil.pkl.gz", marker)
    bad_input(main, [*extra, "--data", str(evil)], "refused global", tmp_path / "out")
    assert not marker.exists()


def test_the_data_command_refuses_a_foreign_pickle_unexecuted(tmp_path, capsys):
    marker = tmp_path / "payload-ran"
    evil = evil_pickle(tmp_path / "evil.pkl.gz", marker)
    assert "refused global" in data_cli_error(["check", "--data", str(evil)], capsys)
    assert not marker.exists()


def test_theory_checks_refuses_bad_data_before_any_work(tmp_path, bad_input, monkeypatch):
    from hw5jax.theory import (
        conv_backprop,
        hyperparameter_gradients,
        momentum,
        sigmoid_gain,
        unstable_gradients,
    )

    def must_not_run(*_a, **_k):
        raise AssertionError("measured before --data was checked")

    for module, name in (
        (sigmoid_gain, "measure_sigmoid_gain"),
        (unstable_gradients, "measure_unstable_gradients"),
        (momentum, "measure_momentum_quadratic"),
        (conv_backprop, "measure_conv_backprop"),
        (hyperparameter_gradients, "measure_hypergradients"),
    ):
        monkeypatch.setattr(module, name, must_not_run)
    marker = tmp_path / "payload-ran"
    evil = evil_pickle(tmp_path / "evil.pkl.gz", marker)
    bad_input(theory_checks.main, ["--data", str(evil)], "refused global", tmp_path / "out")
    assert not marker.exists()


# ---------------------------------------------------------------------------- MNIST files


def test_a_huge_sparse_idx_file_is_refused_unread(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(data.SPLIT_SIZES, "train", 20)
    idx = tmp_path / "idx"
    idx.mkdir()
    for name in data.IDX_FILES.values():
        (idx / name).write_bytes(b"")
    with open(idx / data.IDX_FILES["train_images"], "wb") as f:
        f.truncate(8 << 30)  # 8 GiB of nothing: read whole, it would exhaust the memory
    line = data_cli_error(["check", "--data", str(idx)], capsys)
    assert "more than 1024 MiB" in line


def test_a_gzip_bomb_is_refused_before_it_fills_the_memory(tmp_path, capsys, monkeypatch):
    bomb = tmp_path / "bomb.pkl.gz"
    with gzip.open(bomb, "wb") as f:
        f.write(b"\0" * (4 << 20))
    monkeypatch.setattr(safe, "MAX_DECOMPRESSED", 1 << 20)  # a 1 MiB budget: same code path
    assert "decompression bomb" in data_cli_error(["check", "--data", str(bomb)], capsys)


def test_a_fifo_as_data_does_not_hang(tmp_path, capsys):
    fifo = tmp_path / "mnist.pkl.gz"
    os.mkfifo(fifo)
    assert "unknown data source" in data_cli_error(["check", "--data", str(fifo)], capsys)


def test_fetch_into_a_read_only_cache_names_the_fix(readonly_dir, capsys, monkeypatch):
    monkeypatch.setenv("HW5JAX_DATA", str(readonly_dir / "cache"))
    line = data_cli_error(["fetch"], capsys)
    assert "HW5JAX_DATA" in line and str(readonly_dir) in line


# ---------------------------------------------------------------------------- images


@pytest.mark.parametrize(
    "case", ["zero_bytes", "sparse_8GiB", "header_claims_10G_pixels", "directory", "fifo"]
)
def test_hostile_image_files(case, tmp_path, bad_input):
    path = tmp_path / "photo.png"
    if case == "zero_bytes":
        path.write_bytes(b"")
        message = "not an image file"
    elif case == "sparse_8GiB":
        with open(path, "wb") as f:
            f.truncate(8 << 30)
        message = "not an image file"
    elif case == "header_claims_10G_pixels":
        path.write_bytes(png_header(100_000, 100_000))
        message = "decompression bomb"
    elif case == "directory":
        path.mkdir()
        message = "no such image file"
    else:
        os.mkfifo(path)  # opening it would block forever
        message = "no such image file"
    # Images are checked before the weights are needed: none exist here.
    bad_input(
        alexnet_readout.main,
        [str(path), "--weights", str(tmp_path / "none")],
        message,
        tmp_path / "out",
    )


def test_pil_limit_is_honoured_from_the_command_line(files, tmp_path, bad_input, monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 4000)  # 80 x 70 = 5600: over, under 2x
    bad_input(alexnet_readout.main, [str(files["photo"])], "decompression bomb", tmp_path / "out")


def test_a_large_photo_is_cropped_before_it_is_converted(tmp_path, monkeypatch):
    """crop/pad cut the decoded image before the float32 copy (4 bytes per channel)."""
    img = Image.new("RGB", (3000, 2000), (0, 255, 0))
    path = tmp_path / "large.png"
    img.save(path)
    seen = []
    convert = images._to_rgb_array
    monkeypatch.setattr(
        images, "_to_rgb_array", lambda im, p: seen.append(im.size) or convert(im, p)
    )
    for fit in ("crop", "pad"):
        assert images.load_image(path, 227, fit).shape == (227, 227, 3)
    x = images.load_image(path, 227, "resize")
    assert x.shape == (227, 227, 3)
    assert seen == [(227, 227), (227, 227), (3000, 2000)]  # 6 Mpx: resized exactly
    monkeypatch.setattr(images, "RESIZE_PREREDUCE_PIXELS", 1_000_000)
    np.testing.assert_allclose(images.load_image(path, 227, "resize"), x, atol=1e-5)
    assert seen[-1] == (1500, 1000)  # reduced by 2 first: short side still >= 4 x 227


def test_debug_shows_the_traceback_instead(tmp_path):
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    with pytest.raises(images.ImageError, match="not an image file"):
        run_main(alexnet_readout.main, [str(empty), "--out", str(tmp_path / "o"), "--debug"])
    assert not (tmp_path / "o").exists()


# ---------------------------------------------------------------------------- checkpoints


def _largest_file(root: Path, under: str) -> Path:
    return max(
        (p for p in (root / under).rglob("*") if p.is_file()), key=lambda p: p.stat().st_size
    )


def _damage(path: Path, how: str) -> None:
    if how == "flip_a_data_byte":
        target = _largest_file(path, "state")
        blob = bytearray(target.read_bytes())
        blob[len(blob) // 2] ^= 0x01
        target.write_bytes(bytes(blob))
    elif how == "truncate_data":
        target = _largest_file(path, "state")
        target.write_bytes(target.read_bytes()[:-7])
    elif how == "empty_metadata":
        (path / "metadata" / "metadata").write_bytes(b"")
    elif how == "delete_a_file":
        (path / "state" / "manifest.ocdbt").unlink()
    elif how == "garbage_digests":
        (path / checkpoint.DIGESTS).write_text("{not json")
    elif how == "empty_directory":
        shutil.rmtree(path)
        path.mkdir()
    elif how == "a_file":
        shutil.rmtree(path)
        path.write_text("not a checkpoint\n")
    elif how == "killed_save":  # what orbax leaves when the process dies mid-write
        shutil.rmtree(path)
        (path / "state.orbax-checkpoint-tmp").mkdir(parents=True)
    else:
        raise AssertionError(how)


DAMAGE = {
    "flip_a_data_byte": "does not match its recorded sha256",
    "truncate_data": "truncated",
    "empty_metadata": "truncated",
    "delete_a_file": "is missing",
    "garbage_digests": "unreadable hw5jax-sha256.json",
    "empty_directory": "not an hw5jax checkpoint",
    "a_file": "no checkpoint directory",
    "killed_save": "not an hw5jax checkpoint",
}


@pytest.mark.parametrize("how", sorted(DAMAGE))
def test_a_damaged_checkpoint_is_refused_never_restored_as_garbage(how, tmp_path):
    path = small_checkpoint(tmp_path / "ckpt")
    _damage(path, how)
    with pytest.raises(CheckpointError) as info:
        checkpoint.restore(path)
    message = str(info.value)
    assert "\n" not in message and message.startswith(str(path)), message
    assert DAMAGE[how] in message, message


def test_a_flipped_byte_passed_orbax_unnoticed_without_the_digests(tmp_path):
    """Why the digests exist: the same damage, digests removed, restores silently."""
    path = small_checkpoint(tmp_path / "ckpt")
    good, _ = checkpoint.restore(path)
    _damage(path, "flip_a_data_byte")
    (path / checkpoint.DIGESTS).unlink()  # a checkpoint from before the digests
    bad, _ = checkpoint.restore(path)
    assert not np.array_equal(bad["params"]["w"], good["params"]["w"])


@pytest.mark.parametrize(
    "change,message",
    [
        ("extra_array", "checkpoint of another model: 1 expected array(s) missing (params/c)"),
        ("missing_array", "checkpoint of another model: 1 unexpected (params/b)"),
        ("other_shape", "params/w is float32[64,32], expected float32[32,64]"),
        ("other_dtype", "params/w is float32[64,32], expected float16[64,32]"),
    ],
)
def test_a_checkpoint_of_another_model_is_refused(change, message, tmp_path):
    path = small_checkpoint(tmp_path / "ckpt")
    like, _ = checkpoint.restore(path)
    params = dict(like["params"])
    if change == "extra_array":
        params["c"] = np.zeros(3, np.float32)
    elif change == "missing_array":
        del params["b"]
    elif change == "other_shape":
        params["w"] = np.zeros((32, 64), np.float32)
    else:
        params["w"] = np.zeros((64, 32), np.float16)
    with pytest.raises(CheckpointError) as info:
        checkpoint.restore(path, like={**like, "params": params})
    assert message in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("how", ["flip_a_data_byte", "empty_directory", "killed_save"])
def test_readout_refuses_damaged_weights(how, files, tmp_path, bad_input):
    weights = small_checkpoint(tmp_path / "weights")
    _damage(weights, how)
    bad_input(
        alexnet_readout.main,
        [str(files["photo"]), "--weights", str(weights)],
        DAMAGE[how],
        tmp_path / "out",
    )


def test_readout_refuses_an_alexnet_checkpoint_with_extra_arrays(files, tmp_path, bad_input):
    from hw5jax.alexnet import convert

    weights = checkpoint.save(
        tmp_path / "weights",
        {
            "params": {
                "conv1": {"kernel": np.zeros((11, 11, 3, 64), np.float32), "gamma": np.ones(3)}
            }
        },
        {"architecture": convert.ARCHITECTURE},
    )
    bad_input(
        alexnet_readout.main,
        [str(files["photo"]), "--weights", str(weights)],
        "unexpected arrays conv1.gamma",
        tmp_path / "out",
    )


def test_save_refuses_to_replace_what_is_not_a_checkpoint(tmp_path):
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "keep.txt").write_text("mine")
    with pytest.raises(CheckpointError, match="not a checkpoint; refusing"):
        small_checkpoint(notes)
    assert [p.name for p in notes.iterdir()] == ["keep.txt"]
    a_file = tmp_path / "file"
    a_file.write_text("mine")
    with pytest.raises(CheckpointError, match="refusing to replace"):
        small_checkpoint(a_file)
    assert a_file.read_text() == "mine"


def test_an_interrupted_save_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    path = small_checkpoint(tmp_path / "ckpt")
    before, _ = checkpoint.restore(path)

    def interrupted(_root):
        raise KeyboardInterrupt

    monkeypatch.setattr(checkpoint, "_write_digests", interrupted)
    with pytest.raises(KeyboardInterrupt):
        checkpoint.save(path, {"other": np.ones(3)}, {})
    monkeypatch.undo()
    after, meta = checkpoint.restore(path)
    assert meta == {"model": "test"}
    np.testing.assert_array_equal(after["params"]["w"], before["params"]["w"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt"]


def test_checkpoints_round_trip_under_a_non_utf8_directory(tmp_path):
    """tensorstore takes UTF-8 paths only: such a directory is reached through its fd."""
    path = small_checkpoint(tmp_path / NON_UTF8 / "ckpt")
    state, meta = checkpoint.restore(path)
    assert meta == {"model": "test"} and state["params"]["w"].shape == (64, 32)
    assert os.fsencode(path).endswith(b"caf\xe9-\xff/ckpt")


# ---------------------------------------------------------------------------- full disk


def test_save_on_a_full_disk_leaves_nothing_and_keeps_the_old_checkpoint(tiny_disk):
    path = tiny_disk / "ckpt"
    checkpoint.save(path, {"w": np.arange(4, dtype=np.float32)}, {"v": 1})
    noise = np.random.default_rng(0).standard_normal(200_000).astype(np.float32)  # 800 KB
    with pytest.raises(CheckpointError) as info:
        checkpoint.save(path, {"w": noise}, {"v": 2})
    assert str(info.value) == f"{path}: cannot save checkpoint: No space left on device"
    assert sorted(p.name for p in tiny_disk.iterdir()) == ["ckpt"]
    assert checkpoint.restore(path)[1] == {"v": 1}
    with pytest.raises(CheckpointError, match="No space left on device"):
        checkpoint.save(tiny_disk / "new" / "ckpt", {"w": noise})
    assert sorted(p.name for p in tiny_disk.iterdir()) == ["ckpt"]  # not even new/


def test_result_files_on_a_full_disk(tiny_disk):
    target = results.write_json(tiny_disk / "results.json", {"v": 1})
    with pytest.raises(OSError) as info:
        results.write_json(target, {"v": list(range(100_000))})
    assert info.value.filename == str(target) and "No space left" in info.value.strerror
    assert json.loads(target.read_text()) == {"v": 1}  # the old file, whole
    assert [p.name for p in tiny_disk.iterdir()] == ["results.json"]


def test_save_when_writes_fail_with_efbig_unprivileged(tmp_path):
    """The same without mounting anything: under RLIMIT_FSIZE (set in the child, with
    SIGXFSZ ignored) a write past 100 kB fails with EFBIG."""
    script = (
        "import resource, signal, sys\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, 100_000))\n"
        "import numpy as np\n"
        "from hw5jax.runs import checkpoint\n"
        "noise = np.random.default_rng(0).standard_normal(200_000).astype(np.float32)\n"
        "try:\n"
        "    checkpoint.save(sys.argv[1], {'w': noise})\n"
        "except checkpoint.CheckpointError as err:\n"
        "    print(err)\n"
    )
    target = tmp_path / "out" / "ckpt"
    done = subprocess.run(
        [sys.executable, "-c", script, str(target)],
        env=ENV,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"{target}: cannot save checkpoint: File too large"
    assert "Traceback" not in done.stderr and "ERROR" not in done.stderr, done.stderr
    assert list(tmp_path.iterdir()) == []  # not even out/


def test_random_reference_on_a_full_disk(tiny_disk, tmp_path, bad_input):
    pytest.importorskip("torch")
    bad_input(
        convert_alexnet.main,
        ["--make-random-reference", str(tiny_disk / "r.pth")],
        "No space left on device",
        tmp_path / "out",
    )
    assert list(tiny_disk.iterdir()) == []


def _ends_with_one_error_line(code, err: str, message: str) -> None:
    """A run that failed after training started: its progress bar precedes the error (on the
    bar's line: the CNN pipeline's bar is not closed before the error is printed)."""
    assert code == 2, err
    assert "Traceback" not in err and "ERROR:" not in err, err
    assert err.count("error: ") == 1, err
    error = err[err.index("error: ") :].strip()
    assert "\n" not in error and message in error, err


# orbax's failed background write leaves a callback for its closed event loop (ignored).
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_a_run_on_a_full_disk_ends_as_one_line(files, full_disk, capsys):
    out = full_disk / "run"
    with pytest.raises(SystemExit) as info:
        run_main(
            cnn_mnist.main,
            [
                "--quick",
                "--epochs",
                "1",
                "--channels",
                "2,2",
                "--hidden",
                "8",
                "--schedule",
                "constant",
                "--data",
                str(files["tiny"]),
                "--out",
                str(out),
            ],
        )
    _ends_with_one_error_line(
        info.value.code, capsys.readouterr().err, "No space left on device"
    )  # the first epoch's checkpoint
    assert leftovers(full_disk) == []
    # nothing half-written: run.json (the directory's claim) stays for a resume, and so do the
    # whole lines metrics.jsonl holds of the epochs that trained
    files = sorted(p for p in full_disk.rglob("*") if p.is_file())
    assert files in ([out / "run.json"], [out / "metrics.jsonl", out / "run.json"]), files
    if out / "metrics.jsonl" in files:
        lines = (out / "metrics.jsonl").read_text().splitlines()
        assert lines and all(json.loads(line)["epoch"] >= 1 for line in lines)


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_a_resumable_run_on_a_full_disk_ends_as_one_line(files, full_disk, capsys):
    with pytest.raises(SystemExit) as info:
        run_main(
            optim_sweep.main,
            [
                "--quick",
                "--optimizers",
                "sgd",
                "--data",
                str(files["tiny"]),
                "--out",
                str(full_disk / "run"),
            ],
        )
    _ends_with_one_error_line(info.value.code, capsys.readouterr().err, "No space left on device")
    assert leftovers(full_disk) == []


# ---------------------------------------------------------------------------- read-only


@pytest.mark.parametrize("cli", ["optim_sweep", "cnn_mnist", "benchmark", "theory_checks"])
def test_out_in_a_read_only_directory(cli, files, readonly_dir, bad_input):
    main, extra = {**MNIST_CLIS, "theory_checks": (theory_checks.main, [])}[cli]
    if cli != "benchmark":
        extra = [*extra, "--data", str(files["tiny"])]
    else:
        extra = ["--quick"]
    line = bad_input(main, extra, "cannot create the directory", readonly_dir / "run")
    assert "--out" in line
    bad_input(main, extra, "directory is not writable", readonly_dir)


def test_random_reference_into_a_read_only_directory(readonly_dir, tmp_path, bad_input):
    bad_input(
        convert_alexnet.main,
        ["--make-random-reference", str(readonly_dir / "r.pth")],
        "not writable",
        tmp_path / "out",
    )


def test_save_into_a_read_only_directory(readonly_dir):
    with pytest.raises(CheckpointError, match=r"cannot (save checkpoint|create its directory)"):
        small_checkpoint(readonly_dir / "ckpt")
    with pytest.raises(CheckpointError, match="cannot create its directory"):
        small_checkpoint(readonly_dir / "sub" / "ckpt")
    assert list(readonly_dir.iterdir()) == []


# ---------------------------------------------------------------------------- real processes


@pytest.fixture(scope="module")
def procs(files):
    """The command lines that must be seen from outside (exit code, raw stderr bytes, argv
    bytes that are not UTF-8), started together: they are mostly interpreter start-up."""
    tmp = files["tmp"]
    odd = tmp / NON_UTF8
    odd.mkdir()
    (odd / "empty.png").write_bytes(b"")
    marker = odd / "payload-ran"
    evil = evil_pickle(odd / "evil.pkl.gz", marker)
    tiny = shutil.copy(files["tiny"], odd / "tiny.pkl.gz")
    cases = {
        "image": ["-m", "experiments.alexnet_readout", odd / "empty.png", "--out", odd / "o1"],
        "evil": ["-m", "experiments.optim_sweep", "--quick", "--data", evil, "--out", odd / "o2"],
        "data_check": ["-m", "hw5jax.data", "check", "--data", evil],
        "cnn_ok": [
            "-m",
            "experiments.cnn_mnist",
            "--quick",
            "--epochs",
            "1",
            "--channels",
            "2,2",
            "--hidden",
            "8",
            "--schedule",
            "constant",
            "--data",
            tiny,
            "--out",
            odd / "cnn",
        ],
        # PYTHONIOENCODING=utf-8: stdout as strict as under an en_US.UTF-8 locale.
        "sweep_ok": [
            "-m",
            "experiments.optim_sweep",
            "--quick",
            "--optimizers",
            "sgd",
            "--data",
            tiny,
            "--out",
            odd / "sweep",
        ],
    }
    running = {}
    for name, args in cases.items():
        argv = [os.fsencode(a) if isinstance(a, Path) else a.encode() for a in args]
        env = {**ENV, "PYTHONIOENCODING": "utf-8"} if name == "sweep_ok" else ENV
        running[name] = subprocess.Popen(
            [os.fsencode(sys.executable), *argv],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
    finished = {}
    try:
        for name, proc in running.items():
            out, err = proc.communicate(timeout=300)
            finished[name] = (proc.returncode, out, err)
    finally:
        for proc in running.values():
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    return {"runs": finished, "odd": odd, "marker": marker}


@pytest.mark.parametrize(
    "case,message",
    [
        ("image", b"not an image file"),
        ("evil", b"refused global"),
        ("data_check", b"refused global"),
    ],
)
def test_non_utf8_paths_end_as_one_printable_line(procs, case, message):
    code, _, stderr = procs["runs"][case]
    line = one_error_line(code, stderr)
    assert message.decode() in line
    assert "\\udcff" in line or "\\xff" in line  # the odd byte, escaped, not a crash
    assert not procs["marker"].exists()
    assert not (procs["odd"] / "o1").exists() and not (procs["odd"] / "o2").exists()


def test_a_run_under_a_non_utf8_directory_succeeds(procs):
    code, stdout, stderr = procs["runs"]["cnn_ok"]
    assert code == 0, stderr.decode("utf-8", "backslashreplace")
    run = procs["odd"] / "cnn"
    assert os.fsencode(run) + b"/results.json" in stdout
    result = json.loads((run / "results.json").read_text())
    assert result["data"]["source"] == str(procs["odd"] / "tiny.pkl.gz")
    (saved,) = (run / "checkpoints").iterdir()
    state, meta = checkpoint.restore(saved)
    assert meta["experiment"] == "cnn_mnist" and "params" in state
    assert (run / "table.md").read_text(encoding="utf-8")  # valid UTF-8: escaped, not raw
    assert leftovers(run) == []


def test_a_resumable_run_under_a_non_utf8_directory_with_a_strict_stdout(procs):
    code, stdout, stderr = procs["runs"]["sweep_ok"]
    assert code == 0, stderr.decode("utf-8", "backslashreplace")
    run = procs["odd"] / "sweep"
    result = json.loads((run / "results.json").read_text())
    (saved,) = result["optimizers"]["sgd"]["checkpoints"]
    assert checkpoint.restore(saved)[1]["optimizer"] == "sgd"
    assert leftovers(run) == []
