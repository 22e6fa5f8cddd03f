"""Per-user targeting ("log out everywhere"), bad identities, and set-up errors."""

from __future__ import annotations

import logging
from typing import Any

import aiohttp_security
import aiohttp_session
import pytest
from aiohttp import WSMsgType, web
from aiohttp_security import SessionIdentityPolicy
from aiohttp_security.api import IDENTITY_KEY
from aiohttp_session.cookie_storage import EncryptedCookieStorage

import aiohttp_session_ws
from aiohttp_session_ws import REGISTRY_KEY, SessionWSRegistry, session_ws_middleware
from aiohttp_session_ws.security import (
    SessionWSIdentityPolicy,
    close_all_identity_ws,
    identity_key,
)
from aiohttp_session_ws.security import setup as security_setup
from tests.support.security_app import (  # noqa: F401 - fixtures
    COOKIE_KEY,
    POLICIES,
    STYLES,
    Start,
    Users,
    expect_closed,
    expect_open,
    make_app,
    start_fixture,
    storage_fixture,
)


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("policy", POLICIES)
async def test_log_out_everywhere_closes_every_session_of_the_user(
    policy: str, style: str, storage: Any, start: Start
) -> None:
    app = make_app(policy, style, storage)
    browser = await start(app)
    laptop, phone, bob = await browser(), await browser(), await browser()
    for client, user in ((laptop, "alice"), (phone, "alice"), (bob, "bob")):
        await client.login(user)
    laptop_ws, seen_laptop = await laptop.ws()
    phone_ws, seen_phone = await phone.ws()
    bob_ws, seen_bob = await bob.ws()
    assert (seen_laptop, seen_phone, seen_bob) == ("alice", "alice", "bob")
    assert laptop.cookie() != phone.cookie()  # two different sessions

    assert await laptop.logout("/logout-everywhere") == {"user": "alice"}
    await expect_closed(laptop_ws)
    await expect_closed(phone_ws)
    await expect_open(bob_ws)
    assert app[REGISTRY_KEY].sockets_for_key(identity_key("alice")) == frozenset()


async def test_anonymous_log_out_everywhere_closes_nothing(start: Start) -> None:
    browser = await start(make_app("session-cookie", "setup"))
    anon, bob = await browser(), await browser()
    await bob.login("bob")
    bob_ws, _ = await bob.ws()
    anon_ws, _ = await anon.ws()
    assert await anon.logout("/logout-everywhere") == {"user": None}
    await expect_closed(anon_ws)  # by forget: its own session ended
    await expect_open(bob_ws)


@pytest.mark.parametrize("style", STYLES)
async def test_close_all_identity_ws_for_background_jobs(style: str, start: Start) -> None:
    app = make_app("session-cookie", style)
    browser = await start(app)
    one, two, bob = await browser(), await browser(), await browser()
    for client, user in ((one, "alice"), (two, "alice"), (bob, "bob")):
        await client.login(user)
    sockets = [(await c.ws())[0] for c in (one, two, bob)]

    assert await close_all_identity_ws(app, "alice") == 2
    await expect_closed(sockets[0])
    await expect_closed(sockets[1])
    await expect_open(sockets[2])
    assert await close_all_identity_ws(app, "alice") == 0
    assert await close_all_identity_ws(app, "carol") == 0
    with pytest.raises(ValueError, match="non-empty str"):
        await close_all_identity_ws(app, "")
    with pytest.raises(RuntimeError, match="not set up"):
        await close_all_identity_ws(web.Application(), "alice")


@pytest.mark.parametrize("bad", ["", 42, None, ["alice"]])
@pytest.mark.parametrize("style", [*STYLES, "both"])
async def test_remember_with_a_bad_identity_fails_and_closes_nothing(
    style: str, bad: object, start: Start
) -> None:
    app = make_app("session-cookie", style)
    registry = app[REGISTRY_KEY]
    browser = await start(app)
    alice = await browser()
    await alice.login("alice")
    ws, _ = await alice.ws()
    cookie, ids, stats = alice.cookie(), set(registry), registry.stats()

    body = await alice.login(bad, status=400)
    assert body == {"error": "Identity should be a str value."}
    await expect_open(ws)
    assert await alice.whoami() == "alice"
    assert alice.cookie() == cookie
    assert set(registry) == ids
    assert registry.stats() == stats


