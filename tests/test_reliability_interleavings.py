"""Random interleavings of connect, login, logout, reset and replay (hypothesis).

Each example drives one browser through steps of concurrent operations against
a real server; "replay:k" connects with the cookie the browser held k+1 steps
ago (a tab that reconnects before the new cookie arrives, or a replayed cookie).
After every step no socket may stay open under a revoked id, or
with an identity revoked in its session; and the browser can always connect again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Hashable

import aiohttp
import pytest
from aiohttp import WSMsgType, web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aiohttp_session_ws import (
    SessionWSRegistry,
    get_session_ws_id,
    new_session_ws_id,
    schedule_close_all_session_ws,
)
from aiohttp_session_ws.registry import key_revocation
from aiohttp_session_ws.security import identity_key
from tests.support.cluster import eventually
from tests.support.security_nodes import Served
from tests.support.sizes import size

# 100 examples took 100 s at full size on a loaded 2-core machine, near the default 120 s.
pytestmark = [pytest.mark.heavy, pytest.mark.timeout(size(120, 600))]

OPERATIONS = (
    "connect",
    "connect",
    "login:alice",
    "login:bob",
    "logout",
    "reset",
    "replay:0",
    "replay:1",
)
STEPS = st.lists(
    st.lists(st.sampled_from(OPERATIONS), min_size=1, max_size=3), min_size=1, max_size=6
)
SETTINGS = settings(
    max_examples=size(25, 100),
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)


async def handle_reset(request: web.Request) -> web.Response:
    response = web.json_response({"id": await get_session_ws_id(request)})
    await schedule_close_all_session_ws(request, response)
    await new_session_ws_id(request)
    return response


def survivors(registry: SessionWSRegistry) -> list[Hashable]:
    """Ids with an open socket that a close should have ended."""
    bad: list[Hashable] = []
    for session_id in list(registry):
        if session_id in registry.revoked and any(not ws.closed for ws in registry[session_id]):
            bad.append(session_id)
    for user in ("alice", "bob"):
        key = identity_key(user)
        for ws in registry.sockets_for_key(key):
            owner = next(sid for sid in registry if ws in registry[sid])
            if not ws.closed and key_revocation(owner, key) in registry.revoked:
                bad.append((owner, user))
    return bad


def cookie_header(http: aiohttp.ClientSession) -> str:
    return "; ".join(f"{m.key}={m.coded_value}" for m in http.cookie_jar)


async def operate(
    http: aiohttp.ClientSession,
    replayer: aiohttp.ClientSession,
    node: Served,
    op: str,
    history: list[str],
) -> object:
    if op == "connect" or op.startswith("replay:"):
        if op.startswith("replay:"):
            back = min(int(op.split(":")[1]) + 2, len(history))  # history[-1]: the current
            ws = await replayer.ws_connect(node.url / "ws", headers={"Cookie": history[-back]})
        else:
            ws = await http.ws_connect(node.url / "ws")
        msg = await ws.receive(timeout=10)
        assert msg.type in (WSMsgType.TEXT, WSMsgType.CLOSE), msg
        if msg.type is WSMsgType.CLOSE:
            assert ws.close_code == 4001
        return ws
    if op.startswith("login:"):
        request = http.post(node.url / "login", json={"user": op.split(":")[1]})
    elif op == "logout":
        request = http.post(node.url / "logout")
    else:
        request = http.get(node.url / "reset")
    async with request as resp:
        assert resp.status == 200, await resp.text()
    return None


async def scenario(steps: list[list[str]]) -> None:
    node = Served(SessionWSRegistry())
    node.runner.app.router.add_get("/reset", handle_reset)
    await node.start()
    registry = node.registry
    sockets: list[aiohttp.ClientWebSocketResponse] = []
    try:
        async with (
            aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http,
            aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as replayer,
        ):
            history: list[str] = []
            for step in steps:
                history.append(cookie_header(http))
                results = await asyncio.gather(
                    *(operate(http, replayer, node, op, history) for op in step)
                )
                sockets += [r for r in results if isinstance(r, aiohttp.ClientWebSocketResponse)]
                await eventually(lambda: registry.stats()["pending_closes"] == 0, timeout=10)
                await eventually(lambda: not survivors(registry), timeout=5, what="no survivor")
            # Liveness: the browser's current cookie is never refused.
            last = await http.ws_connect(node.url / "ws")
            msg = await last.receive(timeout=10)
            assert msg.type is WSMsgType.TEXT, (steps, msg)
            sockets.append(last)
            for ws in sockets:
                await ws.close()
    finally:
        await node.runner.cleanup()


@SETTINGS
@given(steps=STEPS)
def test_random_interleavings_leave_no_socket_under_a_revoked_id(steps: list[list[str]]) -> None:
    asyncio.run(scenario(steps))
