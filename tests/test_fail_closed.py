"""Fail closed: a socket whose user cannot be determined is refused (1013), an id
factory's unusable values fail at generation, hostile cookies are served as new
sessions without flooding the log, and nothing secret reaches a log line."""

from __future__ import annotations

import asyncio
import logging
import math
import re
from collections.abc import Hashable
from typing import Any

import aiohttp
import aiohttp_security
import aiohttp_session
import pytest
from aiohttp import WSMsgType, web
from aiohttp.test_utils import make_mocked_request
from aiohttp_security import AbstractAuthorizationPolicy, SessionIdentityPolicy
from aiohttp_session.cookie_storage import EncryptedCookieStorage

from aiohttp_session_ws import (
    REGISTRY_KEY,
    TRY_AGAIN_LATER_CODE,
    SessionWSRegistry,
    session_ws_middleware,
)
from aiohttp_session_ws import security as asws_security
from aiohttp_session_ws.security import identity_key
from tests.core_app import make_app as make_core_app
from tests.support.security_app import COOKIE_KEY
from tests.support.user_socket import hello_user_ws

SECRET_USER = "alice-7f3c9d"


def all_log_text(caplog: pytest.LogCaptureFixture) -> str:
    """Every message and every traceback the records carry."""
    formatter = logging.Formatter()
    lines = []
    for record in caplog.records:
        lines.append(record.getMessage())
        if record.exc_info:
            lines.append(formatter.formatException(record.exc_info))
    return "\n".join(lines)


class FlakyUsers(AbstractAuthorizationPolicy):
    """An authorization policy whose user lookup fails while `down` is set, raising an
    error that carries the identity (as a dict lookup does)."""

    def __init__(self) -> None:
        self.down = False
        self.numeric = False

    async def authorized_userid(self, identity: str) -> str | None:
        if self.down:
            raise KeyError(identity)
        if self.numeric:
            return 42  # type: ignore[return-value]  # a database row id, not a str
        return identity

    async def permits(self, identity: str | None, permission: Any, context: Any = None) -> bool:
        return identity is not None


def security_app(users: FlakyUsers) -> web.Application:
    app = web.Application(
        middlewares=[
            aiohttp_session.session_middleware(EncryptedCookieStorage(COOKIE_KEY)),
            session_ws_middleware,
        ]
    )
    asws_security.setup(app, SessionIdentityPolicy(), users)

    async def login(request: web.Request) -> web.Response:
        response = web.Response(text="ok")
        await aiohttp_security.remember(request, response, SECRET_USER)
        return response

    app.router.add_post("/login", login)
    app.router.add_get("/ws", hello_user_ws)
    return app


