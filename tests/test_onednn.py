"""oneDNN convolutions through the XLA FFI (hw5jax.kernels): outputs and both gradients equal
`lax.conv_general_dilated` at the highest precision (under jit, inside a scan, under vmap),
a CNN trains to the same parameters with either convolution, `resolve` falls back or refuses
in one line, and the build is cached."""

from __future__ import annotations

import functools
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from numerics import rel_err

from hw5jax.configs.cnn import RECIPES
from hw5jax.core.optim import full_hparams
from hw5jax.core.train import Trainer
from hw5jax.errors import ConfigError
from hw5jax.kernels import build as kbuild
from hw5jax.kernels import conv as kconv
from hw5jax.kernels.conv import onednn_conv, resolve
from hw5jax.models.cnn import CNN

needs_onednn = pytest.mark.skipif(
    not kconv.available(),
    reason=f"oneDNN convolutions not built ({kconv.unavailable_reason()}): "
    "`python -m hw5jax.kernels.build`",
)
TOL = 1e-5
NHWC = ("NHWC", "HWIO", "NHWC")


def reference(x, w, strides=(1, 1), padding="SAME"):
    return jax.lax.conv_general_dilated(
        x, w, strides, padding, dimension_numbers=NHWC, precision=jax.lax.Precision.HIGHEST
    )


def parity(conv, x, w, strides=(1, 1), padding="SAME") -> dict[str, float]:
    """Relative errors of `conv`'s output and its gradients w.r.t. input and kernel (jitted,
    one fixed random cotangent) against `reference`."""

    def out_and_grads(f):
        def run(x, w):
            y, vjp = jax.vjp(lambda x, w: f(x, w, strides, padding), x, w)
            cot = jax.random.normal(jax.random.PRNGKey(7), y.shape)
            return (y, *vjp(cot))

        return jax.jit(run)(x, w)

    ours, ref = out_and_grads(conv), out_and_grads(reference)
    return {k: rel_err(a, b) for k, a, b in zip(("y", "dx", "dw"), ours, ref, strict=True)}


def operands(x_shape, w_shape, seed=0):
    kx, kw = jax.random.split(jax.random.PRNGKey(seed))
    return jax.random.normal(kx, x_shape), jax.random.normal(kw, w_shape)


def _network_shapes(channels, k=5, batch=8):
    c1, c2 = channels
    return [((batch, 28, 28, 1), (k, k, 1, c1)), ((batch, 14, 14, c1), (k, k, c1, c2))]


# The homework network's two convolutions in the fast tier; the other shapes in the long one.
HOMEWORK_SHAPES = _network_shapes(RECIPES["homework"]["channels"])
OTHER_SHAPES = sorted(
    {
        *_network_shapes(RECIPES["best"]["channels"]),
        ((2, 7, 9, 3), (3, 3, 3, 5)),  # odd sizes
        ((1, 14, 14, 32), (5, 5, 32, 64)),  # batch 1
    }
    - set(HOMEWORK_SHAPES)
)
SHAPES = [*HOMEWORK_SHAPES, *(pytest.param(*s, marks=pytest.mark.slow) for s in OTHER_SHAPES)]


@needs_onednn
@pytest.mark.parametrize("x_shape,w_shape", SHAPES)
def test_output_and_both_gradients_equal_lax_conv(x_shape, w_shape):
    errors = parity(onednn_conv, *operands(x_shape, w_shape))
    assert max(errors.values()) < TOL, errors


@needs_onednn
@pytest.mark.parametrize(
    "strides,padding",
    [
        ((2, 1), "SAME"),
        pytest.param((1, 1), "VALID", marks=pytest.mark.slow),
        pytest.param((1, 1), ((1, 2), (0, 1)), marks=pytest.mark.slow),
    ],
)
def test_other_paddings_and_strides_equal_lax_conv(strides, padding):
    errors = parity(onednn_conv, *operands((2, 9, 8, 3), (3, 5, 3, 4)), strides, padding)
    assert max(errors.values()) < TOL, errors


@needs_onednn
def test_a_wrong_kernel_is_caught_by_the_parity_check():
    flipped = lambda x, w, s, p: onednn_conv(x, w[::-1, ::-1], s, p)
    errors = parity(flipped, *operands((2, 7, 9, 3), (3, 3, 3, 5)))
    assert errors["y"] > 0.1 and errors["dw"] > 0.1


@needs_onednn
def test_inside_a_scan_equals_lax_conv():
    x, w = operands((4, 14, 14, 8), (5, 5, 8, 8))
    w = w / 20.0  # tanh stays off its flat tails: a well-conditioned chain

    def run(conv):
        def loss(w):
            def body(h, _):
                return jnp.tanh(conv(h, w, (1, 1), "SAME")), None

            return jnp.sum(jax.lax.scan(body, x, None, length=3)[0] ** 2)

        return jax.jit(jax.value_and_grad(loss))(w)

    (v1, g1), (v2, g2) = run(onednn_conv), run(reference)
    assert rel_err(v1, v2) < TOL and rel_err(g1, g2) < TOL


@needs_onednn
@pytest.mark.parametrize(
    "in_axes",
    [(0, 0), *(pytest.param(a, marks=pytest.mark.slow) for a in ((None, 0), (0, None)))],
)
def test_under_vmap_equals_lax_conv(in_axes):
    """A stack of 3 kernels over one input, 3 inputs through one kernel, and both stacked;
    outputs and the gradients of a loss of the whole stack."""
    x, w = operands((3, 4, 14, 14, 6), (3, 5, 5, 6, 7))
    x = x if in_axes[0] == 0 else x[0]
    w = w if in_axes[1] == 0 else w[0]

    def run(conv):
        f = jax.vmap(lambda x, w: conv(x, w, (1, 1), "SAME"), in_axes)
        y = jax.jit(f)(x, w)
        grads = jax.jit(jax.grad(lambda x, w: jnp.sum(jnp.sin(f(x, w))), (0, 1)))(x, w)
        return y, *grads

    for ours, ref in zip(run(onednn_conv), run(reference), strict=True):
        assert ours.shape == ref.shape and rel_err(ours, ref) < TOL


