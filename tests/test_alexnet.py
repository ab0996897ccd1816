"""AlexNet port (Problem 4): parity with a PyTorch reference built with torchvision's module
names, conversion errors, and the convert/readout command lines on good and bad input.

Pretrained weights cannot be downloaded here, so parity is proven with random weights: a
.pth is saved, converted by the real command line, restored from the orbax checkpoint, and
both networks run on the same photos in float32 at the highest matmul precision.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import types
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from numerics import rel_err

from hw5jax.alexnet import convert
from hw5jax.alexnet.images import load_image
from hw5jax.errors import ImageError
from hw5jax.models import alexnet
from hw5jax.runs import checkpoint

ROOT = Path(__file__).resolve().parents[1]
TORCH_REASON = "torch is needed for AlexNet parity (pip install torch==2.13.0; `make test` does)"


def _photo_paths(tmp: Path) -> dict[str, Path]:
    """The offline test photos shipped in packages, as files."""
    from matplotlib import cbook

    paths = {"grace_hopper": Path(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))}
    skdata = pytest.importorskip("skimage.data", reason="scikit-image provides test photos")
    from PIL import Image

    for name in ("chelsea", "coffee", "astronaut"):
        paths[name] = tmp / f"{name}.png"
        Image.fromarray(getattr(skdata, name)()).save(paths[name])
    return paths


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> dict[str, Path]:
    return _photo_paths(tmp_path_factory.mktemp("photos"))


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """(torch reference model, its .pth, the checkpoint dir made by the convert command)."""
    torch = pytest.importorskip("torch", reason=TORCH_REASON)
    from experiments import convert_alexnet

    tmp = tmp_path_factory.mktemp("alexnet")
    model = convert.torch_reference_alexnet(seed=0)
    pth = tmp / "alexnet_random.pth"
    torch.save(model.state_dict(), pth)  # what --make-random-reference writes
    convert_alexnet.main([str(pth), "--out", str(tmp / "ckpt")])
    return model, pth, tmp / "ckpt"


@pytest.fixture(scope="module")
def restored(reference):
    params, meta = convert.restore_params(reference[2])
    return params, meta


def _torch_outputs(model, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(conv1 NHWC, logits) of the torch reference on x: float32[N, H, W, 3]."""
    import torch

    with torch.no_grad():
        xt = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
        conv1 = model.features[0](xt).numpy().transpose(0, 2, 3, 1)
        logits = model(xt).numpy()
    return conv1, logits


# Parity: the largest error relative to the largest output. Float32 sums of 363 (conv1) and
# 4096 (fc) terms taken in another order than PyTorch's differ by a few sqrt(K) * 1.2e-7.
CONV1_TOL, LOGITS_TOL = 5e-6, 2e-5


# Jitted: one compile per input shape costs less CPU than running op by op.
_apply = jax.jit(alexnet.apply, static_argnames="names")


