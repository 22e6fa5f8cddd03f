"""A small app built on the core API, shared by the core tests."""

from __future__ import annotations

from typing import Any

import aiohttp_session
from aiohttp import WSMsgType, web

from aiohttp_session_ws import (
    SessionWSRegistry,
    ensure_session_ws_id,
    get_session_ws_id,
    new_session_ws_id,
    schedule_close_all_session_ws,
    session_ws,
    session_ws_middleware,
    setup,
)


async def handle_id(request: web.Request) -> web.Response:
    """The session's id, created (with the session) if missing: a page that wants one."""
    return web.json_response({"id": await ensure_session_ws_id(request)})


async def handle_reset(request: web.Request) -> web.Response:
    response = web.Response(text="reset")
    await schedule_close_all_session_ws(request, response)
    await new_session_ws_id(request)
    return response


async def handle_ws(request: web.Request) -> web.WebSocketResponse:
    async with session_ws(request) as ws:
        await ws.send_json({"id": await get_session_ws_id(request)})
        async for msg in ws:
            if msg.type is WSMsgType.TEXT and msg.data == "reset-from-inside":
                await schedule_close_all_session_ws(request, ws)
                await ws.send_str("scheduled")
    return ws


def make_app(
    registry: SessionWSRegistry | None = None,
    *,
    storage: aiohttp_session.AbstractStorage | None = None,
    **registry_options: Any,
) -> web.Application:
    app = web.Application(
        middlewares=[
            aiohttp_session.session_middleware(storage or aiohttp_session.SimpleCookieStorage()),
            session_ws_middleware,
        ]
    )
    app.router.add_get("/id", handle_id)
    app.router.add_get("/reset", handle_reset)
    app.router.add_get("/ws", handle_ws)
    setup(app, registry if registry is not None else SessionWSRegistry(**registry_options))
    return app