def _train(conv: str, steps: int = 4, batch: int = 16) -> list[np.ndarray]:
    """SGD: Adam's first steps divide each gradient by its own size, so float rounding in a
    near-zero gradient would move a parameter by a whole learning rate either way."""
    model_fn = functools.partial(CNN, (8, 16), (32,), weight_init="torch", conv=conv)
    trainer = Trainer(model_fn, "sgd", batch_size=batch, n_train=steps * batch)
    hp = full_hparams("sgd", {"learning_rate": 0.1})
    state = trainer.init_jit(jnp.uint32(0), {k: jnp.float32(v) for k, v in hp.items()})
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.integers(0, 256, (steps * batch, 28, 28, 1), dtype=np.uint8))
    y = jnp.asarray(rng.integers(0, 10, steps * batch, dtype=np.int32))
    state, metrics = trainer.epoch_jit(state, x, y)
    assert bool(metrics["finite"]) and int(state["step"]) == steps
    return [np.asarray(p) for p in jax.tree.leaves(state["params"])]


@needs_onednn
def test_a_cnn_trains_to_the_same_parameters_with_either_convolution():
    xla, onednn = _train("xla"), _train("onednn")
    assert [p.shape for p in xla] == [p.shape for p in onednn]
    errors = [rel_err(a, b) for a, b in zip(onednn, xla, strict=True)]
    assert max(errors) < TOL, errors


def test_the_convolution_does_not_change_the_parameters_shapes():
    shapes = lambda conv: jax.tree.map(
        lambda a: a.shape, nnx_state(functools.partial(CNN, conv=conv))
    )
    assert shapes("xla") == shapes("onednn")
    with pytest.raises(ValueError, match="unknown conv"):
        CNN(conv="auto", rngs=__import__("flax").nnx.Rngs(0))


def nnx_state(model_fn):
    from flax import nnx

    return nnx.state(nnx.eval_shape(lambda: model_fn(rngs=nnx.Rngs(0))), nnx.Param)


@pytest.fixture
def not_built(monkeypatch):
    """The library made unavailable."""
    monkeypatch.setattr(kconv, "_loaded", {"error": "/x/libhw5jax_onednn.so is not built"})


def test_resolve_onednn_without_the_library_is_a_one_line_config_error(not_built):
    with pytest.raises(ConfigError) as err:
        resolve("onednn")
    message = str(err.value)
    assert "\n" not in message and "python -m hw5jax.kernels.build" in message
    assert "is not built" in message
    with pytest.raises(ConfigError, match="use one of"):
        resolve("cudnn")


def test_resolve_auto_without_the_library_falls_back_in_one_line(not_built, capsys):
    assert resolve("auto") == "xla" and resolve("xla") == "xla"
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "XLA convolutions run" in err and "is not built" in err
    with pytest.raises(ConfigError, match="not built"):
        onednn_conv(jnp.zeros((1, 4, 4, 1)), jnp.zeros((3, 3, 1, 1)))


@needs_onednn
def test_resolve_auto_picks_onednn_on_the_cpu(capsys):
    assert resolve("auto") == "onednn" and resolve("onednn") == "onednn"
    assert capsys.readouterr().err == ""


@needs_onednn
def test_a_second_build_is_up_to_date_and_does_not_compile(tmp_path, monkeypatch):
    first = kbuild.build(tmp_path, verbose=False)
    assert first.status == "built" and first.library is not None
    before = first.library.stat()

    def no_compiler(*args, **kwargs):
        raise AssertionError("compiled again")

    monkeypatch.setattr(kbuild.subprocess, "run", no_compiler)
    second = kbuild.build(tmp_path, verbose=False)
    assert second.status == "up to date" and second.library == first.library
    assert first.library.stat().st_mtime_ns == before.st_mtime_ns
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_without_a_compiler_the_build_is_skipped_in_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(kbuild.shutil, "which", lambda _: None)
    result = kbuild.build(tmp_path)
    assert result.status == "skipped" and result.library is None
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "no g++" in out
    monkeypatch.setattr("sys.argv", ["build"])
    assert kbuild.main() == 0
    assert list(tmp_path.iterdir()) == []


@needs_onednn
@pytest.mark.parametrize(
    "change, message",
    [
        (dict(rhs_dilation=(2, 2)), "only NHWC x HWIO, no dilation, one group"),
        (dict(dimension_numbers=("NCHW", "OIHW", "NCHW")), "only NHWC x HWIO"),
        (dict(dtype=jnp.bfloat16), "float32 only, not bfloat16 x bfloat16"),
        (dict(window_strides=(0, 1)), "onednn_conv: strides (0, 1)"),
        (dict(padding=((-1, 0), (0, 0))), "onednn_conv: strides (1, 1), padding"),
    ],
)
def test_what_it_cannot_compute_is_a_one_line_error(change, message):
    x = jnp.ones((2, 8, 8, 3), change.pop("dtype", jnp.float32))
    w = jnp.ones((3, 3, 3, 4), x.dtype)
    with pytest.raises(ValueError, match=re.escape(message)) as e:
        onednn_conv(x, w, **change)
    assert "\n" not in str(e.value)
