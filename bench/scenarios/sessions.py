"""Scenario 6: many sessions (1,000 x 10 sockets), 1,000 concurrent logouts."""

from __future__ import annotations

import asyncio
import time
from contextlib import ExitStack
from typing import Any

from yarl import URL

from .. import load
from ..report import Result, Target, bar_plot, columns, fmt
from ..runner import Mode, Progress, interleave, median, ratio
from .contenders import LEGACY, start_all, with_legacy
from .memory import PER_SESSION

NAME = "sessions"


async def logout_round(base: URL, sessions: int) -> dict[str, Any]:
    """Open `sessions` x PER_SESSION sockets, log every session out at once."""
    async with load.client() as http:
        cookies, sockets = await load.open_sessions(http, base, sessions, PER_SESSION)
        watcher = load.CloseWatcher(sockets)
        cpu_before = (await load.stats(http, base))["cpu"]
        start = time.perf_counter()
        answered = await asyncio.gather(*(load.reset(http, base, c) for c in cookies))
        closed = await watcher.wait(timeout=60)
        end = max(watcher.times, default=time.perf_counter())
        await asyncio.sleep(0.5)  # let the server finish its side of the closes
        cpu = (await load.stats(http, base))["cpu"] - cpu_before
        await load.close_all(sockets)
    return {
        "server_cpu_ms_per_logout": cpu / sessions * 1000,
        "sockets": len(sockets),
        "closed": closed,
        "responses_s": max(answered) - start,
        "all_closed_s": end - start,
        "logouts_per_s": sessions / (end - start),
    }


async def run(mode: Mode, progress: Progress) -> Result:
    contenders = mode.overrides.get("contenders") or with_legacy(mode, "ours")
    sessions = mode.pick("sessions", 1000, 1000)
    rounds = mode.pick("rounds", 1, 5)
    with ExitStack() as stack:
        servers = await asyncio.to_thread(start_all, stack, mode, contenders)

        async def one(name: str, _: int) -> dict[str, Any]:
            return await logout_round(servers[name].url, sessions)

        raw = await interleave(contenders, rounds, one, progress, f"{sessions} sessions")
    rate = {n: median([r["logouts_per_s"] for r in runs]) for n, runs in raw.items()}
    total = sessions * PER_SESSION
    rows = []
    for name, runs in raw.items():
        rows.append(
            [
                name,
                fmt(rate[name]),
                fmt(ratio(rate["ours"], rate[name])),
                fmt(median([r["responses_s"] for r in runs]) * 1000, 0),
                fmt(median([r["all_closed_s"] for r in runs]) * 1000, 0),
                fmt(median([r["server_cpu_ms_per_logout"] for r in runs])),
                f"{min(r['closed'] for r in runs):,}/{total:,}",
                str(len(runs)),
            ]
        )
    worst = min(r["closed"] for r in raw["ours"])
    targets = [Target(f"all {total:,} sockets closed", worst == total, f"{worst:,}")]
    if LEGACY in rate:
        r = ratio(rate["ours"], rate[LEGACY])
        targets.append(Target("logouts/s vs 1.1.1 (reported, no fixed target)", None, f"{fmt(r)}x"))
        cpu = {n: median([r["server_cpu_ms_per_logout"] for r in runs]) for n, runs in raw.items()}
        c = ratio(cpu[LEGACY], cpu["ours"])
        targets.append(
            Target(
                "server CPU per logout, 1.1.1 / ours (reported, no fixed target)",
                None,
                f"{fmt(c)}x",
            )
        )
    notes = [
        f"{sessions:,} sessions x {PER_SESSION} sockets; all {sessions:,} logout requests "
        "(reset: schedule_close_all_session_ws + new_session_ws_id) sent at once; "
        "logouts/s = sessions / time from the first request to the last CLOSE received. "
        "Server CPU per logout: the server's CPU time from just before the first logout to "
        "0.5 s after the last CLOSE, divided by the sessions (it covers 10 socket closes each).",
    ]

    return Result(
        NAME,
        "Many sessions: 1,000 concurrent logouts",
        columns(
            "contender | logouts/s | ours / this | all responses ms | all closed ms | "
            "server CPU ms/logout | closed | rounds"
        ),
        rows,
        targets,
        notes,
        {"raw": raw},
        bar_plot(rate, "logouts/s (median)"),
    )
