"""Scenario 2: close fan-out of one session's N sockets, vs the floor and vs 1.1.1."""

from __future__ import annotations

import asyncio
import math
from contextlib import ExitStack
from typing import Any

from .. import load
from ..report import Result, Target, fmt
from ..runner import Mode, Progress, interleave, median, paired_ratio, percentile, ratio
from .contenders import LEGACY, reset_path, start_all, with_legacy, ws_path

NAME = "fanout"
CPU_FROM = 1000
"""Server CPU per close is reported from this N up (below it, /stats calls would weigh)."""


def fanout_rounds(mode: Mode) -> dict[int, int]:
    """Rounds per N (many for N=1, where the p99 matters)."""
    ns: list[int] = mode.pick("ns", [1, 100, 1000, 10_000], [1, 100, 1000, 10_000])
    quick = {1: 40, 100: 8, 1000: 3, 10_000: 1}
    full = {1: 200, 100: 20, 1000: 11, 10_000: 15}
    rounds: int | None = mode.overrides.get("rounds")
    return {n: rounds or (quick if mode.quick else full).get(n, 3) for n in ns}


async def measure(mode: Mode, progress: Progress) -> dict[str, dict[int, list[dict[str, Any]]]]:
    """Raw rounds: contender -> N -> round results."""
    contenders = mode.overrides.get("contenders") or with_legacy(mode, "ours", "floor")
    raw: dict[str, dict[int, list[dict[str, Any]]]] = {c: {} for c in contenders}
    with ExitStack() as stack:
        servers = await asyncio.to_thread(start_all, stack, mode, contenders)
        for n, rounds in fanout_rounds(mode).items():

            async def one(name: str, _: int, n: int = n) -> dict[str, Any]:
                base = servers[name].url
                return await load.timed_reset(
                    base, base, [base / ws_path(name)], n, reset_path(name), n >= CPU_FROM
                )

            for name, runs in (
                await interleave(contenders, rounds, one, progress, f"N={n}")
            ).items():
                raw[name][n] = runs
    return raw


def summarize(
    raw: dict[str, dict[int, list[dict[str, Any]]]],
) -> dict[str, dict[int, dict[str, float]]]:
    """contender -> N -> median/p99 delay (ms) and the worst closed count."""
    out: dict[str, dict[int, dict[str, float]]] = {}
    for name, per_n in raw.items():
        out[name] = {}
        for n, runs in per_n.items():
            delays = [r["delay"] * 1000 for r in runs if not math.isnan(r["delay"])]
            out[name][n] = {
                "median_ms": median(delays),
                "p99_ms": percentile(delays, 99),
                "cpu_us": median([r.get("cpu_us", math.nan) for r in runs]),
                "min_closed": min(r["closed"] for r in runs),
                "rounds": len(runs),
            }
    return out


async def run(mode: Mode, progress: Progress) -> Result:
    raw = await measure(mode, progress)
    summary = summarize(raw)
    floor = summary["floor"]
    rows, targets = [], []
    for n in sorted(floor):
        floor_ms = [r["delay"] for r in raw["floor"][n]]
        for name in summary:
            s = summary[name][n]
            paired = paired_ratio([r["delay"] for r in raw[name][n]], floor_ms)
            rows.append(
                [
                    f"{n:,}",
                    name,
                    fmt(s["median_ms"]),
                    fmt(s["p99_ms"]),
                    fmt(ratio(s["median_ms"], floor[n]["median_ms"])),
                    fmt(paired),
                    "-" if math.isnan(s["cpu_us"]) else fmt(s["cpu_us"], 0),
                    f"{s['min_closed']:,}/{n:,}",
                    str(s["rounds"]),
                ]
            )
        ours = summary["ours"][n]
        r = ratio(ours["median_ms"], floor[n]["median_ms"])
        p = paired_ratio([x["delay"] for x in raw["ours"][n]], floor_ms)
        targets.append(
            Target(
                f"N={n:,}: <= 1.2x floor (median of paired rounds)",
                p <= 1.2,
                f"{fmt(p)}x (ratio of medians {fmt(r)}x)",
            )
        )
        if n == 1:
            targets.append(
                Target("N=1: p99 < 20 ms", ours["p99_ms"] < 20, f"{fmt(ours['p99_ms'])} ms")
            )
    notes = [
        "Delay: from the reset response fully read by the client to the last socket "
        "receiving CLOSE (client clock, one process). Floor: the reset handler writes its "
        "response, then `asyncio.gather(ws.close() ...)` over a hand-made dict. "
        "`x floor (paired)`: the median over rounds of this contender's delay / "
        "the floor's delay in the same round (rounds run back to back), which the target uses; "
        "`x floor (medians)` is shown too.",
        f"Server CPU µs/close (N >= {CPU_FROM:,}): the server's CPU time from just before the "
        "reset request to the last CLOSE received, per socket; it includes the reset request "
        "and, for the floor, nothing the registry does. The client shares the 2 cores, so "
        "delays at large N also depend on how the two processes are scheduled.",
    ]
    if LEGACY not in summary:
        notes.append("1.1.1 not run: its venv could not be created.")

    def plot(ax: Any) -> None:
        for name, per_n in summary.items():
            ns = sorted(per_n)
            ax.plot(ns, [per_n[n]["median_ms"] for n in ns], marker="o", label=name)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("sockets in the session (N)")
        ax.set_ylabel("median delay after the response (ms)")
        ax.legend()

    return Result(
        NAME,
        "Close fan-out: one session, N sockets",
        [
            "N",
            "contender",
            "median ms",
            "p99 ms",
            "x floor (medians)",
            "x floor (paired)",
            "server CPU µs/close",
            "closed",
            "rounds",
        ],
        rows,
        targets,
        notes,
        {"raw": raw, "summary": summary},
        plot,
    )
