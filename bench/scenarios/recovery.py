"""Scenario 7: recovery after Redis faults, three `RedisSessionWSRegistry` nodes (defaults).

Each round: sessions log in on node A and open one socket on B and one on C;
Redis then fails in one of four ways and every session logs out on A while it
does. Measured: from the moment Redis answers again (the silent link: from the
moment it went silent) to the last of those sockets receiving CLOSE.

- silence: B reaches Redis through a proxy that silences B's open connections
  (no FIN, no RST; new connections are forwarded), as a NAT that forgot the flows;
- stall: Redis SIGSTOPped for 1.5 s;
- kill: Redis SIGKILLed, restarted (empty) 1.5 s later;
- failover: the Sentinel-managed master SIGKILLed, the replica promoted.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from functools import partial
from typing import Any

from yarl import URL

from .. import load
from ..procs import Server
from ..report import Result, Target, fmt
from ..runner import Mode, Progress, median, percentile

NAME = "recovery"
PING_INTERVAL, REDIS_TIMEOUT, RECONNECT_CAP, CLOSE_TIMEOUT = 1.0, 1.0, 2.0, 2.0
"""The registry's defaults, which the nodes run with."""
DEAF_BOUND = PING_INTERVAL + REDIS_TIMEOUT
RECOVERY_BOUND = RECONNECT_CAP + 3 * REDIS_TIMEOUT + CLOSE_TIMEOUT
FAULTS = ["silence", "stall", "kill", "failover"]

Fault = Callable[[Callable[[], Awaitable[None]]], Awaitable[float]]
"""Breaks Redis, runs the logouts, repairs Redis; returns when (perf_counter): see
tests/support/faults.py."""


class Cluster:
    """Nodes A B C (processes) on one Redis (or Sentinel), B possibly through a proxy."""

    def __init__(self, stack: AsyncExitStack) -> None:
        self.stack = stack
        self.urls: dict[str, URL] = {}

    async def start(self, args_of: Callable[[str], list[str]]) -> None:
        for name in "ABC":
            server = Server("cluster.py", sys.executable, ["--node-id", name, *args_of(name)])
            await asyncio.to_thread(server.start)
            self.stack.callback(server.stop)
            self.urls[name] = server.url

    async def settled(self, http: Any, timeout: float = 60.0) -> None:
        """Every node subscribed, Redis up, nothing left in an outbox."""
        for url in self.urls.values():
            stats = await load.wait_for_server(
                http,
                url,
                lambda s: (
                    s["registry"]["subscribed"]
                    and s["registry"]["redis_up"]
                    and s["registry"]["outbox"] == 0
                ),
                timeout,
            )
            if not stats["registry"]["subscribed"]:
                raise RuntimeError(f"node at {url} did not recover: {stats['registry']}")


async def one_round(
    cluster: Cluster, sessions: int, fault: Fault, watch_b: bool = False
) -> dict[str, Any]:
    a, b, c = (cluster.urls[n] for n in "ABC")
    async with load.client() as http:
        await cluster.settled(http)
        cookies = await load.bounded_gather([lambda: load.login(http, a)] * sessions)
        groups = await load.bounded_gather(
            [partial(load.open_sockets, http, [b / "ws", c / "ws"], cookie) for cookie in cookies]
        )
        sockets = [ws for group in groups for ws in group]
        for url in (b, c):
            await load.wait_for_server(
                http, url, lambda s: s["registry"]["sockets"] >= sessions, 30
            )
        before = (await load.stats(http, b))["registry"]["liveness_failures"]
        watcher = load.CloseWatcher(sockets)
        detected: list[float] = []
        poller = asyncio.ensure_future(_detection(http, b, before, detected)) if watch_b else None

        async def logouts() -> None:
            await load.bounded_gather([partial(load.reset, http, a, cookie) for cookie in cookies])

        repaired = await fault(logouts)
        closed = await watcher.wait(timeout=RECOVERY_BOUND + DEAF_BOUND + 30)
        if poller is not None:  # B notices the silence even if a reconcile closed first
            done, _ = await asyncio.wait([poller], timeout=DEAF_BOUND + 10)
            if not done:
                poller.cancel()
        await load.close_all(sockets)
    # A round that left a socket open never recovered: inf, so that p95 and max show it
    # (a nan would slip through max() and the percentiles).
    last = max(watcher.times) - repaired if closed == len(sockets) else float("inf")
    return {
        "sockets": len(sockets),
        "closed": closed,
        "recovery": last,
        "detection": detected[0] - repaired if detected else float("nan"),
    }


