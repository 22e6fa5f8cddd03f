"""Scenario 4: RSS per open registered socket, above a bare aiohttp socket."""

from __future__ import annotations

import asyncio
from contextlib import ExitStack
from typing import Any

import aiohttp
from yarl import URL

from .. import load
from ..report import Result, Target, fmt
from ..runner import Mode, Progress, interleave, median
from .contenders import server, with_legacy

NAME = "memory"
PER_SESSION = 10


async def memory_round(base: URL, levels: list[int]) -> dict[str, Any]:
    """RSS of a fresh server after warm-up, then at each level of open sockets."""
    async with load.client() as http:
        _, warm = await load.open_sessions(http, base, 200 // PER_SESSION, PER_SESSION)
        await load.close_all(warm)  # warm-up
        await asyncio.sleep(0.5)
        base_rss = (await load.stats(http, base, gc=True))["rss"]
        sockets: list[aiohttp.ClientWebSocketResponse] = []
        per_socket: dict[int, float] = {}
        held: dict[int, int | None] = {}
        for level in levels:
            more = (level - len(sockets)) // PER_SESSION
            sockets += (await load.open_sessions(http, base, more, PER_SESSION))[1]
            await asyncio.sleep(0.5)
            stats = await load.stats(http, base, gc=True)
            per_socket[level] = (stats["rss"] - base_rss) / level
            held[level] = stats.get("registry", {}).get("sockets")
        await load.close_all(sockets)
    return {"base_rss": base_rss, "per_socket": per_socket, "registered": held}


async def run(mode: Mode, progress: Progress) -> Result:
    contenders = mode.overrides.get("contenders") or with_legacy(mode, "ours", "bare")
    levels = mode.pick("levels", [5000, 10_000], [5000, 10_000])
    rounds = mode.pick("rounds", 1, 3)

    async def one(name: str, _: int) -> dict[str, Any]:
        with ExitStack() as stack:  # a fresh process per round: RSS never shrinks
            srv = await asyncio.to_thread(stack.enter_context, server(name, mode))
            return await memory_round(srv.url, levels)

    raw = await interleave(contenders, rounds, one, progress, "sockets")
    per = {
        name: {lv: median([r["per_socket"][lv] for r in runs]) for lv in levels}
        for name, runs in raw.items()
    }
    rows, targets = [], []
    for level in levels:
        for name in contenders:
            extra = per[name][level] - per["bare"][level]
            rows.append([f"{level:,}", name, fmt(per[name][level], 0), fmt(extra, 0)])
        extra_ours = per["ours"][level] - per["bare"][level]
        targets.append(
            Target(
                f"{level:,} sockets: <= 1 KiB extra per socket",
                extra_ours <= 1024,
                f"{fmt(extra_ours, 0)} B",
            )
        )
    held = raw["ours"][-1]["registered"][levels[-1]]
    targets.append(
        Target(f"{levels[-1]:,} sockets held by one process", held == levels[-1], f"{held}")
    )
    notes = [
        f"Per socket: (RSS with N open - RSS after a 200-socket warm-up) / N, after gc.collect(), "
        f"{PER_SESSION} sockets per session, a fresh server process per round; median of "
        f"{rounds} round(s). RSS is page-granular and allocator-dependent: differences of a "
        "few hundred bytes per socket are within noise.",
    ]

    def plot(ax: Any) -> None:
        width = 0.8 / len(contenders)
        for i, name in enumerate(contenders):
            xs = [j + i * width for j in range(len(levels))]
            ax.bar(xs, [per[name][lv] for lv in levels], width, label=name)
        ax.set_xticks([j + width * (len(contenders) - 1) / 2 for j in range(len(levels))])
        ax.set_xticklabels([f"{lv:,} sockets" for lv in levels])
        ax.set_ylabel("RSS bytes per open socket")
        ax.legend()

    return Result(
        NAME,
        "Memory: RSS per open socket",
        ["open sockets", "contender", "bytes/socket", "extra over bare"],
        rows,
        targets,
        notes,
        {"raw": raw},
        plot,
    )
