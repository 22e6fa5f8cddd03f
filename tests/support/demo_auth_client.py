"""Helpers for the login demo's tests: a form-filling client and websocket readers."""

from __future__ import annotations

import re
from typing import Any

import aiohttp
from aiohttp import WSMsgType

TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_tokens(html: str) -> list[str]:
    """Every CSRF token rendered in `html`."""
    return TOKEN.findall(html)


class DemoUser:
    """One browser session against the demo: a client with its own cookie jar."""

    def __init__(self, client: Any) -> None:
        self.client = client  # aiohttp TestClient, or anything with get/post/ws_connect

    async def token(self, path: str = "/login") -> str:
        async with self.client.get(path) as resp:
            assert resp.status == 200, await resp.text()
            tokens = csrf_tokens(await resp.text())
        assert tokens, f"no CSRF token on {path}"
        return tokens[0]

    async def post(self, path: str, data: dict[str, str]) -> tuple[int, str, str | None]:
        """POST a form without following redirects: (status, body, Location)."""
        async with self.client.post(path, data=data, allow_redirects=False) as resp:
            return resp.status, await resp.text(), resp.headers.get("Location")

    async def login(self, username: str = "alice", password: str = "wonderland") -> int:
        data = {"csrf_token": await self.token(), "username": username, "password": password}
        status, _, _ = await self.post("/login", data)
        return status

    async def logout(self, path: str = "/logout") -> int:
        status, _, _ = await self.post(path, {"csrf_token": await self.token("/")})
        return status

    async def me(self) -> str | None:
        async with self.client.get("/api/me") as resp:
            assert resp.status == 200
            user: str | None = (await resp.json())["user"]
            return user

    async def ws(self, **kwargs: Any) -> tuple[aiohttp.ClientWebSocketResponse, str | None]:
        """Open /ws; return it and the user named by its first message."""
        ws = await self.client.ws_connect("/ws", **kwargs)
        hello = await ws.receive_json(timeout=5)
        assert hello["type"] == "hello", hello
        return ws, hello["user"]


async def close_code(ws: aiohttp.ClientWebSocketResponse, timeout: float = 5) -> int:
    """Skip the feed's ticks; return the close code the client read (`ws.close_code`)."""
    while True:
        msg = await ws.receive(timeout=timeout)
        if msg.type is WSMsgType.TEXT:
            continue
        assert msg.type is WSMsgType.CLOSE, msg
        assert ws.close_code is not None
        return ws.close_code


async def next_tick(ws: aiohttp.ClientWebSocketResponse, timeout: float = 5) -> dict[str, Any]:
    """The feed's next tick message."""
    while True:
        data: dict[str, Any] = await ws.receive_json(timeout=timeout)
        if data["type"] == "tick":
            return data
