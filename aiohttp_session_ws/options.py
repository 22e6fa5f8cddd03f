"""Checks for constructor options, so a value that cannot work fails where it is passed.

Every registry (the core's and the Redis one) and the security layer's policy check
their options here; the README's option tables list the same ranges.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from numbers import Real
from typing import Final

MINUTE: Final = 60.0
HOUR: Final = 60 * MINUTE
DAY: Final = 24 * HOUR
YEAR: Final = 365 * DAY

SECONDS_RANGES: Final[Mapping[str, tuple[float, float]]] = {
    # option: (minimum, maximum) in seconds; a minimum of 0 means "more than 0".
    "close_timeout": (0.0, HOUR),
    # Redis keeps revocations with a millisecond expiry (it refuses one past ~292
    # million years, e.g. 1e16 s); a year outlives any session worth revoking.
    "revocation_ttl": (0.001, YEAR),
    "heartbeat_interval": (0.0, HOUR),
    "heartbeat_ttl": (0.001, DAY),
    "reconnect_base": (0.0, HOUR),
    "reconnect_cap": (0.0, HOUR),
    "redis_timeout": (0.0, HOUR),
    "start_timeout": (0.0, HOUR),
    # Not an option: the `wait=` of the Redis registry's close_all_session/close_all_key.
    "wait": (0.0, HOUR),
}
"""The allowed range of each option (and method argument) given in seconds."""

DEFAULT_SECONDS_RANGE: Final = (0.0, DAY)


def check_seconds(name: str, value: object) -> float:
    """Return `value` as a float if it is a number of seconds in the option's range.

    The range comes from `SECONDS_RANGES` (options not listed there: more than 0,
    at most a day). Raises TypeError for a non-number (a bool included) and
    ValueError for zero, a negative number, NaN, infinity or a value out of range,
    naming the option and the range in both.
    """
    low, high = SECONDS_RANGES.get(name, DEFAULT_SECONDS_RANGE)
    allowed = f"at least {_number(low)} and " if low > 0 else ""
    allowed += f"at most {_number(high)} ({_duration(high)})"
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(
            f"{name} must be a number of seconds (int or float, {allowed}), "
            f"got {type(value).__name__}"
        )
    seconds = float(value)
    if not (math.isfinite(seconds) and seconds > 0 and low <= seconds <= high):
        raise ValueError(
            f"{name} must be a positive, finite number of seconds, {allowed}; got {value!r}"
        )
    return seconds


def check_flag(name: str, value: object) -> bool:
    """Return `value` if it is True or False (not merely truthy), else raise TypeError."""
    if type(value) is not bool:
        raise TypeError(f"{name} must be True or False, got {type(value).__name__}")
    return value


def check_count(name: str, value: object, *, minimum: int = 1) -> int:
    """Return `value` if it is an int (not a bool) of at least `minimum`."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int of at least {minimum}, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value}")
    return value


def check_name(name: str, value: object) -> str:
    """Return `value` if it is a non-empty str (a session key, a channel name)."""
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a non-empty str, got {type(value).__name__}")
    if not value:
        raise ValueError(f"{name} must be a non-empty str, got an empty one")
    return value


def _number(value: float) -> str:
    return str(int(value)) if value == int(value) else repr(value)


def _duration(seconds: float) -> str:
    for unit, size in (("days", DAY), ("hours", HOUR), ("minutes", MINUTE)):
        if seconds >= size:
            amount = seconds / size
            return f"{_number(amount)} {unit[:-1] if amount == 1 else unit}"
    return f"{_number(seconds)} seconds"
