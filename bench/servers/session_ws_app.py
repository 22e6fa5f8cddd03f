"""The app under test for contenders `ours` and `legacy`.

Both expose the same 1.1.1 public API; the contender is decided by which
interpreter runs this script (the project's venv, or the baseline venv with
aiohttp-session-ws 1.1.1).
"""

from __future__ import annotations

import argparse
from typing import Any

from aiohttp import web
from common import STATS_PROVIDER, echo, new_app, parse_args, respond_now, serve

from aiohttp_session_ws import (
    SessionWSRegistry,
    get_session_ws_id,
    new_session_ws_id,
    schedule_close_all_session_ws,
    session_ws,
    setup,
)


async def handle_ws(request: web.Request) -> web.WebSocketResponse:
    async with session_ws(request) as ws:
        await echo(ws)
    return ws


async def handle_reset(request: web.Request) -> web.Response:
    """Logout-style reset: close the session's sockets after the response, rotate the id."""
    response = web.Response(text="reset")
    await schedule_close_all_session_ws(request, response)
    await new_session_ws_id(request)
    return response


async def handle_reset_direct(request: web.Request) -> web.StreamResponse:
    """Diagnostic: like the floor, write the response, then close in the handler.

    It takes the registry's close path without the wait for the connection to end.
    """
    session_ws_id = await get_session_ws_id(request)
    response = await respond_now(request)
    await request.app["aiohttp_session_ws_registry"].close_all_session(session_ws_id)
    return response


def make_app(registry: Any) -> web.Application:
    """The session app around `registry` (1.1.1's or ours, or a Redis one)."""
    app = new_app()
    app.router.add_get("/ws", handle_ws)
    app.router.add_get("/reset", handle_reset)
    app.router.add_get("/reset-direct", handle_reset_direct)
    setup(app, registry)
    if hasattr(registry, "stats"):  # 1.1.1 has no stats()
        app[STATS_PROVIDER] = registry.stats
    return app


def _options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--revocation-max-size", type=int, default=0)


def main() -> None:
    args = parse_args(_options)
    options = {}
    if args.revocation_max_size:
        options["revocation_max_size"] = args.revocation_max_size
    serve(make_app(SessionWSRegistry(**options)), args.port)


if __name__ == "__main__":
    main()
