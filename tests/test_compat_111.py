"""Code written for aiohttp-session-ws 1.1.1 runs unchanged (issue #14).

Each test does what a 1.1.1 user's app, subclass or unit test did, over real
servers where 1.1.1 users had them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Hashable
from typing import Any

import aiohttp
from aiohttp import web

from aiohttp_session_ws import REGISTRY_KEY, SESSION_ENDED_CODE, SessionWSRegistry
from tests.core_app import make_app


async def _open(client: Any) -> tuple[aiohttp.ClientWebSocketResponse, Hashable]:
    ws = await client.ws_connect("/ws")
    hello = await ws.receive_json(timeout=5)
    return ws, hello["id"]


class CallRecordingRegistry(SessionWSRegistry):
    """The 1.1.1 README's cluster extension point: `register`/`unregister` overridden
    with 1.1.1's exact signatures (no keyword arguments)."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str, Hashable, web.WebSocketResponse]] = []

    def register(self, session_ws_id, wsr):
        self.calls.append(("register", session_ws_id, wsr))
        super().register(session_ws_id, wsr)

    def unregister(self, session_ws_id, wsr):
        self.calls.append(("unregister", session_ws_id, wsr))
        super().unregister(session_ws_id, wsr)


async def _alice(request: web.Request) -> list[tuple[str, str]]:
    return [("user", "alice")]


async def test_register_unregister_overrides_with_111_signatures_are_called(
    aiohttp_client: Any,
) -> None:
    registry = CallRecordingRegistry()
    app = make_app(registry)
    client = await aiohttp_client(app)
    ws, session_ws_id = await _open(client)
    assert [(name, sid) for name, sid, _ in registry.calls] == [("register", session_ws_id)]
    server_ws = registry.calls[0][2]
    assert registry[session_ws_id] == {server_ws}
    await ws.close()
    for _ in range(100):
        if len(registry.calls) == 2:
            break
        await asyncio.sleep(0.02)
    assert registry.calls[1] == ("unregister", session_ws_id, server_ws)
    assert session_ws_id not in registry


async def test_extra_keys_reach_a_111_subclass_through_index_keys(aiohttp_client: Any) -> None:
    registry = CallRecordingRegistry()
    registry.add_key_provider(_alice)
    app = make_app(registry)
    client = await aiohttp_client(app)
    ws, session_ws_id = await _open(client)
    assert registry.calls[0][:2] == ("register", session_ws_id)
    server_ws = registry.calls[0][2]
    assert registry.sockets_for_key(("user", "alice")) == {server_ws}
    assert await registry.close_all_key(("user", "alice")) == 1
    msg = await ws.receive(timeout=5)
    assert msg.type is aiohttp.WSMsgType.CLOSE and msg.data == SESSION_ENDED_CODE
    for _ in range(100):
        if registry.stats()["keys"] == 0 and len(registry.calls) == 2:
            break
        await asyncio.sleep(0.02)
    # unregister (the override, then the base) dropped the key index too.
    assert registry.calls[1][0] == "unregister"
    assert registry.stats()["keys"] == 0
    assert app[REGISTRY_KEY] is registry


def test_index_keys_adds_and_unregister_drops_them() -> None:
    registry = SessionWSRegistry()
    ws = web.WebSocketResponse()
    registry.register("sid", ws)
    registry.index_keys("sid", ws, [("user", "a")])
    registry.index_keys("sid", ws, [("user", "a"), ("group", "g")])
    assert registry.sockets_for_key(("user", "a")) == {ws}
    assert registry.sockets_for_key(("group", "g")) == {ws}
    assert registry.stats()["keys"] == 2
    registry.unregister("sid", ws)
    assert registry.stats()["keys"] == 0 and len(registry) == 0
