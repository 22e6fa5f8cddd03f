"""Results: a Markdown table and a PNG plot per scenario, raw JSON on the side."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.axes import Axes


@dataclass
class Target:
    """One target of the issue and whether this run met it (None: could not be judged)."""

    text: str
    met: bool | None
    measured: str


@dataclass
class Result:
    """What a scenario reports."""

    name: str
    title: str
    headers: list[str]
    rows: list[list[str]]
    targets: list[Target] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    raw: dict[str, Any] = field(default_factory=dict)
    plot: Callable[[Axes], None] | None = None


def fmt(value: float, digits: int = 2) -> str:
    """A number for a table; NaN becomes a dash."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.{digits}f}"


def markdown(result: Result) -> str:
    """The scenario's section: title, table, targets, notes."""
    lines = [f"### {result.title}", ""]
    lines.append("| " + " | ".join(result.headers) + " |")
    lines.append("|" + "|".join("---" for _ in result.headers) + "|")
    lines.extend("| " + " | ".join(row) + " |" for row in result.rows)
    if result.targets:
        lines += ["", "| target | measured | met |", "|---|---|---|"]
        for t in result.targets:
            verdict = {True: "yes", False: "**no**", None: "n/a"}[t.met]
            lines.append(f"| {t.text} | {t.measured} | {verdict} |")
    if result.notes:
        lines.append("")
        lines.extend(f"- {note}" for note in result.notes)
    return "\n".join(lines) + "\n"


def write(result: Result, out: Path) -> Path | None:
    """Write `<name>.md`, `<name>.png` (if it has a plot) and `raw/<name>.json` under `out`."""
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{result.name}.md").write_text(markdown(result))
    raw = out / "raw" if out.name != "raw" else out
    raw.mkdir(parents=True, exist_ok=True)
    (raw / f"{result.name}.json").write_text(json.dumps(result.raw, indent=1, default=str))
    if result.plot is None:
        return None
    fig, ax = plt.subplots(figsize=(7, 4), dpi=90)
    result.plot(ax)
    ax.set_title(result.title, fontsize=10)
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    png = out / f"{result.name}.png"
    fig.savefig(png)
    plt.close(fig)
    return png


def bar_plot(values: dict[str, float], ylabel: str) -> Callable[[Axes], None]:
    """A plot function drawing one bar per contender."""

    def plot(ax: Axes) -> None:
        colors = ["#3b7dd8", "#999999", "#d8843b", "#5aa469"][: len(values)]
        ax.bar(list(values), list(values.values()), color=colors)
        ax.set_ylabel(ylabel)

    return plot


def columns(header: str) -> list[str]:
    """Table headers written as one `a | b | c` string."""
    return [h.strip() for h in header.split("|")]
