"""Every error that means "bad input": the command line turns a `UserError` into one
`error: ...` line and exit code 2 (`hw5jax.cli.run_main`); anything else is a bug and shows
its traceback. A leaf module: it imports nothing of hw5jax, so every floor can raise these.
"""

from __future__ import annotations


class UserError(Exception):
    """Bad input of any kind; the message names the offending thing and the fix."""


class ConfigError(UserError, ValueError):
    """A command-line or config value that cannot be used."""


class UnknownOptimizerError(ConfigError):
    """An optimizer name that `hw5jax.core.optim` does not know."""


class DataError(UserError):
    """MNIST could not be loaded: the message names the file, the problem and the fix."""


class CheckpointError(UserError):
    """A checkpoint is missing, incomplete, or not what the caller expects."""


class ConversionError(UserError, ValueError):
    """A file is not a torchvision AlexNet state_dict. `missing`, `unexpected` and `mismatched`
    ({key: (got shape, expected shape)}) hold the full lists; the message (one line) names the
    first few of each."""

    def __init__(
        self,
        message: str,
        missing: list[str] | None = None,
        unexpected: list[str] | None = None,
        mismatched: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] | None = None,
    ):
        super().__init__(message)
        self.missing = missing or []
        self.unexpected = unexpected or []
        self.mismatched = mismatched or {}


class ImageError(UserError, ValueError):
    """An image file cannot be turned into a network input (the message names the file)."""


class ImageTooSmallError(ImageError):
    """The image is smaller than AlexNet's minimum input (63 x 63) after fitting."""


class Interrupted(Exception):
    """Ctrl-C during a resumable run: the message says how to continue it (exit code 130)."""


class BrowserMissing(UserError):
    """No Chromium to print a page with: the message says how to install one or point to it."""


class BrowserError(UserError):
    """Chromium failed or timed out on a page: the message names the page and Chromium's last
    line of stderr."""
