"""Running contenders interleaved (A B A B ...), progress, and the statistics we report."""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


@dataclass
class Mode:
    """How big a run is, where it writes, and whether the 1.1.1 baseline is available."""

    quick: bool
    out: Path
    baseline_python: str | None
    overrides: dict[str, Any] = field(default_factory=dict)

    def pick(self, name: str, quick: T, full: T) -> T:
        """A size: the override named `name` if given, else the quick or full value."""
        if name in self.overrides:
            value: T = self.overrides[name]
            return value
        return quick if self.quick else full


class Progress:
    """One updating status line on stderr (plain lines when stderr is not a terminal)."""

    def __init__(self, scenario: str) -> None:
        self.scenario = scenario
        self.start = time.monotonic()
        self.tty = sys.stderr.isatty()

    def update(self, message: str) -> None:
        elapsed = time.monotonic() - self.start
        line = f"[{self.scenario} {elapsed:6.1f}s] {message}"
        if self.tty:
            sys.stderr.write("\r\033[K" + line)
        else:
            sys.stderr.write(line + "\n")
        sys.stderr.flush()

    def done(self) -> None:
        self.update("done")
        if self.tty:
            sys.stderr.write("\n")


async def interleave(
    contenders: Sequence[str],
    rounds: int,
    run_one: Callable[[str, int], Awaitable[T]],
    progress: Progress,
    label: str = "",
) -> dict[str, list[T]]:
    """Run `run_one(contender, round)` for each round, contenders in turn (A B A B ...).

    Each round starts one contender further on (A B C, B C A, ...), so no contender
    always runs first, or always right after another one's cleanup.
    """
    results: dict[str, list[T]] = {name: [] for name in contenders}
    for index in range(rounds):
        shift = index % len(contenders)
        for name in [*contenders[shift:], *contenders[:shift]]:
            progress.update(f"{label} round {index + 1}/{rounds} {name}".strip())
            results[name].append(await run_one(name, index))
    return results


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile (`pct` in 0..100)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(pct / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def ratio(a: float, b: float) -> float:
    return a / b if b else float("nan")


def paired_ratio(a: Sequence[float], b: Sequence[float]) -> float:
    """Median of the per-round ratios a[i] / b[i].

    Rounds of different contenders run back to back, so each pair shares the
    machine's load at that moment; the median of the pairs is less swayed by
    the load drifting over the run than the ratio of the two medians.
    """
    pairs = [x / y for x, y in zip(a, b, strict=False) if y and x == x and y == y]
    return median(pairs)
