"""What every bench server shares: the stats endpoint, the fd limit, serving on a free port."""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import resource
import signal
from collections.abc import Callable
from typing import Any

from aiohttp import web

STATS_PROVIDER: web.AppKey[Callable[[], dict[str, Any]]] = web.AppKey("bench_stats")


def raise_fd_limit() -> int:
    """Raise RLIMIT_NOFILE to its hard limit; return the new soft limit."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def rss_bytes() -> int:
    """The current resident set size of this process (from /proc/self/statm)."""
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE")


def cpu_seconds() -> float:
    """User plus system CPU time used by this process."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def handle_stats(request: web.Request) -> web.Response:
    """RSS (after a full GC), CPU time and, where the app has one, registry stats."""
    if request.query.get("gc"):
        gc.collect()
    body: dict[str, Any] = {"rss": rss_bytes(), "cpu": cpu_seconds()}
    provider = request.app.get(STATS_PROVIDER)
    if provider is not None:
        body["registry"] = provider()
    return web.json_response(body)


def parse_args(
    extra: Callable[[argparse.ArgumentParser], None] | None = None,
) -> argparse.Namespace:
    """The common server options (plus `extra` ones)."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    if extra is not None:
        extra(parser)
    return parser.parse_args()


def serve(app: web.Application, port: int = 0) -> None:
    """Serve `app` on 127.0.0.1, print `PORT <n>` once listening, stop on SIGTERM/SIGINT."""
    raise_fd_limit()
    app.router.add_get("/stats", handle_stats)
    asyncio.run(_serve(app, port))


async def _serve(app: web.Application, port: int) -> None:
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=2.0, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port, backlog=4096)
    await site.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"PORT {runner.addresses[0][1]}", flush=True)
    await stop.wait()
    await runner.cleanup()
