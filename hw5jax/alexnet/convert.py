"""torchvision AlexNet state_dict -> Flax params (hw5jax.models.alexnet), and the checkpoint
that holds them (Problem 4.1).

    state_dict = load_torch_state_dict("alexnet-owt-7be5be79.pth")   # {key: float32 ndarray}
    params = convert_state_dict(state_dict)                          # {"conv1": {"kernel", ...}}
    save_params("weights/alexnet", params, provenance("alexnet-owt-7be5be79.pth"))
    params, meta = restore_params("weights/alexnet")

Layouts: PyTorch convolutions are OIHW and ours HWIO; PyTorch's Linear stores [out, in] and
computes x @ W.T, ours [in, out]. fc6 also reorders its inputs: PyTorch flattens the
[256, 6, 6] feature map in C*H*W order, NHWC flattens it in H*W*C order.

torch is needed only to read a .pth (`load_torch_state_dict`) and for the random reference
(`torch_reference_alexnet`); it is imported there, not at module import.
"""

from __future__ import annotations

import errno
import os
import pickle
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from hw5jax.data.fetch import sha256_file
from hw5jax.errors import ConversionError
from hw5jax.runs import checkpoint
from hw5jax.runs.checkpoint import CheckpointError

ARCHITECTURE = "torchvision.models.alexnet"
# torchvision's pretrained file is `alexnet-owt-7be5be79.pth`; torch.hub names such files after
# the first 8 hex digits of their sha256, so this prefix identifies it.
PRETRAINED_FILE = "alexnet-owt-7be5be79.pth"
PRETRAINED_SHA256_PREFIX = "7be5be79"
PRETRAINED_URL = "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth"

# torchvision module name -> our layer name.
LAYER_NAMES = {
    "features.0": "conv1",
    "features.3": "conv2",
    "features.6": "conv3",
    "features.8": "conv4",
    "features.10": "conv5",
    "classifier.1": "fc6",
    "classifier.4": "fc7",
    "classifier.6": "fc8",
}

# torchvision's state_dict: key -> shape (OIHW for convolutions, [out, in] for Linear).
TORCH_SHAPES: dict[str, tuple[int, ...]] = {
    "features.0.weight": (64, 3, 11, 11),
    "features.0.bias": (64,),
    "features.3.weight": (192, 64, 5, 5),
    "features.3.bias": (192,),
    "features.6.weight": (384, 192, 3, 3),
    "features.6.bias": (384,),
    "features.8.weight": (256, 384, 3, 3),
    "features.8.bias": (256,),
    "features.10.weight": (256, 256, 3, 3),
    "features.10.bias": (256,),
    "classifier.1.weight": (4096, 256 * 6 * 6),
    "classifier.1.bias": (4096,),
    "classifier.4.weight": (4096, 4096),
    "classifier.4.bias": (4096,),
    "classifier.6.weight": (1000, 4096),
    "classifier.6.bias": (1000,),
}
FEATURE_MAP = (256, 6, 6)  # (C, H, W) that classifier.1 reads, flattened


def _some(items: list[str], limit: int = 4) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f", ... ({len(items) - limit} more)" if len(items) > limit else "")


def check_state_dict(state_dict: Mapping[str, Any], source: str = "state_dict") -> None:
    """Raise ConversionError unless `state_dict` has exactly torchvision AlexNet's keys and
    shapes (TORCH_SHAPES). The message lists missing, unexpected and mismatched keys."""
    missing = [k for k in TORCH_SHAPES if k not in state_dict]
    unexpected = [str(k) for k in state_dict if k not in TORCH_SHAPES]
    mismatched = {}
    for key, want in TORCH_SHAPES.items():
        if key in state_dict:
            got = tuple(getattr(state_dict[key], "shape", ()))
            if got != want:
                mismatched[key] = (got, want)
    if not (missing or unexpected or mismatched):
        return
    problems = []
    if missing:
        problems.append(f"missing {len(missing)} key(s): {_some(missing)}")
    if unexpected:
        problems.append(f"unexpected {len(unexpected)} key(s): {_some(unexpected)}")
    if mismatched:
        shown = [f"{k} {got} (expected {want})" for k, (got, want) in mismatched.items()]
        problems.append(f"{len(mismatched)} shape mismatch(es): {_some(shown, 3)}")
    raise ConversionError(
        f"{source}: not a torchvision AlexNet state_dict: " + "; ".join(problems),
        missing,
        unexpected,
        mismatched,
    )


