"""Scenario 3: cross-node close, three `RedisSessionWSRegistry` nodes and one private Redis."""

from __future__ import annotations

import asyncio
import sys
from contextlib import ExitStack
from typing import Any

from .. import load
from ..procs import Server
from ..report import Result, Target, fmt
from ..runner import Mode, Progress, interleave, median, paired_ratio, percentile, ratio
from .contenders import server

NAME = "crossnode"
NODES = "ABC"


def start_cluster(stack: ExitStack, mode: Mode) -> tuple[dict[str, Server], Server]:
    """A private redis-server, nodes A B C, and a plain single-node `ours` server."""
    # The test suite's private redis-server helper (never the shared Redis on 6379);
    # imported here because `tests` is only importable from the repository root.
    from tests.support.redis_server import RedisServer

    redis = RedisServer()
    redis.start()
    stack.callback(redis.stop)
    nodes = {
        name: stack.enter_context(
            Server("cluster.py", sys.executable, ["--redis-url", redis.url, "--node-id", name])
        )
        for name in NODES
    }
    return nodes, stack.enter_context(server("ours", mode))


async def run(mode: Mode, progress: Progress) -> Result:
    single_rounds = mode.pick("single_rounds", 40, 200)
    many = mode.pick("many", 1000, 1000)
    many_rounds = mode.pick("many_rounds", 3, 11)
    with ExitStack() as stack:
        nodes, single = await asyncio.to_thread(start_cluster, stack, mode)
        a, b, c = (nodes[n].url for n in NODES)

        async def one_socket(name: str, index: int) -> dict[str, Any]:
            if name == "cluster":  # socket on B or C, login and reset on A
                return await load.timed_reset(a, a, [(b, c)[index % 2] / "ws"], 1)
            return await load.timed_reset(single.url, single.url, [single.url / "ws"], 1)

        async def spread(name: str, _: int) -> dict[str, Any]:
            if name == "cluster":
                return await load.timed_reset(a, a, [a / "ws", b / "ws", c / "ws"], many)
            return await load.timed_reset(single.url, single.url, [single.url / "ws"], many)

        contenders = ["cluster", "single node"]
        raw_one = await interleave(contenders, single_rounds, one_socket, progress, "1 socket")
        raw_many = await interleave(contenders, many_rounds, spread, progress, f"{many} sockets")
    ms = {
        key: {name: [r["delay"] * 1000 for r in runs] for name, runs in raw.items()}
        for key, raw in (("one", raw_one), ("many", raw_many))
    }
    rows = []
    for name in contenders:
        one, spread_ms = ms["one"][name], ms["many"][name]
        worst = min(r["closed"] for r in raw_many[name])
        rows.append(
            [
                name,
                fmt(median(one)),
                fmt(percentile(one, 99)),
                fmt(median(spread_ms)),
                f"{worst:,}/{many:,}",
            ]
        )
    rows.append(["1.1.1", "cannot run (no cluster)", "-", "-", "-"])
    p99 = percentile(ms["one"]["cluster"], 99)
    vs_medians = ratio(median(ms["many"]["cluster"]), median(ms["many"]["single node"]))
    vs_single = paired_ratio(ms["many"]["cluster"], ms["many"]["single node"])
    targets = [
        Target("1 socket on B/C, reset on A: p99 <= 10 ms", p99 <= 10, f"{fmt(p99)} ms"),
        Target(
            f"{many:,} sockets over A/B/C within 1.5x single-node fan-out",
            vs_single <= 1.5,
            f"{fmt(vs_single)}x paired (ratio of medians {fmt(vs_medians)}x)",
        ),
    ]
    notes = [
        "Three node processes (RedisSessionWSRegistry, default settings) and one private "
        "redis-server on loopback. Delay: from the reset response (from node A) fully read by "
        "the client to the last socket receiving CLOSE. `single node`: the core registry in "
        f"one process, interleaved round by round. {single_rounds} one-socket rounds, "
        f"{many_rounds} rounds of {many:,}; the ratio is the median of per-round cluster/single "
        "ratios (rounds run back to back).",
    ]

    def plot(ax: Any) -> None:
        data = [ms["one"]["cluster"], ms["one"]["single node"]]
        ax.boxplot(data, tick_labels=["cluster (B/C)", "single node"], whis=(1, 99))
        ax.set_ylabel("1 socket: delay after the response (ms)")

    return Result(
        NAME,
        "Cross-node close: 3 nodes + Redis",
        ["setup", "1 socket p50 ms", "1 socket p99 ms", f"{many:,} sockets median ms", "closed"],
        rows,
        targets,
        notes,
        {"raw_one": raw_one, "raw_many": raw_many},
        plot,
    )
