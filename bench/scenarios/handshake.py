"""Scenario 1: websocket connects/s through `session_ws`, vs bare and vs 1.1.1."""

from __future__ import annotations

import asyncio
import time
from contextlib import ExitStack

from yarl import URL

from .. import load
from ..report import Result, Target, bar_plot, columns, fmt
from ..runner import Mode, Progress, interleave, median, paired_ratio, ratio
from .contenders import LEGACY, start_all, with_legacy

NAME = "handshake"
CONCURRENCY = 32


async def connect_round(base: URL, cycles: int) -> dict[str, float]:
    """`cycles` connect+close cycles, `CONCURRENCY` at a time, on one session."""
    async with load.client() as http:
        cookie = await load.login(http, base)
        url = base / "ws"

        before = await load.stats(http, base)
        client_cpu = time.process_time()
        start = time.perf_counter()
        await load.bounded_gather(
            [lambda: load.connect_close(http, url, cookie)] * cycles, limit=CONCURRENCY
        )
        wall = time.perf_counter() - start
        client_cpu = time.process_time() - client_cpu
        after = await load.stats(http, base)
    return {
        "per_s": cycles / wall,
        "cpu_us": (after["cpu"] - before["cpu"]) / cycles * 1e6,
        "client_cpu_us": client_cpu / cycles * 1e6,
    }


async def run(mode: Mode, progress: Progress) -> Result:
    contenders = mode.overrides.get("contenders") or with_legacy(mode, "ours", "bare")
    cycles = mode.pick("cycles", 1000, 3000)
    rounds = mode.pick("rounds", 4, 15)
    with ExitStack() as stack:
        servers = await asyncio.to_thread(start_all, stack, mode, contenders)
        await connect_round(servers[contenders[0]].url, 100)  # warm the client

        async def one(name: str, _: int) -> dict[str, float]:
            return await connect_round(servers[name].url, cycles)

        raw = await interleave(contenders, rounds, one, progress, f"{cycles} cycles")
    per_s = {n: median([r["per_s"] for r in runs]) for n, runs in raw.items()}
    cpu = {n: median([r["cpu_us"] for r in runs]) for n, runs in raw.items()}
    client = {n: median([r["client_cpu_us"] for r in runs]) for n, runs in raw.items()}

    def paired(key: str, a: str, b: str) -> float:
        """Median over rounds of a's figure / b's, each pair run back to back."""
        return paired_ratio([r[key] for r in raw[a]], [r[key] for r in raw[b]])

    rows = [
        [
            n,
            fmt(per_s[n]),
            fmt(ratio(per_s["ours"], per_s[n])),
            fmt(paired("per_s", "ours", n)),
            fmt(cpu[n], 0),
            fmt(ratio(cpu[n], cpu["ours"])),
            fmt(paired("cpu_us", n, "ours")),
            fmt(client[n], 0),
            str(rounds),
        ]
        for n in contenders
    ]
    # Judged on the paired ratios, as fan-out is: the load on the shared machine
    # drifts between rounds, and each pair shares its moment's load.
    vs_bare = paired("per_s", "ours", "bare")
    cpu_vs_bare = paired("cpu_us", "bare", "ours")  # > 1: ours costs less CPU
    targets = [
        Target("connects/s >= 0.95x bare", vs_bare >= 0.95, f"{fmt(vs_bare)}x"),
        Target(
            "stricter reading: server CPU per connect, bare/ours >= 0.95",
            cpu_vs_bare >= 0.95,
            f"{fmt(cpu_vs_bare)}",
        ),
    ]
    if LEGACY in per_s:
        vs_legacy = paired("per_s", "ours", LEGACY)
        targets.append(Target("connects/s >= 1.0x 1.1.1", vs_legacy >= 1.0, f"{fmt(vs_legacy)}x"))
    notes = [
        f"One round: {cycles:,} connect+close cycles, {CONCURRENCY} in flight, one session "
        "(cookie already set). Every contender sits behind aiohttp_session's middleware and "
        "session_ws_middleware; `bare` answers with a plain `web.WebSocketResponse`.",
        "Server CPU per connect: the server process's user+system CPU time over the round "
        "divided by the cycles (the load generator is Python too and shares the 2 cores).",
        "Targets are judged on the paired ratios: the median over rounds of the ratio of "
        "two contenders' rounds run back to back (the machine's load drifts between rounds).",
    ]

    return Result(
        NAME,
        "Handshake cost: websocket connects/s",
        columns(
            "contender | connects/s (median) | ours / this | ours / this (paired) | "
            "server CPU µs/connect | this CPU / ours CPU | this CPU / ours CPU (paired) | "
            "client CPU µs/connect | rounds"
        ),
        rows,
        targets,
        notes,
        {"raw": raw},
        bar_plot(per_s, "connects/s (median)"),
    )
