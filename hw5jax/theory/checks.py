"""What every problem module of `hw5jax.theory` hands back: `Check`s, and float64 locally.

Every claim of the homework becomes a `Check`: an expected value, a measured value, a tolerance
and a verdict. The computations run in float64 *locally* (`float64()`, a context manager around
`jax.enable_x64(True)`, or numpy float64), so the 1e-6 .. 1e-12 tolerances are about the
mathematics, not about float32 rounding; other modules in the same process keep JAX's float32
default.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax


@dataclasses.dataclass(frozen=True)
class Check:
    """One numerical check of one claim; `passed` is computed, never asserted by hand."""

    problem: str  # "2.2(c)"
    name: str
    claim: str
    expected: Any
    measured: Any
    tolerance: Any
    passed: bool

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def is_heuristic(check: Check) -> bool:
    """A check of a heuristic the homework asks to *assess* (1.2(c)'s "tails off around
    1/sqrt(n)"): reported with its honest verdict, but a failure is not an error."""
    return check.name.endswith("(heuristic)")


def float64():
    """Context manager: float64 for the JAX code inside it only (thread-local config)."""
    return jax.enable_x64(True)
