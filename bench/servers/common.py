"""What every bench server shares: the app and its middleware, /login, /stats, serving."""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import resource
import signal
from collections.abc import Callable
from typing import Any

import aiohttp_session
from aiohttp import WSMsgType, web

from aiohttp_session_ws import ensure_session_ws_id, session_ws_middleware

STATS_PROVIDER: web.AppKey[Callable[[], dict[str, Any]]] = web.AppKey("bench_stats")


def new_app() -> web.Application:
    """An app behind the middleware every contender shares (sessions in a cookie, then
    `session_ws_middleware` from whichever aiohttp_session_ws this interpreter has),
    with `/login` and `/stats`."""
    app = web.Application(
        middlewares=[
            aiohttp_session.session_middleware(aiohttp_session.SimpleCookieStorage()),
            session_ws_middleware,
        ]
    )
    app.router.add_get("/login", handle_login)
    app.router.add_get("/stats", handle_stats)
    return app


async def handle_login(request: web.Request) -> web.Response:
    """The app asks for the session's id (creating the session); the cookie rides on
    this response."""
    return web.json_response({"id": await ensure_session_ws_id(request)})


async def echo(ws: web.WebSocketResponse) -> None:
    """Echo text frames until the socket closes (so a client can tell it is open)."""
    async for msg in ws:
        if msg.type is WSMsgType.TEXT:
            await ws.send_str(msg.data)


async def respond_now(request: web.Request) -> web.StreamResponse:
    """Write a short reset response (connection closing) before the handler returns.

    A StreamResponse, because aiohttp_session refuses a prepared `web.Response`.
    """
    response = web.StreamResponse(headers={"Content-Type": "text/plain"})
    response.content_length = 5
    response.force_close()
    await response.prepare(request)
    await response.write_eof(b"reset")
    return response


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