def convert_state_dict(state_dict: Mapping[str, Any]) -> dict[str, dict[str, np.ndarray]]:
    """torchvision AlexNet state_dict (arrays, any float dtype) -> Flax params.

    Returns {"conv1".."conv5": {"kernel": float32[kh, kw, in, out], "bias": [out]},
    "fc6".."fc8": {"kernel": float32[in, out], "bias": [out]}}, the pure-dict form of
    hw5jax.models.alexnet.AlexNet's parameters.
    """
    check_state_dict(state_dict)
    params: dict[str, dict[str, np.ndarray]] = {}
    for module, layer in LAYER_NAMES.items():
        weight = np.asarray(state_dict[f"{module}.weight"], dtype=np.float32)
        bias = np.asarray(state_dict[f"{module}.bias"], dtype=np.float32)
        if weight.ndim == 4:
            kernel = weight.transpose(2, 3, 1, 0)  # OIHW -> HWIO
        elif layer == "fc6":
            # Column j of PyTorch's weight reads input c*36 + h*6 + w; NHWC's flatten puts that
            # value at h*6*256 + w*256 + c. Reorder the columns to (h, w, c), then transpose.
            out_features = weight.shape[0]
            kernel = weight.reshape(out_features, *FEATURE_MAP).transpose(0, 2, 3, 1)
            kernel = kernel.reshape(out_features, -1).T
        else:
            kernel = weight.T  # [out, in] -> [in, out]
        params[layer] = {"kernel": np.ascontiguousarray(kernel), "bias": bias}
    return params


