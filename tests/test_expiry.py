"""A socket never outlives its session: `created + max_age`, or a deadline the app sets
(a JWT's `exp`), closes it with the session-ended code and the reason "session expired"."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import aiohttp
import aiohttp_security
import aiohttp_session
import jwt
import pytest
from aiohttp import WSMsgType, web
from aiohttp_security import AbstractIdentityPolicy
from aiohttp_session.cookie_storage import EncryptedCookieStorage

from aiohttp_session_ws import (
    REGISTRY_KEY,
    SESSION_ENDED_CODE,
    SESSION_EXPIRED_REASON,
    SessionWSRegistry,
    session_ws,
    session_ws_middleware,
    set_session_ws_deadline,
)
from aiohttp_session_ws import security as asws_security
from tests.support.cluster import eventually
from tests.support.security_app import (  # noqa: F401 - fixtures
    COOKIE_KEY,
    JWT_SECRET,
    Start,
    Users,
    make_app,
    start_fixture,
)


async def expect_expired(ws: aiohttp.ClientWebSocketResponse, within: float) -> None:
    """The server closes `ws` with 4001 "session expired" within `within` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        msg = await ws.receive(timeout=max(0.01, deadline - loop.time()))
        if msg.type is not WSMsgType.TEXT:
            break
    assert msg.type is WSMsgType.CLOSE, msg
    assert (msg.data, msg.extra) == (SESSION_ENDED_CODE, SESSION_EXPIRED_REASON)


@pytest.mark.parametrize("storage_kind", ["encrypted-cookie", "redis", "redis-registry"])
async def test_session_expiry_closes_the_socket(
    storage_kind: str, start: Start, request: pytest.FixtureRequest
) -> None:
    """The issue's input: max_age=2, the one-call security setup, log in, open a socket,
    wait 4 s: HTTP says anonymous, and the socket was closed as expired."""
    registry: SessionWSRegistry | None = None
    storage: aiohttp_session.AbstractStorage
    clients: list[Any] = []
    if storage_kind == "encrypted-cookie":
        storage = EncryptedCookieStorage(COOKIE_KEY, max_age=2)
    else:
        from aiohttp_session.redis_storage import RedisStorage
        from redis.asyncio import Redis

        client = Redis.from_url(request.getfixturevalue("redis_url"))
        clients.append(client)
        storage = RedisStorage(client, max_age=2)
        if storage_kind == "redis-registry":
            from aiohttp_session_ws.redis import RedisSessionWSRegistry

            registry = RedisSessionWSRegistry(client, heartbeat_interval=0.2)
    app = make_app("session-cookie", "setup", storage, registry=registry)
    browser = await (await start(app))()
    await browser.login("alice")
    ws, user = await browser.ws()
    assert user == "alice"
    started = time.monotonic()
    await expect_expired(ws, within=4.0)
    assert time.monotonic() - started <= 2.5  # at created + max_age, not later
    # aiohttp_session drops the session within the second after created + max_age
    # (it compares whole seconds); 4 s after the socket opened, HTTP agrees.
    await asyncio.sleep(max(0.0, started + 4.0 - time.monotonic()))
    assert await browser.whoami() is None
    stats = app[REGISTRY_KEY].stats()
    assert stats["closed"].get("expired") == 1
    assert stats["sockets"] == 0 and stats["deadlines"] == 0
    await ws.close()
    await browser.client.close()  # the app (and its registry) stop before the client goes
    for client in clients:
        await client.aclose()


async def test_sessions_without_max_age_never_expire(start: Start) -> None:
    app = make_app("session-cookie", "setup", EncryptedCookieStorage(COOKIE_KEY))
    browser = await (await start(app))()
    await browser.login("alice")
    ws, _ = await browser.ws()
    registry = app[REGISTRY_KEY]
    assert registry.stats()["deadlines"] == 0
    await ws.send_str("ping")
    assert (await ws.receive(timeout=5)).data == "pong"
    await ws.close()