def _jax_outputs(params, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    with jax.default_matmul_precision("highest"):
        acts = _apply(params, jnp.asarray(x), names=("conv1", "logits"))
    return np.asarray(acts["conv1"]), np.asarray(acts["logits"])


# 224 and 227 reach the 6x6 adaptive pool with a 6x6 map (the pool is the identity); 256 and
# 320 reach it with 7x7 and 9x9 (overlapping bins of unequal size).
@pytest.mark.parametrize(
    "size,photo",
    [
        pytest.param(224, "grace_hopper", marks=pytest.mark.slow),
        (227, "chelsea"),
        pytest.param(256, "coffee", marks=pytest.mark.slow),
        pytest.param(320, "astronaut", marks=pytest.mark.slow),
    ],
)
def test_parity_with_pytorch(reference, restored, photos, size, photo, cli_procs):
    # (cli_procs: the command-line runs start here, to run while parity is checked.)
    model, _, _ = reference
    params, _ = restored
    x = load_image(photos[photo], size, fit="resize")[None]
    conv1_t, logits_t = _torch_outputs(model, x)
    conv1_j, logits_j = _jax_outputs(params, x)

    out = (size + 4 - 11) // 4 + 1
    assert conv1_j.shape == (1, out, out, 64)
    assert logits_j.shape == (1, 1000)
    conv1_err, logits_err = rel_err(conv1_j, conv1_t), rel_err(logits_j, logits_t)
    print(
        f"size {size}: conv1 rel err {conv1_err:.2e}, logits {logits_err:.2e} "
        f"(logits std {logits_t.std():.2f})"
    )
    assert conv1_err <= CONV1_TOL
    assert logits_err <= LOGITS_TOL
    # The check means something only if the logits are not all alike (e.g. bias-dominated).
    assert logits_t.std() > 0.5
    assert np.argmax(logits_j) == np.argmax(logits_t)


def test_pool_bins_are_exercised():
    assert [alexnet.feature_size(s) for s in (224, 227, 256, 320)] == [6, 6, 7, 9]


def test_parity_batch_of_two(reference, restored, photos):
    model, _, _ = reference
    x = np.stack([load_image(photos[p], 227, fit="pad") for p in ("grace_hopper", "coffee")])
    conv1_t, logits_t = _torch_outputs(model, x)
    conv1_j, logits_j = _jax_outputs(restored[0], x)
    assert rel_err(conv1_j, conv1_t) <= CONV1_TOL
    assert rel_err(logits_j, logits_t) <= LOGITS_TOL


def test_fc6_permutation_matters(reference, restored, photos):
    """Without the C*H*W -> H*W*C reordering, parity fails: the test above can see it."""
    model, _, _ = reference
    params = dict(restored[0])
    sd = {k: v.numpy() for k, v in model.state_dict().items()}
    params["fc6"] = {"kernel": sd["classifier.1.weight"].T, "bias": params["fc6"]["bias"]}
    x = load_image(photos["chelsea"], 227)[None]
    _, logits_t = _torch_outputs(model, x)
    _, logits_j = _jax_outputs(params, x)
    assert rel_err(logits_j, logits_t) > 100 * LOGITS_TOL


@pytest.mark.parametrize("size", [2, 7, 13])  # fewer rows than bins, overlapping, uneven
def test_adaptive_avg_pool_matches_pytorch(size):
    torch = pytest.importorskip("torch", reason=TORCH_REASON)
    x = np.random.default_rng(size).standard_normal((2, size, size + 3, 4)).astype(np.float32)
    want = (
        torch.nn.functional.adaptive_avg_pool2d(torch.from_numpy(x.transpose(0, 3, 1, 2)), (6, 6))
        .numpy()
        .transpose(0, 2, 3, 1)
    )
    got = np.asarray(alexnet.adaptive_avg_pool(jnp.asarray(x)))
    np.testing.assert_allclose(got, want, atol=1e-6)


def _shapes_of(x_shape, names=("logits",)):
    """Output shapes of alexnet.apply without computing anything."""
    return jax.eval_shape(
        lambda p, x: alexnet.apply(p, x, names),
        alexnet.param_shapes(),
        jax.ShapeDtypeStruct(x_shape, jnp.float32),
    )


def test_smallest_input_is_63():
    assert alexnet.feature_size(63) == 1 and alexnet.feature_size(62) == 0
    assert _shapes_of((1, 63, 63, 3))["logits"].shape == (1, 1000)
    with pytest.raises(ValueError, match="minimum 63"):
        _shapes_of((1, 62, 70, 3))


def test_activation_names_and_shapes():
    acts = _shapes_of((2, 227, 227, 3), alexnet.ACTIVATION_NAMES)
    assert sorted(acts) == sorted(alexnet.ACTIVATION_NAMES)
    assert acts["conv1"].shape == (2, 56, 56, 64)
    assert acts["pool5"].shape == (2, 6, 6, 256)
    assert acts["flatten"].shape == (2, 9216)
    assert acts["logits"].shape == (2, 1000)
    with pytest.raises(ValueError, match="unknown activation"):
        _shapes_of((1, 227, 227, 3), ("conv9",))


def _shapes(**changes):
    """A fake state_dict: only shapes matter to check_state_dict."""
    sd = {k: types.SimpleNamespace(shape=s) for k, s in convert.TORCH_SHAPES.items()}
    for key, shape in changes.items():
        key = key.replace("__", ".")
        if shape is None:
            del sd[key]
        else:
            sd[key] = types.SimpleNamespace(shape=shape)
    return sd


def test_state_dict_check_lists_every_problem():
    sd = _shapes(
        features__0__weight=(96, 3, 11, 11),
        classifier__6__bias=None,
        classifier__7__weight=(10, 4096),
    )
    with pytest.raises(convert.ConversionError) as info:
        convert.check_state_dict(sd, source="model.pth")
    err = info.value
    assert err.missing == ["classifier.6.bias"]
    assert err.unexpected == ["classifier.7.weight"]
    assert err.mismatched == {"features.0.weight": ((96, 3, 11, 11), (64, 3, 11, 11))}
    message = str(err)
    assert "\n" not in message
    for part in (
        "model.pth",
        "classifier.6.bias",
        "classifier.7.weight",
        "features.0.weight",
        "(96, 3, 11, 11)",
    ):
        assert part in message
    convert.check_state_dict(_shapes())  # the real layout passes


def test_conversion_layouts():
    rng = np.random.default_rng(0)
    sd = {
        k: rng.standard_normal(s).astype(np.float32)
        if len(s) < 2 or s[1] < 1000
        else np.zeros(s, np.float32)
        for k, s in convert.TORCH_SHAPES.items()
    }
    sd["classifier.1.weight"][5, 2 * 36 + 3 * 6 + 4] = 1.0  # output 5 reads (c=2, h=3, w=4)
    params = convert.convert_state_dict(sd)
    assert params["conv1"]["kernel"].shape == (11, 11, 3, 64)
    np.testing.assert_array_equal(
        params["conv2"]["kernel"][1, 2, 3, 4], sd["features.3.weight"][4, 3, 1, 2]
    )
    fc6 = params["fc6"]["kernel"]
    assert fc6.shape == (9216, 4096)
    assert fc6[(3 * 6 + 4) * 256 + 2, 5] == 1.0 and fc6.sum() == 1.0  # NHWC flatten index
    assert params["fc8"]["kernel"].shape == (4096, 1000)
    shapes = alexnet.param_shapes()
    assert jax.tree.map(np.shape, params) == jax.tree.map(lambda s: s.shape, shapes)


def test_pretrained_is_decided_by_sha256(tmp_path):
    f = tmp_path / "alexnet-owt-7be5be79.pth"  # the right name does not make it pretrained
    f.write_bytes(b"not the weights")
    assert convert.provenance(f)["pretrained"] is False
    assert convert.provenance(f, sha256="7be5be79" + "0" * 56)["pretrained"] is True
    assert convert.provenance(f)["source"] == "alexnet-owt-7be5be79.pth"


def test_checkpoint_records_provenance(reference, restored):
    _, pth, _ = reference
    _, meta = restored
    assert meta["source"] == pth.name
    assert meta["sha256"] == convert.sha256_file(pth)
    assert meta["pretrained"] is False
    assert meta["architecture"] == convert.ARCHITECTURE


# ---- the command lines, as a user runs them (subprocesses, started together: they are
# mostly interpreter start-up and imports) ----


@pytest.fixture(scope="module")
def cli_procs(reference, photos, tmp_path_factory):
    """Start every command-line case at once: {case: (process, its --out dir)}."""
    import torch

    tmp = tmp_path_factory.mktemp("cli")
    ckpt = str(reference[2])
    not_image = tmp / "notes.jpg"
    not_image.write_text("this is not a picture\n")
    truncated = tmp / "truncated.jpg"
    truncated.write_bytes(photos["grace_hopper"].read_bytes()[:5000])
    from PIL import Image

    small = tmp / "small.png"
    Image.new("RGB", (200, 50), (120, 30, 60)).save(small)
    foreign = tmp / "foreign_ckpt"
    checkpoint.save(
        foreign, {"params": {"dense": {"kernel": np.zeros((3, 2), np.float32)}}}, {"model": "mlp"}
    )
    other_arch = tmp / "resnet_like.pth"
    torch.save(
        torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.Linear(8, 2)).state_dict(),
        other_arch,
    )
    grace = str(photos["grace_hopper"])
    readout = [sys.executable, "-m", "experiments.alexnet_readout"]
    cases = {
        "ok": readout + [grace, str(photos["chelsea"]), "--weights", ckpt],
        "not_image": readout + [str(not_image), "--weights", ckpt],
        "truncated": readout + [str(truncated), "--weights", ckpt],
        "too_small": readout + [str(small), "--weights", ckpt, "--fit", "crop"],
        "missing_ckpt": readout + [grace, "--weights", str(tmp / "nowhere")],
        "foreign_ckpt": readout + [grace, "--weights", str(foreign)],
        "other_arch": [sys.executable, "-m", "experiments.convert_alexnet", str(other_arch)],
    }
    env = {**os.environ, "PYTHONPATH": str(ROOT), "JAX_PLATFORMS": "cpu"}
    procs = {}
    for name, cmd in cases.items():
        out = tmp / f"out_{name}"
        procs[name] = (
            subprocess.Popen(
                cmd + ["--out", str(out)],
                cwd=ROOT,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            ),
            out,
        )
    yield procs
    for proc, _ in procs.values():  # only if a test failed before waiting for them
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


