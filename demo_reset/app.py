"""The 1.1.1 reset demo, kept small: `/`, `/reset` and `/ws`."""

from __future__ import annotations

import asyncio
from importlib.resources import files

import aiohttp_session
from aiohttp import web

from aiohttp_session_ws import (
    SessionWSRegistry,
    get_session_ws_id,
    new_session_ws_id,
    schedule_close_all_session_ws,
    session_ws,
    session_ws_middleware,
    setup,
)

PAGE = files("demo_reset").joinpath("index.html").read_text(encoding="utf-8")


async def handle_root(request: web.Request) -> web.Response:
    return web.Response(text=PAGE, content_type="text/html")


async def handle_reset(request: web.Request) -> web.Response:
    """Close this session's sockets once the response is delivered, then rotate the id."""
    response = web.json_response({"reset": True})
    await schedule_close_all_session_ws(request, response)
    await new_session_ws_id(request)
    return response


async def handle_websocket(request: web.Request) -> web.WebSocketResponse:
    async with session_ws(request, heartbeat=30) as ws:
        ticker = asyncio.create_task(tick(ws, str(await get_session_ws_id(request))))
        try:
            async for _ in ws:  # keep reading so closes and pings are handled
                pass
        finally:
            ticker.cancel()
    return ws


async def tick(ws: web.WebSocketResponse, session_ws_id: str) -> None:
    seconds = 0
    while not ws.closed:
        await ws.send_json({"session": session_ws_id[:8], "seconds": seconds})
        await asyncio.sleep(1)
        seconds += 1


def make_app() -> web.Application:
    app = web.Application(
        middlewares=[
            # SimpleCookieStorage keeps the demo readable; use EncryptedCookieStorage or
            # RedisStorage in production (see the README's security guide).
            aiohttp_session.session_middleware(aiohttp_session.SimpleCookieStorage()),
            session_ws_middleware,
        ]
    )
    app.router.add_get("/", handle_root)
    app.router.add_post("/reset", handle_reset)
    app.router.add_get("/ws", handle_websocket)
    setup(app, SessionWSRegistry())
    return app