async def test_a_socket_opened_after_its_session_expired_is_closed_at_once(
    aiohttp_client: Any,
) -> None:
    """A cookie whose session is past `created + max_age` (but within the second
    aiohttp_session still loads it) gets a socket closed before the handler can use it."""
    storage = aiohttp_session.SimpleCookieStorage(max_age=60)
    app = web.Application(
        middlewares=[aiohttp_session.session_middleware(storage), session_ws_middleware]
    )

    async def handler(request: web.Request) -> web.WebSocketResponse:
        async with session_ws(request) as ws:
            await ws.send_str("hello")  # raises if the socket is closed already
            async for _ in ws:
                pass
        return ws

    app.router.add_get("/ws", handler)
    registry = aiohttp_session_ws_setup(app)
    client = await aiohttp_client(app, cookie_jar=aiohttp.DummyCookieJar())
    # created 60 s ago: aiohttp_session still loads it (age == max_age is not > max_age)
    # until the wall clock's second ticks over: start right after a tick.
    await asyncio.sleep(1.02 - time.time() % 1)
    cookie = {
        "created": int(time.time()) - 60,
        "session": {"aiohttp_session_ws_id": "old-session-id"},
    }
    ws = await client.ws_connect(
        "/ws", headers={"Cookie": f"AIOHTTP_SESSION={json.dumps(json.dumps(cookie))}"}
    )
    msg = await ws.receive(timeout=5)  # the first message: no "hello" before it
    assert (msg.type, msg.data, msg.extra) == (
        WSMsgType.CLOSE,
        SESSION_ENDED_CODE,
        SESSION_EXPIRED_REASON,
    )
    await eventually(lambda: registry.stats()["refused"].get("expired") == 1, what="counted")
    stats = registry.stats()
    assert stats["sockets"] == 0 and stats["deadlines"] == 0
    assert stats["closed"].get("expired") is None


def aiohttp_session_ws_setup(app: web.Application, **options: Any) -> SessionWSRegistry:
    import aiohttp_session_ws

    registry = SessionWSRegistry(**options)
    aiohttp_session_ws.setup(app, registry)
    return registry


def readme_jwt_policy() -> type[AbstractIdentityPolicy]:
    """The README's `ExpiringJWTIdentityPolicy`, run as written there."""
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    start = readme.index("```python\nimport jwt\n", readme.index("### Expiry"))
    code = readme[start + len("```python\n") : readme.index("```", start + 3)]
    namespace: dict[str, Any] = {}
    exec(code, namespace)
    policy: type[AbstractIdentityPolicy] = namespace["ExpiringJWTIdentityPolicy"]
    return policy


async def test_an_identity_policy_sets_the_deadline_of_a_socket(aiohttp_client: Any) -> None:
    """A token valid for 2 more seconds: the socket opened with it closes when it expires,
    though the session itself never does."""
    app = web.Application(
        middlewares=[
            aiohttp_session.session_middleware(EncryptedCookieStorage(COOKIE_KEY)),
            session_ws_middleware,
        ]
    )
    asws_security.setup(app, readme_jwt_policy()(JWT_SECRET), Users())

    async def handler(request: web.Request) -> web.WebSocketResponse:
        async with session_ws(request) as ws:
            await ws.send_json({"user": await aiohttp_security.authorized_userid(request)})
            async for _ in ws:
                pass
        return ws

    app.router.add_get("/ws", handler)
    client = await aiohttp_client(app)
    token = jwt.encode({"login": "alice", "exp": int(time.time()) + 2}, JWT_SECRET)
    ws = await client.ws_connect("/ws", headers={"Authorization": f"Bearer {token}"})
    assert (await ws.receive_json(timeout=5))["user"] == "alice"
    await expect_expired(ws, within=4.0)
    registry = app[REGISTRY_KEY]
    await eventually(lambda: registry.stats()["closed"].get("expired") == 1, what="counted")


async def test_a_handler_tightens_the_deadline_of_its_open_socket(aiohttp_client: Any) -> None:
    app = web.Application(
        middlewares=[
            aiohttp_session.session_middleware(aiohttp_session.SimpleCookieStorage()),
            session_ws_middleware,
        ]
    )

    async def handler(request: web.Request) -> web.WebSocketResponse:
        async with session_ws(request) as ws:
            set_session_ws_deadline(request, time.time() + 3600)
            set_session_ws_deadline(request, time.time() + 0.5)  # the earlier one wins
            set_session_ws_deadline(request, time.time() + 7200)  # never extended
            await ws.send_str("ready")
            async for _ in ws:
                pass
        return ws

    app.router.add_get("/ws", handler)
    registry = aiohttp_session_ws_setup(app)
    client = await aiohttp_client(app)
    ws = await client.ws_connect("/ws")
    assert await ws.receive_str(timeout=5) == "ready"
    await expect_expired(ws, within=3.0)
    await eventually(lambda: registry.stats()["closed"].get("expired") == 1, what="counted")