async def test_dropins_act_once_around_a_wrapped_policy(start: Start) -> None:
    app = make_app("session-cookie", "both")
    registry = app[REGISTRY_KEY]
    browser = await start(app)
    alice = await browser()
    ws, _ = await alice.ws()
    await alice.login("alice")
    await expect_closed(ws)
    # acting twice would also revoke the id made by the first pass
    assert registry.stats()["revoked"] == 1
    await alice.logout()
    assert registry.stats()["revoked"] == 2


async def test_sockets_are_indexed_only_with_aiohttp_security_and_a_known_user(
    start: Start, aiohttp_client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    # An app without aiohttp_security: the global provider adds no key.
    plain = web.Application(
        middlewares=[
            aiohttp_session.session_middleware(EncryptedCookieStorage(COOKIE_KEY)),
            session_ws_middleware,
        ]
    )
    aiohttp_session_ws.setup(plain, SessionWSRegistry())

    async def ws_handler(request: web.Request) -> web.StreamResponse:
        async with aiohttp_session_ws.session_ws(request) as ws:
            await ws.send_str("hi")
            async for _ in ws:
                pass
        return ws

    plain.router.add_get("/ws", ws_handler)
    client = await aiohttp_client(plain)
    ws = await client.ws_connect("/ws")
    assert await ws.receive_str(timeout=5) == "hi"
    assert plain[REGISTRY_KEY].stats()["keys"] == 0
    await ws.close()

    # With aiohttp_security: anonymous and unknown users are not indexed. A bad token
    # makes the identity lookup raise: whose socket it is cannot be told, so it is
    # refused with 1013 (Try Again Later), logged by error type, never registered.
    app = make_app("jwt", "setup")
    browser = await start(app)
    anon, bad = await browser(), await browser()
    anon_ws, _ = await anon.ws()
    bad.token = "not-a-jwt"
    with caplog.at_level(logging.WARNING, "aiohttp_session_ws"):
        bad_ws = await bad.client.ws_connect("/ws", headers=bad.headers)
        msg = await bad_ws.receive(timeout=5)
    assert (msg.type, msg.data) == (WSMsgType.CLOSE, 1013), msg
    assert "could not be determined (DecodeError)" in caplog.text
    stats = app[REGISTRY_KEY].stats()
    assert stats["keys"] == 0 and stats["sockets"] == 1
    assert stats["refused"]["identity_error"] == 1
    await expect_open(anon_ws)


def test_policy_and_setup_refuse_mistakes() -> None:
    inner = SessionIdentityPolicy()
    wrapped = SessionWSIdentityPolicy(inner)
    assert wrapped.inner_policy is inner and wrapped.rotate_session
    with pytest.raises(TypeError, match="already a SessionWSIdentityPolicy"):
        SessionWSIdentityPolicy(wrapped)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="wraps an aiohttp_security identity policy"):
        SessionWSIdentityPolicy(object())  # type: ignore[arg-type]

    app = web.Application()
    assert security_setup(app, wrapped, Users()) is wrapped  # not wrapped twice
    assert app[IDENTITY_KEY] is wrapped
    assert isinstance(app[REGISTRY_KEY], SessionWSRegistry)

    mine = SessionWSRegistry()
    app2 = web.Application()
    installed = security_setup(app2, inner, Users(), mine)
    assert installed.inner_policy is inner and app2[REGISTRY_KEY] is mine
    assert aiohttp_security.api.AUTZ_KEY in app2

    app3 = web.Application()
    aiohttp_session_ws.setup(app3, mine)
    security_setup(app3, inner, Users())  # keeps the registry already there
    assert app3[REGISTRY_KEY] is mine
    with pytest.raises(ValueError, match="already has a websocket registry"):
        security_setup(app3, inner, Users(), SessionWSRegistry())
