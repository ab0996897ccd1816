"""oneDNN convolutions inside JAX programs: `onednn_conv`, a drop-in for
`lax.conv_general_dilated` in the CNN's case (NHWC input, HWIO kernel, float32, no dilation,
one group), differentiable by a `jax.custom_vjp` whose forward and backward passes are XLA FFI
calls into `_build/libhw5jax_onednn.so` (`python -m hw5jax.kernels.build`).

It runs under `jit`, inside `lax.scan` and under `vmap` (the FFI calls batch by
vmap_method="expand_dims": the library loops over the stacked operands, or folds a stack of
inputs that share one kernel into one batch). `resolve` maps a `--conv` choice to what runs.

Threads: each call sets OpenMP's thread count in its calling thread first: by default the
cores shared among the oneDNN calls in flight (one call alone: every core, also under
`hw5jax.cli.one_device_per_core` where a single run leaves the other core idle; two at once,
from two devices: one each, so a stack of runs does not oversubscribe the cores), or
`HW5JAX_ONEDNN_THREADS` (read once) threads. Layout
(`HW5JAX_ONEDNN_LAYOUT`, read once): nhwc (the default: activations in XLA's NHWC, the kernel
reordered into oneDNN's preferred layout, which picks its direct AVX2/brgemm convolutions),
plain (NHWC and HWIO throughout: oneDNN's im2col + gemm, slower) or any (oneDNN's blocked
layouts with reorders of the activations too, slower). Measured: docs/performance.md.
"""

from __future__ import annotations

import ctypes
import functools
import os
import sys
from collections.abc import Sequence
from typing import Any

import jax
import numpy as np

from hw5jax.errors import ConfigError
from hw5jax.kernels import BUILD_DIR, LIBRARY_NAME

CONVS = ("xla", "onednn", "auto")
BUILD_HINT = "build it with `python -m hw5jax.kernels.build` (or `make setup`)"
TARGETS = {
    "forward": "Hw5jaxOnednnConvForward",
    "backward_data": "Hw5jaxOnednnConvBackwardData",
    "backward_weights": "Hw5jaxOnednnConvBackwardWeights",
}
LAYOUTS = {"plain": 0, "any": 1, "nhwc": 2}
ENV = ("HW5JAX_ONEDNN_THREADS", "HW5JAX_ONEDNN_LAYOUT")
_NHWC = ("NHWC", "HWIO", "NHWC")


@functools.cache
def _settings() -> tuple[int, str]:
    """(HW5JAX_ONEDNN_THREADS, HW5JAX_ONEDNN_LAYOUT), read once; threads 0: not set."""
    threads, layout = (os.environ.get(n, "").strip() for n in ENV)
    if threads and not threads.isdigit():
        raise ConfigError(f"HW5JAX_ONEDNN_THREADS={threads!r}: a thread count (0: automatic)")
    if layout and layout not in LAYOUTS:
        raise ConfigError(f"HW5JAX_ONEDNN_LAYOUT={layout!r}: use one of {' | '.join(LAYOUTS)}")
    return (int(threads) if threads else 0), layout or "nhwc"


_loaded: dict[str, Any] = {}  # "library": the CDLL, or "error": why it is not there


def _load() -> ctypes.CDLL | None:
    """Load the library once and register its three FFI targets; None when absent."""
    if not _loaded:
        path = BUILD_DIR / LIBRARY_NAME
        if not path.is_file():
            _loaded["error"] = f"{path} is not built"
            return None
        try:
            library = ctypes.CDLL(str(path))
            for name, symbol in TARGETS.items():
                jax.ffi.register_ffi_target(
                    f"hw5jax_onednn_conv_{name}",
                    jax.ffi.pycapsule(getattr(library, symbol)),
                    platform="cpu",
                )
        except (OSError, AttributeError) as e:
            _loaded["error"] = f"{path} does not load: {e}"
            return None
        _loaded["library"] = library
    return _loaded.get("library")


def available() -> bool:
    """Whether the oneDNN library is built, loads and its targets are registered."""
    return _load() is not None


def unavailable_reason() -> str:
    """Why `available()` is False ("" when it is True)."""
    return "" if available() else _loaded.get("error", "not loaded")


def onednn_version() -> str | None:
    """The version of the oneDNN the library runs ("3.2.0"), None when not available."""
    library = _load()
    if library is None:
        return None
    v = int(library.hw5jax_onednn_version())
    return f"{v // 10000}.{v // 100 % 100}.{v % 100}"