@pytest.fixture(scope="module")
def cli_runs(cli_procs):
    """{case: (returncode, stdout, stderr, out)} once every run has finished."""
    runs = {}
    for name, (proc, out) in cli_procs.items():
        stdout, stderr = proc.communicate(timeout=300)
        runs[name] = (proc.returncode, stdout, stderr, out)
    return runs


def test_readout_end_to_end(cli_runs):
    code, stdout, stderr, out = cli_runs["ok"]
    assert code == 0, stderr
    assert "64 x 56 x 56" in stdout
    assert "not torchvision's pretrained" in stderr  # announced on every run
    results = json.loads((out / "results.json").read_text())
    assert results["experiment"] == "alexnet_readout"
    assert results["weights"]["pretrained"] is False
    assert results["weights"]["source"] == "alexnet_random.pth"
    assert len(results["weights"]["sha256"]) == 64
    assert results["weights"]["notice"]
    assert len(results["images"]) == 2
    for record in results["images"]:
        assert record["input_shape"] == [227, 227, 3]
        assert record["conv1_shape"] == [64, 56, 56]
        assert record["final_layer_dim"] == 1000
        probs = [p["probability"] for p in record["top5"]]
        assert len(probs) == 5 and probs == sorted(probs, reverse=True) and sum(probs) <= 1
        assert all(isinstance(p["index"], int) and p["name"] for p in record["top5"])
        assert (out / record["figure"]).stat().st_size > 10_000
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]


