"""Sizes of the heavy tests: CI size by default, full size with ASWS_FULL=1."""

from __future__ import annotations

import os
import resource

FULL = os.environ.get("ASWS_FULL", "") == "1"


def size(ci: int, full: int) -> int:
    """`full` under ASWS_FULL=1, else `ci`."""
    return full if FULL else ci


def raise_fd_limit(needed: int) -> None:
    """Raise the soft open-files limit to at least `needed` (up to the hard limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= needed:
        return
    target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
    resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    if target < needed:
        raise RuntimeError(f"the open-files hard limit {hard} is below the {needed} needed")
