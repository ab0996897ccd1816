"""Compile `onednn_conv.cc` into `_build/libhw5jax_onednn.so`: the XLA FFI headers of the
installed jaxlib (`jax.ffi.include_dir()`) and oneDNN from the `onednn-cpu-gomp` and
`onednn-devel-cpu-gomp` wheels (headers in `sys.prefix/include`, libdnnl.so in
`sys.prefix/lib`).

    python -m hw5jax.kernels.build   # `make setup` runs it; a no-op while nothing changed

Cached: the library is rebuilt only when its key (sha256 of the source, the jax version and
the compiler command) changes, and written atomically (a temporary name, then a rename). It
never fails: where it cannot build (not Linux x86-64, no g++, no oneDNN) it says so in one line
and the XLA convolutions run instead.
"""

from __future__ import annotations

import hashlib
import os
import platform
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from hw5jax.kernels import BUILD_DIR, LIBRARY_NAME

SOURCE = Path(__file__).resolve().parent / "onednn_conv.cc"
CXXFLAGS = ("-O3", "-std=c++17", "-shared", "-fPIC", "-fopenmp", "-w")


@dataclass(frozen=True)
class BuildResult:
    """status: "built", "up to date" or "skipped"; `message` is the line printed."""

    status: str
    message: str
    library: Path | None


def onednn_prefix() -> Path:
    """Where the oneDNN wheels put their files: the environment's prefix."""
    return Path(sys.prefix)


def _missing(prefix: Path, compiler: str | None) -> str | None:
    """Why the library cannot be built here; None when it can."""
    if sys.platform != "linux" or platform.machine() != "x86_64":
        return f"not Linux x86_64 ({sys.platform} {platform.machine()})"
    if compiler is None:
        return "no g++ on PATH"
    header = prefix / "include" / "dnnl.hpp"
    if not header.is_file():
        return f"no oneDNN headers (no {header}: pip install onednn-devel-cpu-gomp)"
    if not any((prefix / "lib").glob("libdnnl.so*")):
        return f"no libdnnl.so in {prefix / 'lib'} (pip install onednn-cpu-gomp)"
    return None


def command(compiler: str, include_dir: str, prefix: Path, output: Path) -> list[str]:
    """The compiler command line that builds the library into `output`."""
    lib = prefix / "lib"
    return [
        compiler,
        *CXXFLAGS,
        f"-I{include_dir}",
        f"-I{prefix / 'include'}",
        str(SOURCE),
        "-o",
        str(output),
        f"-L{lib}",
        "-ldnnl",
        f"-Wl,-rpath,{lib}",
    ]


def build_key(source: bytes, jax_version: str, cmd: list[str]) -> str:
    """sha256 of what decides the library: the source, the jax version, the command line."""
    digest = hashlib.sha256(source)
    digest.update(jax_version.encode())
    digest.update("\0".join(cmd).encode())
    return digest.hexdigest()


def build(build_dir: Path = BUILD_DIR, *, force: bool = False, verbose: bool = True) -> BuildResult:
    """Build the library unless it is up to date (or cannot be built: then "skipped")."""
    compiler = shutil.which(os.environ.get("CXX", "g++"))
    prefix = onednn_prefix()
    why = _missing(prefix, compiler)
    if why is not None or compiler is None:
        return _say("skipped", f"oneDNN convolutions not built: {why}", None, verbose)
    import jax

    target = build_dir / LIBRARY_NAME
    # The key's command names the final path, not the temporary one.
    cmd = command(compiler, jax.ffi.include_dir(), prefix, target)
    key = build_key(SOURCE.read_bytes(), jax.__version__, cmd)
    key_file = build_dir / (LIBRARY_NAME + ".key")
    if not force and target.is_file() and key_file.is_file() and key_file.read_text() == key:
        return _say("up to date", f"oneDNN convolutions up to date: {target}", target, verbose)
    build_dir.mkdir(parents=True, exist_ok=True)
    tmp = build_dir / f".{LIBRARY_NAME}.{os.getpid()}.tmp"
    t0 = time.perf_counter()
    done = subprocess.run(
        command(compiler, jax.ffi.include_dir(), prefix, tmp), capture_output=True, text=True
    )
    if done.returncode != 0:
        tmp.unlink(missing_ok=True)
        errors = [line for line in done.stderr.splitlines() if "error" in line] or [""]
        return _say(
            "skipped", f"oneDNN convolutions not built: g++ failed: {errors[0]}", None, verbose
        )
    os.replace(tmp, target)
    key_tmp = key_file.with_name(f".{key_file.name}.{os.getpid()}.tmp")
    key_tmp.write_text(key)
    os.replace(key_tmp, key_file)
    seconds = time.perf_counter() - t0
    return _say("built", f"oneDNN convolutions built: {target} ({seconds:.0f} s)", target, verbose)


def _say(status: str, message: str, library: Path | None, verbose: bool) -> BuildResult:
    if verbose:
        print(message, flush=True)
    return BuildResult(status, message, library)


def main() -> int:
    """`python -m hw5jax.kernels.build [--force]`: always exits 0 (`make setup` goes on)."""
    try:
        build(force="--force" in sys.argv[1:])
    except Exception as e:  # never fail setup: the XLA convolutions still run
        print(f"oneDNN convolutions not built: {type(e).__name__}: {e}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
