"""Extra routes for the session-saving tests, on top of the security test app.

- `GET /form`: the app writes the session (a CSRF token), as a login page does;
- `GET /healthz`: touches no session;
- `POST /slow-write`: reads the session, waits `SLOW_WRITE` seconds, then writes
  `session["last_seen"]` (an XHR in flight while the browser logs out);
- `POST /slow-login`: reads the session, waits `SLOW_WRITE` seconds, then logs in as
  the JSON body's `user` (a login in flight while another tab logs in);
- `POST /stream-logout`: a streamed response (headers already sent) that calls
  `forget(request, response)` and writes `ok` or `error: ...`;
- `GET /ws-auth`: a websocket on which the text `logout` calls `forget(request, ws)`
  and `login:NAME` calls `remember(request, ws, NAME)`; the handler answers `ok`,
  or `error: ...` with the exception's message (and `ping` with `pong`).
"""

from __future__ import annotations

import asyncio
import functools
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp_security
import aiohttp_session
from aiohttp import WSMsgType, web

from aiohttp_session_ws import security as asws_security
from aiohttp_session_ws import session_ws

SLOW_WRITE = 0.3
"""Seconds the slow writer holds the session it read before writing it."""


async def form(request: web.Request) -> web.Response:
    session = await aiohttp_session.get_session(request)
    session.setdefault("csrf", secrets.token_urlsafe(16))
    return web.json_response({"csrf": session["csrf"]})


async def healthz(request: web.Request) -> web.Response:
    return web.Response(text="ok")


async def slow_write(request: web.Request) -> web.Response:
    session = await aiohttp_session.get_session(request)
    user = session.get("AIOHTTP_SECURITY")
    await asyncio.sleep(SLOW_WRITE)
    session["last_seen"] = user or "anonymous"
    return web.json_response({"user": user})


def add_session_routes(app: web.Application, style: str, *, rotate_session: bool = True) -> None:
    """Add the routes above to a `tests.support.security_app.make_app` app of `style`."""
    remember: Callable[..., Awaitable[None]] = aiohttp_security.remember
    forget: Callable[..., Awaitable[None]] = aiohttp_security.forget
    if style == "dropin":
        remember = functools.partial(asws_security.remember, rotate_session=rotate_session)
        forget = functools.partial(asws_security.forget, rotate_session=rotate_session)

    async def ws_auth(request: web.Request) -> web.StreamResponse:
        async with session_ws(request) as ws:
            async for msg in ws:
                if msg.type is not WSMsgType.TEXT:
                    continue
                try:
                    if msg.data == "logout":
                        await forget(request, ws)
                    elif msg.data.startswith("login:"):
                        await remember(request, ws, msg.data.removeprefix("login:"))
                    else:
                        await ws.send_str("pong" if msg.data == "ping" else msg.data)
                        continue
                except Exception as exc:
                    await ws.send_str(f"error: {type(exc).__name__}: {exc}")
                else:
                    if not ws.closed:
                        await ws.send_str("ok")
        return ws

    async def slow_login(request: web.Request) -> web.Response:
        user = (await request.json())["user"]
        await aiohttp_session.get_session(request)
        await asyncio.sleep(SLOW_WRITE)
        response = web.json_response({"user": user})
        await remember(request, response, user)
        return response

    async def stream_logout(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(request)  # headers sent: no cookie can change any more
        try:
            await forget(request, response)
        except Exception as exc:
            await response.write(f"error: {type(exc).__name__}: {exc}".encode())
        else:
            await response.write(b"ok")
        return response

    app.router.add_get("/form", form)
    app.router.add_post("/stream-logout", stream_logout)
    app.router.add_get("/healthz", healthz)
    app.router.add_post("/slow-login", slow_login)
    app.router.add_post("/slow-write", slow_write)
    app.router.add_get("/ws-auth", ws_auth)


def session_count(keys: list[Any]) -> int:
    """How many of Redis `keys` are aiohttp_session records (default cookie name)."""
    return sum(1 for key in keys if bytes(key).startswith(b"AIOHTTP_SESSION_"))
