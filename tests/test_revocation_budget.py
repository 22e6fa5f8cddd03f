"""Anonymous churn (load a form, log out, repeat) cannot evict the revocation of a session
that had sockets: revocations are kept in separate budgets."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Hashable
from typing import Any

import aiohttp
import aiohttp_security
import aiohttp_session
import pytest
from aiohttp import WSMsgType, web
from aiohttp_security import SessionIdentityPolicy
from aiohttp_session.cookie_storage import EncryptedCookieStorage
from yarl import URL

from aiohttp_session_ws import SessionWSRegistry, session_ws_middleware
from aiohttp_session_ws import security as asws_security
from tests.support.cluster import serve
from tests.support.security_app import COOKIE_KEY, Users
from tests.support.user_socket import hello_user_ws

CAP = 20
CHURN = 3 * CAP


def demo_like_app(
    registry: SessionWSRegistry, hold: asyncio.Event | None = None
) -> web.Application:
    """The demo's shape: GET /form puts a CSRF token in the session, POST /logout forgets."""
    app = web.Application(
        middlewares=[
            aiohttp_session.session_middleware(EncryptedCookieStorage(COOKIE_KEY)),
            session_ws_middleware,
        ]
    )
    asws_security.setup(app, SessionIdentityPolicy(), Users(), registry)

    async def held(request: web.Request) -> list[Hashable]:
        if hold is not None and "X-Hold" in request.headers:
            await hold.wait()  # a slow identity lookup: the handshake is in flight
        return []

    registry.add_key_provider(held)

    async def form(request: web.Request) -> web.Response:
        session = await aiohttp_session.get_session(request)
        session["csrf"] = "token"
        return web.Response(text="form")

    async def login(request: web.Request) -> web.Response:
        response = web.Response(text="in")
        await aiohttp_security.remember(request, response, "alice")
        return response

    async def logout(request: web.Request) -> web.Response:
        response = web.Response(text="out")
        await aiohttp_security.forget(request, response)
        return response

    app.router.add_get("/form", form)
    app.router.add_post("/login", login)
    app.router.add_post("/logout", logout)
    app.router.add_get("/ws", hello_user_ws)
    return app


class Site:
    def __init__(self, app: web.Application) -> None:
        self.app = app
        self.runner = web.AppRunner(app, shutdown_timeout=2.0)
        self.url = URL()

    async def __aenter__(self) -> Site:
        self.url = await serve(self.runner)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.runner.cleanup()

    def client(self) -> aiohttp.ClientSession:
        return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))

    async def churn(self, n: int, *, with_socket: bool = False) -> None:
        """Anonymous visitors: load the form (a session with an id), log out."""
        for _ in range(n):
            async with self.client() as http:
                assert (await http.get(self.url / "form")).status == 200
                if with_socket:
                    ws = await http.ws_connect(self.url / "ws")
                    assert (await ws.receive_json(timeout=5))["user"] is None
                assert (await http.post(self.url / "logout")).status == 200
                if with_socket:
                    await ws.receive(timeout=5)
                    await ws.close()


def cookie_header(http: aiohttp.ClientSession) -> dict[str, str]:
    return {"Cookie": "; ".join(f"{m.key}={m.coded_value}" for m in http.cookie_jar)}


async def expect_refused(site: Site, headers: dict[str, str]) -> None:
    """A socket presenting these (pre-logout) cookies is closed at once with 4001."""
    async with aiohttp.ClientSession(headers=headers) as replay:
        ws = await replay.ws_connect(site.url / "ws")
        msg = await ws.receive(timeout=5)
        assert msg.type is WSMsgType.CLOSE, f"the revoked session was served: {msg}"
        assert msg.data == 4001


async def log_in_with_a_socket_and_log_out(site: Site) -> dict[str, str]:
    """A real user's session with a socket, logged out; returns its pre-logout cookie."""
    async with site.client() as http:
        await http.get(site.url / "form")
        assert (await http.post(site.url / "login")).status == 200
        ws = await http.ws_connect(site.url / "ws")
        assert (await ws.receive_json(timeout=5))["user"] == "alice"
        stale = cookie_header(http)
        assert (await http.post(site.url / "logout")).status == 200
        msg = await ws.receive(timeout=5)
        assert (msg.type, msg.data) == (WSMsgType.CLOSE, 4001)
        await ws.close()
    return stale