def load_torch_state_dict(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read a .pth with torch.load(weights_only=True) (no arbitrary code runs) and return
    {key: float32 ndarray}. Raises ConversionError if it cannot be read or holds no state_dict
    (the AlexNet check itself is `check_state_dict`)."""
    path = Path(path)
    if not path.is_file():
        raise ConversionError(f"{path}: no such file (expected a PyTorch .pth state_dict)")
    try:
        import torch
    except ImportError as err:
        raise ConversionError(
            "reading a .pth needs PyTorch: .venv/bin/pip install torch==2.13.0"
        ) from err
    with open(path, "rb") as f:
        magic = f.read(2)
    # torch.save writes a zip archive (since torch 1.6) or, before that, a pickle (b"\x80").
    if magic == b"PK" and not zipfile.is_zipfile(path):
        raise ConversionError(f"{path}: damaged or truncated .pth (incomplete zip archive)")
    if not (magic == b"PK" or magic[:1] == b"\x80"):
        raise ConversionError(f"{path}: not a PyTorch .pth file (neither zip nor pickle)")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:  # what weights_only=True raises for other objects
        raise ConversionError(
            f"{path}: holds Python objects, not only tensors (a whole pickled model?); "
            "save and convert its state_dict() instead"
        ) from err
    except Exception as err:  # a damaged archive: RuntimeError, EOFError, ...
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ConversionError(f"{path}: cannot read as a PyTorch .pth file: {first}") from err
    if not isinstance(obj, Mapping):
        raise ConversionError(f"{path}: holds a {type(obj).__name__}, not a state_dict")
    out = {}
    for key, value in obj.items():
        if isinstance(value, torch.Tensor):
            out[str(key)] = value.detach().to(torch.float32).numpy()
        else:  # kept so check_state_dict reports it as unexpected
            out[str(key)] = value
    return out


def provenance(path: str | os.PathLike, sha256: str | None = None) -> dict[str, Any]:
    """The checkpoint metadata for weights converted from `path`: source file name, sha256,
    and whether it is torchvision's pretrained file (by its sha256 prefix, not its name)."""
    sha256 = sha256 or sha256_file(path)
    return {
        "architecture": ARCHITECTURE,
        "source": Path(path).name,
        "sha256": sha256,
        "pretrained": sha256.startswith(PRETRAINED_SHA256_PREFIX),
    }


def save_params(path: str | os.PathLike, params: dict, metadata: dict) -> Path:
    """Write converted params as an hw5jax checkpoint: state {"params": params}."""
    return checkpoint.save(path, {"params": params}, metadata)


def restore_params(path: str | os.PathLike) -> tuple[dict, dict]:
    """Read a checkpoint written by `save_params`: (params, metadata). Raises CheckpointError
    for a missing directory, another kind of checkpoint, or arrays of the wrong shape."""
    from hw5jax.models.alexnet import param_shapes

    fix = f"make one with: python -m experiments.convert_alexnet MODEL.pth --out {path}"
    if not Path(path).is_dir():
        raise CheckpointError(f"{path}: no checkpoint directory here; {fix}")
    state, metadata = checkpoint.restore(path)
    if metadata.get("architecture") != ARCHITECTURE or "params" not in state:
        raise CheckpointError(
            f"{path}: not an AlexNet checkpoint (architecture "
            f"{metadata.get('architecture')!r}); {fix}"
        )
    params = state["params"]
    want = param_shapes()
    if not isinstance(params, dict) or not all(isinstance(v, dict) for v in params.values()):
        raise CheckpointError(
            f"{path}: not an AlexNet checkpoint (params are not {{layer: {{kernel, bias}}}}); {fix}"
        )
    unexpected = sorted(
        f"{layer}.{name}"
        for layer, arrays in params.items()
        for name in arrays
        if name not in want.get(layer, {})
    )
    if unexpected:
        raise CheckpointError(
            f"{path}: not an AlexNet checkpoint (unexpected arrays "
            f"{', '.join(unexpected[:4])}); {fix}"
        )
    for layer, arrays in want.items():
        for name, spec in arrays.items():
            got = params.get(layer, {}).get(name)
            if got is None or tuple(got.shape) != tuple(spec.shape):
                shape = None if got is None else tuple(got.shape)
                raise CheckpointError(
                    f"{path}: {layer}.{name} has shape {shape}, expected {tuple(spec.shape)}; {fix}"
                )
            if np.dtype(got.dtype) != np.dtype(spec.dtype):
                raise CheckpointError(
                    f"{path}: {layer}.{name} is {got.dtype}, expected {spec.dtype}; {fix}"
                )
    return params, metadata


def torch_reference_alexnet(seed: int = 0):
    """torchvision's AlexNet in plain torch (same module names: features.0 ... classifier.6),
    with random weights, in eval mode. torchvision itself is not needed (and does not import
    beside torch 2.13.0 here).

    Weights are He-normal and biases uniform(-0.1, 0.1), not torch's defaults: the defaults
    shrink the signal layer by layer until the logits are ~the last bias, which would let a
    wrong fc6 permutation pass a parity test. With these, logits vary by O(1) across classes.
    """
    import torch
    from torch import nn

    class TorchAlexNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.features = nn.Sequential(
                nn.Conv2d(3, 64, kernel_size=11, stride=4, padding=2),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(kernel_size=3, stride=2),
                nn.Conv2d(64, 192, kernel_size=5, padding=2),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(kernel_size=3, stride=2),
                nn.Conv2d(192, 384, kernel_size=3, padding=1),
                nn.ReLU(inplace=True),
                nn.Conv2d(384, 256, kernel_size=3, padding=1),
                nn.ReLU(inplace=True),
                nn.Conv2d(256, 256, kernel_size=3, padding=1),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(kernel_size=3, stride=2),
            )
            self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
            self.classifier = nn.Sequential(
                nn.Dropout(p=0.5),
                nn.Linear(256 * 6 * 6, 4096),
                nn.ReLU(inplace=True),
                nn.Dropout(p=0.5),
                nn.Linear(4096, 4096),
                nn.ReLU(inplace=True),
                nn.Linear(4096, 1000),
            )

        def forward(self, x):  # x: [N, 3, H, W] -> logits [N, 1000]
            x = self.avgpool(self.features(x))
            return self.classifier(torch.flatten(x, 1))

    model = TorchAlexNet()
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                fan_in = module.weight[0].numel()
                module.weight.normal_(0.0, (2.0 / fan_in) ** 0.5, generator=generator)
                if module.bias is not None:
                    module.bias.uniform_(-0.1, 0.1, generator=generator)
    return model.eval()


def save_random_reference(path: str | os.PathLike, seed: int = 0) -> Path:
    """Write the state_dict of `torch_reference_alexnet(seed)` to `path` (a stand-in for the
    pretrained file, which cannot be downloaded here). Written atomically."""
    import torch

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not os.access(path.parent, os.W_OK):  # before a quarter-gigabyte of random weights
        raise OSError(errno.EACCES, "cannot write: directory is not writable", str(path))
    state_dict = torch_reference_alexnet(seed).state_dict()
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        # Through a Python file: a failed write (disk full) is then an OSError in the
        # exception's context, not only torch's "unexpected pos" RuntimeError.
        with open(tmp, "wb") as f:
            torch.save(state_dict, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except Exception as err:
        cause = _os_error(err)
        if cause is not None:
            raise OSError(cause.errno, f"cannot write: {cause.strerror}", str(path)) from err
        raise
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _os_error(err: BaseException) -> OSError | None:
    seen: BaseException | None = err
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno is not None:
            return seen
        seen = seen.__cause__ or seen.__context__
    return None