@pytest.mark.parametrize(
    "case,expected",
    [
        ("not_image", "not an image"),
        ("truncated", "truncated"),
        ("too_small", "smaller than AlexNet's minimum 63x63"),
        ("missing_ckpt", "no checkpoint directory"),
        ("foreign_ckpt", "not an AlexNet checkpoint"),
        ("other_arch", "not a torchvision AlexNet state_dict"),
    ],
)
def test_bad_input_is_one_clear_line(cli_runs, case, expected):
    code, stdout, stderr, out = cli_runs[case]
    assert code != 0
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("error: ") and expected in lines[0], lines[0]
    assert "Traceback" not in stderr
    assert not out.exists()  # nothing written


def test_unreadable_pth_files(tmp_path):
    torch = pytest.importorskip("torch", reason=TORCH_REASON)
    whole_model = tmp_path / "whole.pth"
    torch.save(torch.nn.Linear(2, 2), whole_model)  # a pickled module, not a state_dict
    a_list = tmp_path / "list.pth"
    torch.save([torch.zeros(2)], a_list)
    cut = tmp_path / "cut.pth"
    torch.save({"w": torch.zeros(1000)}, tmp_path / "full.pth")
    cut.write_bytes((tmp_path / "full.pth").read_bytes()[:600])
    text = tmp_path / "notes.pth"
    text.write_text("hello\n")
    for path, expected in [
        (whole_model, "Python objects"),
        (a_list, "holds a list"),
        (cut, "truncated"),
        (text, "not a PyTorch .pth"),
        (tmp_path / "nope.pth", "no such file"),
    ]:
        with pytest.raises(convert.ConversionError, match=expected):
            convert.load_torch_state_dict(path)


def test_sample_photos_by_name(photos):
    from hw5jax.alexnet.images import SAMPLES, resolve

    for name in SAMPLES:
        assert np.array_equal(load_image(f"sample:{name}"), load_image(photos[name]))
    assert resolve("x/sample:chelsea.png") == Path("x/sample:chelsea.png")  # a plain path
    with pytest.raises(ImageError, match="no such sample photo"):
        resolve("sample:tiger")
