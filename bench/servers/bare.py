"""Contenders `bare` and `floor`: plain `web.WebSocketResponse` behind the same middleware.

- `/ws`: an untracked bare socket (handshake and memory baseline).
- `/ws-tracked` + `/reset`: the fan-out floor, a hand-made dict of sockets per
  session closed by `asyncio.gather(ws.close() ...)` in the reset handler,
  right after its response has been written.
"""

from __future__ import annotations

import asyncio
from collections.abc import Hashable

from aiohttp import web
from common import echo, new_app, parse_args, respond_now, serve

from aiohttp_session_ws import (
    SessionWSRegistry,
    get_session_ws_id,
    setup,
)

TRACKED: web.AppKey[dict[Hashable, set[web.WebSocketResponse]]] = web.AppKey("tracked")


async def handle_ws(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    await echo(ws)
    return ws


async def handle_ws_tracked(request: web.Request) -> web.WebSocketResponse:
    session_ws_id = await get_session_ws_id(request)
    group = request.app[TRACKED].setdefault(session_ws_id, set())
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    group.add(ws)
    try:
        await echo(ws)
    finally:
        group.discard(ws)
    return ws


async def handle_reset(request: web.Request) -> web.StreamResponse:
    """The floor: write the response, then gather the closes in the handler."""
    sockets = request.app[TRACKED].pop(await get_session_ws_id(request), set())
    response = await respond_now(request)
    await asyncio.gather(*(ws.close() for ws in sockets))
    return response


def make_app() -> web.Application:
    app = new_app()
    app[TRACKED] = {}
    app.router.add_get("/ws", handle_ws)
    app.router.add_get("/ws-tracked", handle_ws_tracked)
    app.router.add_get("/reset", handle_reset)
    setup(app, SessionWSRegistry())
    return app


if __name__ == "__main__":
    serve(make_app(), parse_args().port)
