"""Two `python -m demo_auth --redis` processes sharing the test run's redis-server."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import aiohttp
import pytest

from aiohttp_session_ws import SESSION_ENDED_CODE
from tests.support.demo_auth_client import DemoUser, close_code
from tests.support.demo_process import DemoProcess

pytestmark = [pytest.mark.redis, pytest.mark.timeout(60)]


@pytest.fixture
def nodes(redis_url: str) -> Iterator[tuple[DemoProcess, DemoProcess]]:
    node_a, node_b = DemoProcess("--redis", redis_url), DemoProcess("--redis", redis_url)
    try:
        node_a.launch()
        node_b.launch()
        node_a.wait_ready()
        node_b.wait_ready()
        yield node_a, node_b
    finally:
        node_a.close()
        node_b.close()


class Browser:
    """One cookie jar (cookies are per host, not per port) and a client per node."""

    def __init__(self, node_a: DemoProcess, node_b: DemoProcess) -> None:
        jar = aiohttp.CookieJar(unsafe=True)
        self.a = DemoUser(aiohttp.ClientSession(node_a.url, cookie_jar=jar))
        self.b = DemoUser(aiohttp.ClientSession(node_b.url, cookie_jar=jar))
        self.origin_a, self.origin_b = node_a.url, node_b.url

    async def close(self) -> None:
        await self.a.client.close()
        await self.b.client.close()


@pytest.fixture
async def browsers(
    nodes: tuple[DemoProcess, DemoProcess],
) -> AsyncIterator[tuple[Browser, Browser]]:
    laptop, phone = Browser(*nodes), Browser(*nodes)
    yield laptop, phone
    await laptop.close()
    await phone.close()


async def test_logout_on_node_a_closes_the_socket_on_node_b(
    browsers: tuple[Browser, Browser],
) -> None:
    laptop, _ = browsers
    assert await laptop.a.login() == 303
    assert await laptop.b.me() == "alice"  # one session store for both nodes
    ws, who = await laptop.b.ws(origin=laptop.origin_b)
    assert who == "alice"
    assert await laptop.a.logout() == 303
    assert await close_code(ws) == SESSION_ENDED_CODE
    assert await laptop.b.me() is None
    ws, who = await laptop.b.ws(origin=laptop.origin_b)
    assert who is None
    await ws.close()


async def test_logout_everywhere_on_node_a_logs_out_a_session_on_node_b(
    browsers: tuple[Browser, Browser],
) -> None:
    laptop, phone = browsers
    assert await laptop.a.login() == 303
    assert await phone.b.login() == 303
    ws_phone, who = await phone.b.ws(origin=phone.origin_b)
    assert who == "alice"
    assert await laptop.a.logout("/logout-everywhere") == 303
    assert await close_code(ws_phone) == SESSION_ENDED_CODE
    assert await phone.b.me() is None and await phone.a.me() is None
    await ws_phone.close()


async def test_each_node_accepts_its_own_origin_only(browsers: tuple[Browser, Browser]) -> None:
    laptop, _ = browsers
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await laptop.b.client.ws_connect("/ws", origin=laptop.origin_a)
    assert refused.value.status == 403


def test_nodes_shut_down_cleanly(nodes: tuple[DemoProcess, DemoProcess]) -> None:
    for node in nodes:
        assert node.stop() == 0
        output = node.output()
        assert "login demo on http://127.0.0.1:" in output
        assert "Traceback" not in output and "Unclosed" not in output, output


async def test_login_throttling_is_shared_by_the_nodes(browsers: tuple[Browser, Browser]) -> None:
    """Item 7 with --redis: failures on node A count on node B (5 a minute per account)."""
    laptop, _ = browsers
    for _ in range(5):
        data = {"csrf_token": await laptop.a.token(), "username": "carol", "password": "x"}
        assert (await laptop.a.post("/login", data))[0] == 401
    data = {"csrf_token": await laptop.b.token(), "username": "carol", "password": "x"}
    async with laptop.b.client.post("/login", data=data, allow_redirects=False) as resp:
        assert resp.status == 429 and int(resp.headers["Retry-After"]) >= 1
