"""No secrets leak: close reasons, log lines (every logger, DEBUG) and stats() never
carry session ids, identities or cookie values."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import WSMsgType

from aiohttp_session_ws.security import close_all_identity_ws, identity_key
from tests.support.cluster import eventually
from tests.support.redis_server import RedisServer
from tests.support.security_nodes import Served, redis_nodes, running

pytestmark = pytest.mark.redis

USER = "alice"


@pytest.fixture
async def two_nodes(redis_url: str) -> AsyncIterator[list[Served]]:
    async with running(redis_nodes(redis_url, "AB")) as nodes:
        yield nodes


class Seen:
    """Everything secret the test saw, and everything the library said."""

    def __init__(self) -> None:
        self.secrets: set[str] = {USER}
        self.said: list[str] = []

    def cookies(self, http: aiohttp.ClientSession) -> None:
        for morsel in http.cookie_jar:
            self.secrets |= {morsel.value, morsel.coded_value}

    def ids(self, nodes: list[Served]) -> None:
        self.secrets |= {str(sid) for node in nodes for sid in node.registry}

    async def frame(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        msg = await ws.receive(timeout=10)
        while msg.type is WSMsgType.TEXT:
            msg = await ws.receive(timeout=10)
        assert msg.type is WSMsgType.CLOSE, msg
        self.said.append(f"close {msg.data} {msg.extra}")


async def test_nothing_secret_in_close_reasons_logs_or_stats(
    two_nodes: list[Served], redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # the root logger: every library, aiohttp's too
    a, b = two_nodes
    seen = Seen()
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        anonymous = await http.ws_connect(a.url / "ws")
        seen.cookies(http)
        seen.ids(two_nodes)
        async with http.post(a.url / "login", json={"user": USER}) as resp:
            assert resp.status == 200
        await seen.frame(anonymous)  # login closes the anonymous socket
        seen.cookies(http)
        on_a, on_b = await http.ws_connect(a.url / "ws"), await http.ws_connect(b.url / "ws")
        await eventually(lambda: all(n.registry.stats()["sockets"] for n in two_nodes))
        seen.ids(two_nodes)
        stale = "; ".join(f"{m.key}={m.coded_value}" for m in http.cookie_jar)

        # Log out everywhere: the identity close crosses nodes (and is logged there).
        async with http.post(b.url / "logout-everywhere") as resp:
            assert resp.status == 200
        await seen.frame(on_a)
        await seen.frame(on_b)
        seen.cookies(http)
        # A replayed pre-logout cookie is refused (and counted) on the other node.
        async with aiohttp.ClientSession(headers={"Cookie": stale}) as replay:
            await seen.frame(await replay.ws_connect(a.url / "ws"))
        # Tampered cookies, then a Redis outage with a close that cannot be published.
        tampered = {"Cookie": stale[:-6] + "AAAAAA"}
        async with aiohttp.ClientSession(headers=tampered) as bad, bad.get(a.url / "whoami") as r:
            assert r.status == 200
        again = await http.ws_connect(a.url / "ws")
        seen.ids(two_nodes)
        redis_server.kill()
        async with http.post(a.url / "logout") as resp:
            assert resp.status == 200
        await seen.frame(again)
        redis_server.start()
        with pytest.raises(ValueError) as bad_identity:
            await close_all_identity_ws(a.runner.app, 4242)  # type: ignore[arg-type]
        seen.secrets.add("4242")
        seen.said.append(str(bad_identity.value))

    for node in two_nodes:
        seen.said.append(repr(node.registry.stats()))
    formatter = logging.Formatter()
    for record in caplog.records:
        seen.said.append(record.getMessage())
        if record.exc_info:
            seen.said.append(formatter.formatException(record.exc_info))
    assert any("node A" in line for line in seen.said)  # the library did log
    secrets = {s for s in seen.secrets if len(s) >= 4}
    assert len(secrets) >= 5, secrets  # ids, cookie values and the user were collected
    leaks = [(s, line) for line in seen.said for s in secrets if s in line]
    assert not leaks, leaks[:3]


def test_identity_key_errors_do_not_echo_the_identity() -> None:
    with pytest.raises(ValueError) as info:
        identity_key(31337)  # type: ignore[arg-type]
    assert "31337" not in str(info.value) and "int" in str(info.value)
