"""Checks for constructor options, so a bad value fails where it is passed."""

from __future__ import annotations

import math
from numbers import Real


def check_seconds(name: str, value: object) -> float:
    """Return `value` as a float if it is a positive, finite number of seconds.

    Raises TypeError for a non-number (a bool included) and ValueError for zero,
    a negative number, NaN or infinity, naming the option in both.
    """
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(
            f"{name} must be a number of seconds (int or float), got {type(value).__name__}"
        )
    seconds = float(value)
    if not (math.isfinite(seconds) and seconds > 0):
        raise ValueError(f"{name} must be a positive, finite number of seconds, got {value!r}")
    return seconds