@pytest.mark.parametrize("with_socket", [False, True], ids=["no-sockets", "anonymous-sockets"])
async def test_anonymous_churn_does_not_evict_a_logged_out_session(with_socket: bool) -> None:
    registry = SessionWSRegistry(revocation_max_size=CAP)
    async with Site(demo_like_app(registry)) as site:
        stale = await log_in_with_a_socket_and_log_out(site)
        await site.churn(CHURN, with_socket=with_socket)
        await expect_refused(site, stale)
        assert registry.stats()["revoked"] > CAP  # the churn was revoked too, in its budget


async def test_a_logout_during_an_in_flight_handshake_is_not_evicted() -> None:
    """The session has no socket yet, but a handshake in flight: its revocation must hold."""
    hold = asyncio.Event()
    registry = SessionWSRegistry(revocation_max_size=CAP)
    async with Site(demo_like_app(registry, hold)) as site, site.client() as http:
        await http.get(site.url / "form")
        assert (await http.post(site.url / "login")).status == 200
        connecting = asyncio.ensure_future(
            http.ws_connect(site.url / "ws", headers={"X-Hold": "1"})
        )
        await asyncio.sleep(0.3)  # the handshake waits in the identity lookup
        assert not connecting.done()
        assert (await http.post(site.url / "logout")).status == 200
        await site.churn(CHURN)
        hold.set()
        ws = await connecting
        msg = await ws.receive(timeout=5)
        assert (msg.type, msg.data) == (WSMsgType.CLOSE, 4001), msg
        assert registry.stats()["refused"].get("revoked") == 1


@pytest.fixture
async def redis_registry(redis_url: str) -> AsyncIterator[Any]:
    from redis.asyncio import Redis

    from aiohttp_session_ws.redis import RedisSessionWSRegistry

    registry = RedisSessionWSRegistry(
        Redis.from_url(redis_url),
        revocation_max_size=CAP,
        redis_timeout=0.5,
        heartbeat_interval=0.2,
        reconnect_base=0.05,
        reconnect_cap=0.3,
    )
    yield registry
    await registry.redis.aclose()


@pytest.mark.redis
async def test_churn_cannot_evict_the_local_memory_a_redis_outage_relies_on(
    redis_registry: Any, redis_server: Any
) -> None:
    async with Site(demo_like_app(redis_registry)) as site:
        stale = await log_in_with_a_socket_and_log_out(site)
        await site.churn(CHURN)
        redis_server.kill()  # now only this node's own memory answers
        try:
            await expect_refused(site, stale)
        finally:
            redis_server.start()


def test_each_budget_evicts_only_its_own_oldest() -> None:
    from aiohttp_session_ws.revocation import OTHER, SIGNED_IN, SOCKETS, RevokedIds

    budget: dict[object, int] = {"user-session": SIGNED_IN, "tab-session": SOCKETS}
    revoked = RevokedIds(ttl=600, max_size=5, budget_of=lambda key: budget.get(key, OTHER))
    revoked.add("user-session")
    revoked.add("tab-session")
    for i in range(1000):
        revoked.add(f"anonymous-{i}")
    assert "user-session" in revoked and "tab-session" in revoked
    assert "anonymous-994" not in revoked and "anonymous-999" in revoked
    assert revoked.sizes() == (5, 1, 1)
    # Revoked again from a lower budget (another node, no sockets there): it stays up.
    budget["user-session"] = OTHER
    revoked.add("user-session")
    assert revoked.sizes() == (5, 1, 1)
    # An anonymous id that later had sockets moves up, out of reach of the churn.
    budget["anonymous-999"] = SOCKETS
    revoked.add("anonymous-999")
    assert revoked.sizes() == (4, 2, 1)
    revoked.discard("tab-session")
    assert "tab-session" not in revoked and len(revoked) == 6
