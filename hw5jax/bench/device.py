"""Where the benchmark runs (`--device`): on the CPU (JAX: one single-threaded device per core,
as the sweeps run; PyTorch: its thread pool) or on the GPU (JAX: `jax.devices("gpu")`;
PyTorch: CUDA). A GPU asked for and not there is a ConfigError, raised before anything is
written.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import jax

from hw5jax.errors import ConfigError

DEVICES = ("cpu", "gpu")


@dataclass(frozen=True)
class Device:
    """The device both sides run on. name: "cpu" or "gpu"; torch: PyTorch's name for it
    ("cpu", "cuda"); jax_devices: the JAX devices the cases may use; gpu_names: the GPUs'
    names ({"jax": [device_kind per device], "torch": torch.cuda.get_device_name(0) or
    None}), None on the CPU."""

    name: str
    torch: str
    jax_devices: tuple[Any, ...] = field(default=(), compare=False)
    gpu_names: dict[str, Any] | None = None

    def record(self) -> dict[str, Any]:
        """What results.json records of it."""
        return {"device": self.name, "gpu_names": self.gpu_names}


def resolve_device(name: str, torch: Any) -> Device:
    """The `Device` of `--device name` (`torch`: the module, or None without it). On "gpu",
    JAX must see a GPU and be using it (its default backend), and torch, if present, must
    see CUDA; otherwise a ConfigError saying which side lacks it."""
    if name not in DEVICES:
        raise ConfigError(f"--device {name!r}: use one of {', '.join(DEVICES)}")
    if name == "cpu":
        return Device("cpu", "cpu", tuple(jax.devices("cpu")))
    try:
        gpus = tuple(jax.devices("gpu"))
    except RuntimeError:
        gpus = ()
    if not gpus:
        raise ConfigError(
            "--device gpu: JAX sees no GPU (jax.devices('gpu') is empty; a CUDA build of "
            "jaxlib and a visible GPU are needed); use --device cpu"
        )
    if jax.default_backend() != "gpu":
        raise ConfigError(
            f"--device gpu: JAX's default backend is {jax.default_backend()!r}, not the GPU "
            "(JAX_PLATFORMS?); unset it or use --device cpu"
        )
    torch_name = None
    if torch is not None:
        if not torch.cuda.is_available():
            raise ConfigError(
                "--device gpu: torch sees no CUDA device (torch.cuda.is_available() is "
                f"False; torch {torch.__version__}); install a CUDA build or use --device cpu"
            )
        torch_name = torch.cuda.get_device_name(0)
    names = {"jax": [d.device_kind for d in gpus], "torch": torch_name}
    return Device("gpu", "cuda", gpus, names)


def synchronize(torch: Any, device: str) -> None:
    """Wait for PyTorch's queued work on `device` (CUDA runs asynchronously): called before
    a clock is read. Nothing to wait for on the CPU."""
    if torch is not None and device.startswith("cuda"):
        torch.cuda.synchronize()


def synced(torch: Any, device: str, fn: Callable[[], Any]) -> Callable[[], Any]:
    """`fn`, returning only once its PyTorch work on `device` is done (for timing)."""

    def run() -> Any:
        out = fn()
        synchronize(torch, device)
        return out

    return run
