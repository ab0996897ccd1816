"""Numerical comparisons shared by the tests. Tests import it as `from numerics import ...`."""

from __future__ import annotations

import numpy as np


def rel_err(a, b) -> float:
    """max|a - b| / max|b|: the largest error relative to the reference's largest value."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-30))
