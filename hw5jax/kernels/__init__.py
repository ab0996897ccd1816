"""Native kernels called from JAX programs through the XLA FFI: oneDNN's convolutions
(`hw5jax.kernels.conv`), built by `python -m hw5jax.kernels.build` (`make setup` runs it)
into `BUILD_DIR / LIBRARY_NAME`.
"""

from pathlib import Path

BUILD_DIR = Path(__file__).resolve().parent / "_build"
LIBRARY_NAME = "libhw5jax_onednn.so"