def resolve(conv: str) -> str:
    """What runs for a `conv` choice: "xla" (`conv_as_matmul`) or "onednn". "auto" is
    "onednn" when the library is built and JAX's default backend is the CPU, else "xla" (and
    one line on stderr says why); "onednn" where it cannot run is a ConfigError."""
    if conv not in CONVS:
        raise ConfigError(f"conv {conv!r}: use one of {' | '.join(CONVS)}")
    if conv == "xla":
        return "xla"
    why = unavailable_reason()
    if not why and jax.default_backend() != "cpu":
        why = f"JAX's default backend is {jax.default_backend()}, not the CPU"
    if conv == "onednn" and why:
        raise ConfigError(f"conv onednn: the oneDNN convolutions cannot run ({why}); {BUILD_HINT}")
    if why:
        print(f"conv auto: the XLA convolutions run ({why}; {BUILD_HINT})", file=sys.stderr)
        return "xla"
    return "onednn"


def threads() -> int:
    """The OpenMP threads of each call: HW5JAX_ONEDNN_THREADS, else 0 (the library shares the
    cores among the calls in flight)."""
    return _settings()[0]


def _call(kind: str, shape: Sequence[int], a: jax.Array, b: jax.Array, attrs: tuple) -> jax.Array:
    call = jax.ffi.ffi_call(
        f"hw5jax_onednn_conv_{kind}",
        jax.ShapeDtypeStruct(tuple(shape), np.float32),
        vmap_method="expand_dims",
    )
    names = ("stride_h", "stride_w", "pad_top", "pad_bottom", "pad_left", "pad_right")
    return call(
        a,
        b,
        **{n: np.int64(v) for n, v in zip(names, attrs, strict=True)},
        threads=np.int64(threads()),
        layout=np.int64(LAYOUTS[_settings()[1]]),
    )


def _out_shape(x_shape, w_shape, attrs: tuple) -> tuple[int, ...]:
    sh, sw, pt, pb, pl, pr = attrs
    n, h, w, _ = x_shape
    kh, kw, _, o = w_shape
    return (n, (h + pt + pb - kh) // sh + 1, (w + pl + pr - kw) // sw + 1, o)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def _conv(x: jax.Array, w: jax.Array, attrs: tuple) -> jax.Array:
    return _call("forward", _out_shape(x.shape, w.shape, attrs), x, w, attrs)


def _conv_fwd(x, w, attrs):
    return _conv(x, w, attrs), (x, w)


def _conv_bwd(attrs, residuals, g):
    x, w = residuals
    dx = _call("backward_data", x.shape, g, w, attrs)
    dw = _call("backward_weights", w.shape, x, g, attrs)
    return dx, dw


_conv.defvjp(_conv_fwd, _conv_bwd)


def onednn_conv(
    lhs: jax.Array,
    rhs: jax.Array,
    window_strides=(1, 1),
    padding="SAME",
    lhs_dilation=(1, 1),
    rhs_dilation=(1, 1),
    dimension_numbers=None,
    feature_group_count: int = 1,
    precision=None,
    **_,
) -> jax.Array:
    """`lax.conv_general_dilated` by oneDNN, with `hw5jax.models.cnn.conv_as_matmul`'s call
    signature (so `nnx.Conv(conv_general_dilated=onednn_conv)`): lhs float32[N, H, W, C],
    rhs float32[KH, KW, C, O] -> float32[N, OH, OW, O]. Padding: "SAME", "VALID" or explicit
    ((top, bottom), (left, right)), non-negative. `precision` is ignored: oneDNN computes in
    float32 throughout (equal to lax's "highest"; tested)."""
    if not available():
        raise ConfigError(f"onednn_conv: {unavailable_reason()}; {BUILD_HINT}")
    unsupported = (
        lhs.ndim != 4
        or rhs.ndim != 4
        or tuple(lhs_dilation or (1, 1)) != (1, 1)
        or tuple(rhs_dilation or (1, 1)) != (1, 1)
        or feature_group_count != 1
        or lhs.shape[-1] != rhs.shape[2]
        or not _is_nhwc(dimension_numbers, lhs.shape, rhs.shape)
    )
    if unsupported:
        raise ValueError("onednn_conv: only NHWC x HWIO, no dilation, one group")
    if lhs.dtype != np.float32 or rhs.dtype != np.float32:
        raise ValueError(f"onednn_conv: float32 only, not {lhs.dtype} x {rhs.dtype}")
    strides = tuple(int(s) for s in window_strides)
    if len(strides) != 2 or min(strides) < 1:
        raise ValueError(f"onednn_conv: strides {strides}, padding {padding}")
    if isinstance(padding, str):
        padding = jax.lax.padtype_to_pads(lhs.shape[1:3], rhs.shape[:2], strides, padding)
    pads = tuple(int(p) for pair in padding for p in pair)
    if len(pads) != 4 or min(pads) < 0:
        raise ValueError(f"onednn_conv: strides {strides}, padding {padding}")
    return _conv(lhs, rhs, (*strides, *pads))


def _is_nhwc(dimension_numbers, lhs_shape, rhs_shape) -> bool:
    if dimension_numbers is None:
        return True
    nhwc = jax.lax.conv_dimension_numbers(lhs_shape, rhs_shape, _NHWC)
    given = jax.lax.conv_dimension_numbers(lhs_shape, rhs_shape, dimension_numbers)
    return given == nhwc