async def _detection(http: Any, url: URL, before: int, found: list[float]) -> None:
    """Record when node `url` first reports a deaf subscription."""
    while True:
        stats = await load.stats(http, url)
        if stats["registry"]["liveness_failures"] > before:
            found.append(time.perf_counter())
            return
        await asyncio.sleep(0.02)


async def run_fault(name: str, mode: Mode, progress: Progress) -> list[dict[str, Any]]:
    # The test suite's helpers (private redis-server, proxy, Sentinel): importable
    # from the repository root only.
    from tests.support import faults
    from tests.support.proxy import SilentProxy
    from tests.support.redis_server import RedisServer
    from tests.support.sentinel import SERVICE, SentinelSet

    rounds = mode.pick("rounds", 3, 20)
    sessions = mode.pick("sessions", 20, 200)
    results = []
    async with AsyncExitStack() as stack:
        cluster = Cluster(stack)
        fault: Fault
        if name == "failover":
            sentinels = SentinelSet()
            await asyncio.to_thread(sentinels.start)
            stack.push_async_callback(asyncio.to_thread, sentinels.stop)
            addresses = ",".join(f"{h}:{p}" for h, p in sentinels.addresses)
            await cluster.start(lambda _: ["--sentinel", addresses, "--service", SERVICE])
            failover = faults.Failover(sentinels, clock=time.perf_counter)
            stack.push_async_callback(failover.settled)
            fault = failover
        else:
            redis = RedisServer()
            await asyncio.to_thread(redis.start)
            stack.callback(redis.stop)
            proxy = SilentProxy(redis.port)
            await proxy.start()
            stack.push_async_callback(proxy.stop)
            await cluster.start(
                lambda node: ["--redis-url", proxy.url if node == "B" else redis.url]
            )
            make = {
                "silence": partial(faults.silence, proxy),
                "stall": partial(faults.stall, redis),
                "kill": partial(faults.kill, redis),
            }
            fault = make[name](clock=time.perf_counter)
        for index in range(rounds):
            progress.update(f"{name} round {index + 1}/{rounds}")
            results.append(await one_round(cluster, sessions, fault, watch_b=name == "silence"))
    return results


async def run(mode: Mode, progress: Progress) -> Result:
    faults = mode.pick("faults", FAULTS, FAULTS)
    raw = {name: await run_fault(name, mode, progress) for name in faults}
    rows, targets = [], []
    for name, rounds in raw.items():
        times = [r["recovery"] for r in rounds]
        sockets = sum(r["sockets"] for r in rounds)
        closed = sum(r["closed"] for r in rounds)
        bound = DEAF_BOUND + RECOVERY_BOUND if name == "silence" else RECOVERY_BOUND
        detection = [r["detection"] for r in rounds]
        rows.append(
            [
                name,
                str(len(rounds)),
                f"{closed:,}/{sockets:,}",
                fmt(median(times)),
                fmt(percentile(times, 95)),
                fmt(max(times)),
                fmt(max(detection)) if name == "silence" else "-",
                fmt(bound, 1),
            ]
        )
        targets.append(
            Target(
                f"{name}: every stranded socket closed within {fmt(bound, 1)} s",
                closed == sockets and max(times) <= bound,
                f"{closed:,}/{sockets:,}, max {fmt(max(times))} s",
            )
        )
    notes = [
        "Three node processes with the registry's defaults (ping_interval 1 s, redis_timeout "
        "1 s, reconnect_cap 2 s, close_timeout 2 s), a private redis-server (or a master, a "
        "replica and three sentinels with down-after-milliseconds 500), all on loopback. Each "
        "round: sessions log in on A with a socket on B and one on C, and all log out on A "
        "during the fault. Recovery: from Redis answering again (silence: from the link "
        "going silent; failover: from a sentinel naming the new master) to the last socket "
        "receiving CLOSE. Detection (silence): until B reports its subscription deaf. "
        f"Bounds from the README: deaf subscription {fmt(DEAF_BOUND, 1)} s, recovery "
        f"{fmt(RECOVERY_BOUND, 1)} s.",
    ]

    def plot(ax: Any) -> None:
        ax.boxplot([[r["recovery"] for r in raw[n]] for n in raw], tick_labels=list(raw))
        ax.set_ylabel("last stranded socket closed (s after recovery)")

    return Result(
        NAME,
        "Recovery after Redis faults: 3 nodes",
        [
            "fault",
            "rounds",
            "closed",
            "recovery p50 s",
            "p95 s",
            "max s",
            "detection max s",
            "bound s",
        ],
        rows,
        targets,
        notes,
        raw,
        plot,
    )
