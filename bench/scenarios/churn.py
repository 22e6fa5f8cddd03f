"""Scenario 5: connect/close churn; the registry ends empty and memory stays flat."""

from __future__ import annotations

import asyncio
from contextlib import ExitStack
from functools import partial
from typing import Any

import aiohttp
from yarl import URL

from .. import load
from ..report import Result, Target, fmt
from ..runner import Mode, Progress
from .contenders import server

NAME = "churn"
CONCURRENCY = 32
CHECKPOINTS = 10
REVOKE_EVERY = 5
"""One cycle in this many also starts a session and logs it out (a revocation)."""
REVOCATION_CAP = 1000
"""The server's `revocation_max_size`, small so the churn exceeds it."""


async def cycle(http: aiohttp.ClientSession, base: URL, cookie: str, index: int) -> None:
    """Connect and close one socket; every REVOKE_EVERY-th cycle also revokes a fresh id."""
    await load.connect_close(http, base / "ws", cookie)
    if index % REVOKE_EVERY == 0:
        await load.reset(http, base, await load.login(http, base))


async def churn(base: URL, cycles: int, progress: Progress) -> dict[str, Any]:
    """Run `cycles` cycles in CHECKPOINTS chunks, sampling RSS after each."""
    chunk = cycles // CHECKPOINTS
    samples: list[tuple[int, int]] = []
    async with load.client() as http:
        cookies = [await load.login(http, base) for _ in range(CONCURRENCY)]
        done = 0
        for _ in range(CHECKPOINTS):
            await load.bounded_gather(
                [
                    partial(cycle, http, base, cookies[i % CONCURRENCY], i)
                    for i in range(done, done + chunk)
                ],
                limit=CONCURRENCY,
            )
            done += chunk
            samples.append((done, (await load.stats(http, base, gc=True))["rss"]))
            progress.update(f"{done:,}/{cycles:,} cycles, RSS {samples[-1][1] / 2**20:.1f} MiB")
        final = await load.wait_for_server(
            http, base, lambda s: s["registry"]["sockets"] == 0, timeout=10
        )
    return {"samples": samples, "registry": final["registry"], "cycles": done}


async def run(mode: Mode, progress: Progress) -> Result:
    cycles = mode.pick("cycles", 10_000, 100_000)
    args = ["--revocation-max-size", str(REVOCATION_CAP)]
    with ExitStack() as stack:
        srv = await asyncio.to_thread(stack.enter_context, server("ours", mode, args))
        raw = await churn(srv.url, cycles, progress)
    samples, registry = raw["samples"], raw["registry"]
    warm, final = samples[0][1], samples[-1][1]
    growth = (final - warm) / warm * 100
    revocations = raw["cycles"] // REVOKE_EVERY
    rows = [[f"{n:,}", fmt(rss / 2**20)] for n, rss in samples]
    targets = [
        Target(
            "registry empty afterwards",
            registry["sockets"] == 0 and registry["sessions"] == 0,
            f"{registry['sockets']} sockets, {registry['sessions']} sessions, "
            f"{registry['pending_closes']} pending closes",
        ),
        Target("RSS growth <= 5% (after the first checkpoint)", growth <= 5, f"{fmt(growth)}%"),
        Target(
            f"revoked ids <= cap ({REVOCATION_CAP:,}) after {revocations:,} revocations",
            registry["revoked"] <= REVOCATION_CAP,
            f"{registry['revoked']:,}",
        ),
    ]
    notes = [
        f"`ours` only: {raw['cycles']:,} websocket connect+close cycles, {CONCURRENCY} in "
        f"flight over {CONCURRENCY} sessions; one cycle in {REVOKE_EVERY} also logs a new "
        f"session out (a revocation). Server started with revocation_max_size={REVOCATION_CAP}."
        " RSS sampled after gc.collect() at each checkpoint; growth = last vs first.",
    ]

    def plot(ax: Any) -> None:
        ax.plot([n for n, _ in samples], [rss / 2**20 for _, rss in samples], marker="o")
        ax.set_xlabel("cycles")
        ax.set_ylabel("server RSS (MiB)")
        ax.set_ylim(bottom=0)

    return Result(
        NAME,
        f"Churn: {raw['cycles']:,} connect/close cycles",
        ["cycles", "server RSS MiB"],
        rows,
        targets,
        notes,
        {"raw": raw},
        plot,
    )
