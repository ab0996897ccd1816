"""What every command line here shares: options derived from a frozen config dataclass, an
output directory, and errors that end as one clear line.

    @dataclass(frozen=True)
    class Config:
        epochs: int = field(default=30, metadata={"help": "training epochs"})

    def main(argv=None):
        config = parse_config(Config, argv, description=__doc__)
        ...

    if __name__ == "__main__":
        run_main(main)
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import types
import typing
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from hw5jax.errors import Interrupted, UserError

C = TypeVar("C")


def enable_compilation_cache() -> None:
    """Keep XLA's compiled programs on disk (~/.cache/hw5jax/jax-cache, or $HW5JAX_DATA):
    a second run of the same experiment skips most of its compile time."""
    import jax

    from hw5jax.data import cache_dir

    jax.config.update("jax_compilation_cache_dir", str(cache_dir() / "jax-cache"))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.2)


def one_device_per_core() -> int:
    """On a CPU, present each core as its own JAX device running single-threaded, so that a
    stack of runs sharded over `hw5jax.core.sharding.runs_mesh()` trains one shard per core.

    A sweep's matmuls (batch 128, 100 hidden units) are too small to gain much from splitting
    each one over two threads; two independent programs, one per core, go faster (measured:
    docs/performance.md). Only for experiments whose work is stacks of runs: a single run would
    use one core. Must be called before JAX starts (the first computation); later, or when
    XLA_FLAGS already sets a device count, it changes nothing. Returns the devices requested
    (0 if XLA_FLAGS chose, or JAX had started with another count).
    """
    import os

    import jax

    flags = os.environ.get("XLA_FLAGS", "")
    if "xla_force_host_platform_device_count" in flags:
        return 0
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    try:
        jax.config.update("jax_num_cpu_devices", cores or 1)
    except RuntimeError:  # JAX has already started (e.g. inside the test suite)
        return 0
    if "xla_cpu_multi_thread_eigen" not in flags:
        os.environ["XLA_FLAGS"] = f"{flags} --xla_cpu_multi_thread_eigen=false".strip()
    return cores or 1


def run_main(
    main: Callable[[list[str] | None], Any],
    argv: list[str] | None = None,
    *,
    several_processes: bool = False,
) -> None:
    """Run a CLI's `main`: bad input ends as `error: ...` on stderr and exit code 2, Ctrl-C as
    exit code 130 and SIGTERM (SLURM, Kubernetes, `timeout`) as 143, each with how to resume
    when the run can be (a resumable run stops after the current epoch's checkpoint,
    `hw5jax.runs.rundir`); `--debug` anywhere on the command line shows the full traceback
    instead.

    several_processes: the command may run as one of several processes when the environment
    asks for it (`hw5jax.core.sharding`; commands whose work is stacks of runs); the others
    refuse such an environment."""
    enable_compilation_cache()
    # A path that is not UTF-8 (argv holds its bytes as surrogate escapes) must print, not
    # raise UnicodeEncodeError at the end of a run: stdout gives the bytes back as they are,
    # stderr escapes them (what Python does for stderr under any locale).
    for stream, errors in ((sys.stdout, "surrogateescape"), (sys.stderr, "backslashreplace")):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors=errors)
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    argv = [a for a in argv if a != "--debug"]
    from hw5jax.runs.rundir import sigterm_as_interrupt

    try:
        from hw5jax.core.sharding import initialize_from_env

        with sigterm_as_interrupt():  # SIGTERM unwinds as Ctrl-C does (exit code 143)
            initialize_from_env(allowed=several_processes)  # if the environment says so
            main(argv)
    except KeyboardInterrupt as err:
        print("\ninterrupted", file=sys.stderr)
        sys.exit(getattr(err, "exit_code", 130))
    except Interrupted as err:
        print(f"\n{err}", file=sys.stderr)
        sys.exit(getattr(err, "exit_code", 130))
    except (UserError, OSError) as err:  # bad input: one line (anything else is a bug)
        if debug:
            raise
        message = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        if isinstance(err, OSError) and err.filename:
            message = f"{err.filename}: {err.strerror or message}"
        print(f"error: {message}", file=sys.stderr)
        sys.exit(2)


def _option_type(tp: Any) -> tuple[Callable[[str], Any], bool]:
    """(parser for one string, whether it is a comma-separated tuple)."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in typing.get_args(tp) if a is not type(None)]
        return _option_type(inner[0])
    if origin is tuple:
        item, _ = _option_type(typing.get_args(tp)[0])
        return item, True
    return tp, False


def _parse_bool(text: str) -> bool:
    if text.lower() in ("1", "true", "yes", "on"):
        return True
    if text.lower() in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true/false, got {text!r}")


def _comma_separated(item: Callable[[str], Any]) -> Callable[[str], tuple]:
    """`"a,b,c"` -> (item("a"), item("b"), item("c")); empty items are skipped."""
    return lambda text: tuple(item(v) for v in text.split(",") if v)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> typing.NoReturn:  # one line, not usage + error
        self.exit(2, f"error: {message} (see --help)\n")


def build_parser(
    config_cls: type, description: str | None = None, prog: str | None = None
) -> argparse.ArgumentParser:
    """One `--option` per field of the frozen dataclass `config_cls` (underscores -> dashes);
    defaults and help come from the fields; tuple fields take comma-separated values; bool
    fields are flags (`--quick`)."""
    parser = _Parser(
        prog=prog, description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    hints = typing.get_type_hints(config_cls)
    for f in dataclasses.fields(config_cls):
        if f.metadata.get("cli") is False:
            continue
        name = "--" + f.name.replace("_", "-")
        tp = hints[f.name]
        default: Any = (
            f.default if f.default_factory is dataclasses.MISSING else f.default_factory()
        )
        help_text = f.metadata.get("help", "")
        if tp is bool:
            parser.add_argument(name, action="store_true", help=help_text)
            continue
        item, is_tuple = _option_type(tp)
        item = _parse_bool if item is bool else item
        shown = ",".join(map(str, default)) if is_tuple and default is not None else default
        parser.add_argument(
            name,
            type=_comma_separated(item) if is_tuple else item,
            default=default,
            metavar=f.metadata.get("metavar", f.name.upper()),
            # a help text that says its default itself (a None meaning "the other option's")
            help=help_text if "(default:" in help_text else f"{help_text} (default: {shown})",
        )
    return parser


def parse_config(
    config_cls: type[C],
    argv: Sequence[str] | None = None,
    description: str | None = None,
    prog: str | None = None,
) -> C:
    """Parse `argv` into a `config_cls` instance; the dataclass's `__post_init__` validates.
    argparse's own usage errors exit with code 2 and one `error:` line, as ours do."""
    args = build_parser(config_cls, description, prog).parse_args(argv)
    return config_cls(**vars(args))