async def test_a_socket_whose_identity_lookup_raises_is_refused_with_1013(
    aiohttp_client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    users = FlakyUsers()
    app = security_app(users)
    registry = app[REGISTRY_KEY]
    client = await aiohttp_client(app)
    assert (await client.post("/login")).status == 200

    users.down = True
    ws = await client.ws_connect("/ws")
    msg = await ws.receive(timeout=5)
    assert msg.type is WSMsgType.CLOSE, msg
    assert (msg.data, msg.extra) == (TRY_AGAIN_LATER_CODE, "try again later")
    assert TRY_AGAIN_LATER_CODE == 1013
    stats = registry.stats()
    assert stats["refused"].get("identity_error") == 1
    assert stats["sockets"] == 0 and len(registry) == 0 and stats["keys"] == 0
    # Logged once, with the error's type and no traceback: the identity stays out.
    text = all_log_text(caplog)
    assert "KeyError" in text
    assert SECRET_USER not in text
    assert not any(record.exc_info for record in caplog.records)

    users.down = False  # the lookup recovers: the user's socket opens, indexed by identity
    ws = await client.ws_connect("/ws")
    assert (await ws.receive_json(timeout=5))["user"] == SECRET_USER
    assert registry.sockets_for_key(identity_key(SECRET_USER))
    await ws.close()


async def test_a_key_provider_that_raises_refuses_the_socket(aiohttp_client: Any) -> None:
    """The core rule, without aiohttp_security: any key provider counts."""
    registry = SessionWSRegistry()
    failing = True

    async def provider(request: web.Request) -> list[Hashable]:
        if failing:
            raise RuntimeError("directory timed out")
        return [("tenant", "t1")]

    registry.add_key_provider(provider)
    app = make_core_app(registry)
    client = await aiohttp_client(app)
    ws = await client.ws_connect("/ws")
    msg = await ws.receive(timeout=5)
    assert (msg.type, msg.data) == (WSMsgType.CLOSE, 1013)
    assert len(registry) == 0
    failing = False
    ws = await client.ws_connect("/ws")
    await ws.receive_json(timeout=5)
    assert registry.sockets_for_key(("tenant", "t1"))
    await ws.close()


async def test_a_user_id_that_cannot_be_indexed_refuses_the_socket(
    aiohttp_client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """An authorization policy returning an int user id: the socket cannot be indexed
    by identity (so "log out everywhere" could not reach it); it is refused, loudly."""
    users = FlakyUsers()
    app = security_app(users)
    client = await aiohttp_client(app)
    assert (await client.post("/login")).status == 200
    users.numeric = True
    with caplog.at_level(logging.WARNING, "aiohttp_session_ws"):
        ws = await client.ws_connect("/ws")
        msg = await ws.receive(timeout=5)
    assert (msg.type, msg.data) == (WSMsgType.CLOSE, TRY_AGAIN_LATER_CODE)
    assert "could not be determined (TypeError)" in caplog.text
    assert app[REGISTRY_KEY].stats()["refused"]["identity_error"] == 1


# -- id factories -------------------------------------------------------------------

ODD_IDS: dict[str, Any] = {
    "empty-str": lambda r: "",
    "true": lambda r: True,
    "float": lambda r: 1.5,
    "nan": lambda r: math.nan,
    "tuple-with-float": lambda r: ("t", 1.5),
    "missing-header": lambda r: r.headers.get("X-Device", ""),
}


@pytest.mark.parametrize("factory", ODD_IDS.values(), ids=ODD_IDS.keys())
async def test_an_id_factory_returning_an_unusable_id_fails_at_generation(
    factory: Any, aiohttp_client: Any
) -> None:
    registry = SessionWSRegistry(id_factory=factory)
    request = make_mocked_request("GET", "/")
    with pytest.raises(ValueError, match=r"id_factory .* returned an unusable id"):
        await registry.generate_id(request)
    # Served: the request fails, nothing is registered, no two sessions share an entry.
    app = make_core_app(registry)
    client = await aiohttp_client(app)
    assert (await client.get("/id")).status == 500
    with pytest.raises(aiohttp.WSServerHandshakeError):
        await client.ws_connect("/ws")
    assert len(registry) == 0


async def test_an_id_factory_from_a_header_works_when_the_header_is_there(
    aiohttp_client: Any,
) -> None:
    registry = SessionWSRegistry(id_factory=lambda r: r.headers.get("X-Device", ""))
    client = await aiohttp_client(make_core_app(registry))
    async with client.get("/id", headers={"X-Device": "device-1"}) as resp:
        assert (await resp.json())["id"] == "device-1"


# -- hostile cookies ----------------------------------------------------------------


async def test_a_deeply_nested_simple_cookie_is_a_new_session(aiohttp_client: Any) -> None:
    app = make_core_app()
    client = await aiohttp_client(app, cookie_jar=aiohttp.DummyCookieJar())
    headers = {"Cookie": "AIOHTTP_SESSION=" + "[" * 3000}
    async with client.get("/id", headers=headers) as resp:
        assert resp.status == 200, await resp.text()
        assert len((await resp.json())["id"]) == 32
    ws = await client.ws_connect("/ws", headers=headers)
    assert len((await ws.receive_json(timeout=5))["id"]) == 32
    await ws.close()


async def raw_get(port: int, cookie: bytes) -> int:
    """A GET with raw header bytes (aiohttp's client would not send invalid UTF-8)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        b"GET /id HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        b"Cookie: AIOHTTP_SESSION=" + cookie + b"\r\n\r\n"
    )
    await writer.drain()
    status_line = await reader.readline()
    await reader.read()
    writer.close()
    return int(status_line.split()[1])


@pytest.mark.parametrize("storage_kind", ["simple", "encrypted"])
async def test_non_utf8_cookies_are_new_sessions_and_warned_about_at_a_limited_rate(
    aiohttp_server: Any, caplog: pytest.LogCaptureFixture, storage_kind: str
) -> None:
    storage = (
        aiohttp_session.SimpleCookieStorage()
        if storage_kind == "simple"
        else EncryptedCookieStorage(COOKIE_KEY)
    )
    server = await aiohttp_server(make_core_app(storage=storage))
    caplog.set_level(logging.WARNING, "aiohttp_session_ws")
    for _ in range(20):
        assert await raw_get(server.port, b"\xff\xfe\x80garbage") == 200
    ours = [r for r in caplog.records if r.name.startswith("aiohttp_session_ws")]
    assert len(ours) == 1, [r.getMessage() for r in ours]
    assert "UnicodeEncodeError" in ours[0].getMessage() or "Error" in ours[0].getMessage()


# -- secrets in logs ----------------------------------------------------------------

FULL_SHA256 = re.compile(r"[0-9a-f]{64}")


@pytest.mark.redis
async def test_redis_errors_are_logged_without_the_full_sha256_of_an_id(
    redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A Redis that refuses writes (out of memory) makes redis-py annotate the failing
    command, key name included; our warnings must not repeat it."""
    from redis.asyncio import Redis

    from aiohttp_session_ws.redis import ClusterPublishError, RedisSessionWSRegistry

    caplog.set_level(logging.DEBUG)
    admin = Redis.from_url(redis_url)
    registry = RedisSessionWSRegistry(Redis.from_url(redis_url), redis_timeout=1.0)
    await registry.start()
    try:
        await admin.config_set("maxmemory-policy", "noeviction")
        await admin.config_set("maxmemory", "1")
        with pytest.raises(ClusterPublishError) as info:
            await registry.close_all_session("a-session-id")
        assert not FULL_SHA256.search(str(info.value)), str(info.value)
    finally:
        await admin.config_set("maxmemory", "0")
        await registry.stop()
        await registry.redis.aclose()
        await admin.aclose()
    text = all_log_text(caplog)
    assert "a-session-id" not in text
    assert not FULL_SHA256.search(text), FULL_SHA256.findall(text)[:2]
