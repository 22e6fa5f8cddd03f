"""Contenders `bare` and `floor`: plain `web.WebSocketResponse` behind the same middleware.

- `/ws`: an untracked bare socket (handshake and memory baseline).
- `/ws-tracked` + `/reset`: the fan-out floor, a hand-made dict of sockets per
  session closed by `asyncio.gather(ws.close() ...)` in the reset handler,
  right after its response has been written.
"""

from __future__ import annotations

import asyncio
from collections.abc import Hashable

import aiohttp_session
from aiohttp import WSMsgType, web
from common import parse_args, serve

from aiohttp_session_ws import (
    SessionWSRegistry,
    get_session_ws_id,
    session_ws_middleware,
    setup,
)

TRACKED: web.AppKey[dict[Hashable, set[web.WebSocketResponse]]] = web.AppKey("tracked")


async def handle_login(request: web.Request) -> web.Response:
    return web.json_response({"id": await get_session_ws_id(request)})


async def _echo(ws: web.WebSocketResponse) -> None:
    async for msg in ws:
        if msg.type is WSMsgType.TEXT:
            await ws.send_str(msg.data)


async def handle_ws(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    await _echo(ws)
    return ws


async def handle_ws_tracked(request: web.Request) -> web.WebSocketResponse:
    session_ws_id = await get_session_ws_id(request)
    group = request.app[TRACKED].setdefault(session_ws_id, set())
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    group.add(ws)
    try:
        await _echo(ws)
    finally:
        group.discard(ws)
    return ws


async def handle_reset(request: web.Request) -> web.StreamResponse:
    """The floor: write the response, then gather the closes in the handler."""
    sockets = request.app[TRACKED].pop(await get_session_ws_id(request), set())
    # A StreamResponse: aiohttp_session passes it through (it refuses a prepared Response).
    response = web.StreamResponse(headers={"Content-Type": "text/plain"})
    response.content_length = 5
    response.force_close()
    await response.prepare(request)
    await response.write_eof(b"reset")
    await asyncio.gather(*(ws.close() for ws in sockets))
    return response


def make_app() -> web.Application:
    app = web.Application(
        middlewares=[
            aiohttp_session.session_middleware(aiohttp_session.SimpleCookieStorage()),
            session_ws_middleware,
        ]
    )
    app[TRACKED] = {}
    app.router.add_get("/login", handle_login)
    app.router.add_get("/ws", handle_ws)
    app.router.add_get("/ws-tracked", handle_ws_tracked)
    app.router.add_get("/reset", handle_reset)
    setup(app, SessionWSRegistry())
    return app


if __name__ == "__main__":
    serve(make_app(), parse_args().port)