@pytest.mark.parametrize(
    ("when", "error"), [(float("nan"), ValueError), ("soon", TypeError), (True, TypeError)]
)
def test_a_deadline_must_be_a_time(when: object, error: type[Exception]) -> None:
    from aiohttp.test_utils import make_mocked_request

    app = web.Application()
    aiohttp_session_ws_setup(app)
    request = make_mocked_request("GET", "/ws", app=app)
    with pytest.raises(error, match="seconds since the epoch"):
        set_session_ws_deadline(request, when)  # type: ignore[arg-type]


# -- the timer structure -------------------------------------------------------------


class FakeSocket:
    """Stands in for a WebSocketResponse: `Deadlines` only hashes it."""


async def test_deadlines_fire_in_order_from_one_timer_and_no_task_per_socket() -> None:
    from aiohttp_session_ws.expiry import Deadlines

    fired: list[list[Any]] = []
    deadlines = Deadlines(fired.append)
    tasks_before = len(asyncio.all_tasks())
    now = time.time()
    a, b, c, d = FakeSocket(), FakeSocket(), FakeSocket(), FakeSocket()
    deadlines.tighten(a, now + 0.3)  # type: ignore[arg-type]
    deadlines.tighten(b, now + 0.1)  # type: ignore[arg-type]
    deadlines.tighten(c, now + 3600)  # type: ignore[arg-type]
    deadlines.tighten(c, now + 0.2)  # type: ignore[arg-type]  # brought forward
    deadlines.tighten(a, now + 7200)  # type: ignore[arg-type]  # never pushed back
    deadlines.tighten(d, now + 0.15)  # type: ignore[arg-type]
    deadlines.discard(d)  # type: ignore[arg-type]  # unregistered: never fires
    assert len(asyncio.all_tasks()) == tasks_before  # one timer handle, no tasks
    assert len(deadlines) == 3
    await eventually(lambda: len(fired) >= 3, timeout=2.0)
    assert fired == [[b], [c], [a]]
    assert len(deadlines) == 0


async def test_deadlines_memory_is_bounded_by_the_sockets_that_have_one() -> None:
    from aiohttp_session_ws.expiry import COMPACT_SLACK, Deadlines

    deadlines = Deadlines(lambda due: None)
    keep = FakeSocket()
    deadlines.tighten(keep, time.time() + 3600)  # type: ignore[arg-type]
    for i in range(10_000):  # sockets that come and go long before their deadline
        ws = FakeSocket()
        deadlines.tighten(ws, time.time() + 3600 + i)  # type: ignore[arg-type]
        deadlines.tighten(ws, time.time() + 1800 + i)  # type: ignore[arg-type]
        deadlines.discard(ws)  # type: ignore[arg-type]
    assert len(deadlines) == 1
    assert len(deadlines._heap) <= 2 * len(deadlines) + COMPACT_SLACK
    deadlines.clear()


async def test_a_session_renewed_by_its_requests_keeps_its_socket(aiohttp_client: Any) -> None:
    """aiohttp_session renews `created` on every write: while the page keeps writing to
    its session (a "last seen" time, say), the socket stays; once it stops, the socket
    closes when the last renewal runs out."""
    storage = EncryptedCookieStorage(COOKIE_KEY, max_age=3)
    app = web.Application(
        middlewares=[aiohttp_session.session_middleware(storage), session_ws_middleware]
    )

    async def touch(request: web.Request) -> web.Response:
        session = await aiohttp_session.get_session(request)
        session["seen"] = time.time()  # a write renews `created`
        return web.Response(text="ok")

    async def handler(request: web.Request) -> web.WebSocketResponse:
        async with session_ws(request) as ws:
            async for msg in ws:
                await ws.send_str(msg.data)
        return ws

    app.router.add_get("/touch", touch)
    app.router.add_get("/ws", handler)
    registry = aiohttp_session_ws_setup(app)
    client = await aiohttp_client(app)
    assert (await client.get("/touch")).status == 200
    ws = await client.ws_connect("/ws")
    assert registry.stats()["deadlines"] == 1
    opened = time.monotonic()
    while time.monotonic() - opened < 5.0:  # well past the first created + max_age
        assert (await client.get("/touch")).status == 200
        await ws.send_str("ping")
        assert (await ws.receive(timeout=5)).data == "ping"
        await asyncio.sleep(0.5)
    stopped = time.monotonic()
    await expect_expired(ws, within=6.0)
    assert time.monotonic() - stopped <= 4.5  # max_age after the last renewal (+ rounding)
    await eventually(lambda: registry.stats()["closed"].get("expired") == 1, what="counted")
    assert registry.stats()["deadlines"] == 0
