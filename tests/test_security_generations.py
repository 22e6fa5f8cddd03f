"""Login generations: "log out everywhere" logs every other session out over HTTP too."""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

import aiohttp
import aiohttp_session
import pytest
from aiohttp import web
from aiohttp_security import SessionIdentityPolicy
from redis.asyncio import Redis

from aiohttp_session_ws import REGISTRY_KEY
from aiohttp_session_ws.security import (
    GenerationStoreError,
    MemoryGenerations,
    RedisGenerations,
    SessionWSIdentityPolicy,
    close_all_identity_ws,
    identity_key,
)
from aiohttp_session_ws.security import setup as security_setup
from aiohttp_session_ws.security.generations import SESSION_KEY
from tests.support.security_app import (  # noqa: F401 - fixtures
    POLICIES,
    Start,
    Users,
    expect_closed,
    expect_open,
    make_app,
    redis_client_fixture,
    start_fixture,
    storage_fixture,
)

GENERATION_STYLES = ("wrapped", "setup")


@pytest.fixture(params=["memory", "redis"])
async def generations(request: pytest.FixtureRequest) -> Any:
    if request.param == "memory":
        yield MemoryGenerations()
        return
    client = Redis.from_url(request.getfixturevalue("redis_url"))
    yield RedisGenerations(client, prefix="test:generation:")
    await client.aclose()


@pytest.mark.parametrize("style", GENERATION_STYLES)
@pytest.mark.parametrize("policy", POLICIES)
async def test_log_out_everywhere_logs_every_other_session_out_over_http(
    policy: str, style: str, storage: Any, generations: Any, start: Start
) -> None:
    app = make_app(policy, style, storage, generations=generations)
    browser = await start(app)
    laptop, phone, tablet, bob = await browser(), await browser(), await browser(), await browser()
    for client, user in ((laptop, "alice"), (phone, "alice"), (tablet, "alice"), (bob, "bob")):
        await client.login(user)
        assert await client.whoami() == user
    phone_ws, seen = await phone.ws()
    assert seen == "alice"
    bob_ws, _ = await bob.ws()

    assert await laptop.logout("/logout-everywhere") == {"user": "alice"}
    await expect_closed(phone_ws)
    # The phone and the tablet (which had no socket open) are logged out over HTTP.
    for client in (laptop, phone, tablet):
        assert await client.whoami() is None
    assert await bob.whoami() == "bob"
    await expect_open(bob_ws)
    # ... and their sockets are anonymous, not indexed under the user.
    tablet_ws, seen = await tablet.ws()
    assert seen is None
    assert app[REGISTRY_KEY].sockets_for_key(identity_key("alice")) == frozenset()

    # Logging in again works, and only for the device that did.
    await phone.login("alice")
    assert await phone.whoami() == "alice"
    assert await tablet.whoami() is None
    await tablet_ws.close()


@pytest.mark.parametrize("policy", ["session-cookie", "session-redis"])
async def test_without_generations_the_other_sessions_stay_logged_in(
    policy: str, storage: Any, start: Start
) -> None:
    """Generations are opt-in: without them, sockets close but HTTP sessions live on."""
    browser = await start(make_app(policy, "setup", storage))
    laptop, phone = await browser(), await browser()
    await laptop.login("alice")
    await phone.login("alice")
    phone_ws, _ = await phone.ws()
    await laptop.logout("/logout-everywhere")
    await expect_closed(phone_ws)
    assert await phone.whoami() == "alice"


async def test_close_all_identity_ws_bumps_the_generation(start: Start) -> None:
    app = make_app("session-cookie", "setup", generations=MemoryGenerations())
    browser = await start(app)
    alice, bob = await browser(), await browser()
    await alice.login("alice")
    await bob.login("bob")
    ws, _ = await alice.ws()
    assert await close_all_identity_ws(app, "alice") == 1
    await expect_closed(ws)
    assert await alice.whoami() is None
    assert await bob.whoami() == "bob"


async def test_losing_the_generation_store_logs_users_out(start: Start) -> None:
    """Fail closed: a forgotten generation (a restart of the in-memory store, lost
    Redis data) logs the user out rather than reviving logged-out sessions."""
    generations = MemoryGenerations()
    browser = await start(make_app("session-cookie", "setup", generations=generations))
    alice = await browser()
    await alice.login("alice")
    assert await alice.whoami() == "alice"
    generations._current.clear()
    assert await alice.whoami() is None
    await alice.login("alice")
    assert await alice.whoami() == "alice"


async def test_a_login_record_of_another_identity_does_not_count(start: Start) -> None:
    """CookiesIdentityPolicy keeps the identity in its own cookie: swapping it for
    another user's name does not inherit the session's login record."""
    browser = await start(make_app("cookies", "setup", generations=MemoryGenerations()))
    alice = await browser()
    await alice.login("alice")
    assert await alice.whoami() == "alice"
    alice.client.session.cookie_jar.update_cookies(
        {"AIOHTTP_SECURITY": "bob"}, alice.client.make_url("/")
    )
    assert await alice.whoami() is None


async def test_sessions_logged_in_before_generations_were_turned_on_are_anonymous(
    start: Start,
) -> None:
    """No record in the session: not a current login (fail closed)."""
    plain = make_app("session-cookie", "setup")
    browser = await start(plain)
    alice = await browser()
    await alice.login("alice")
    cookie = alice.cookie()
    browser2 = await start(make_app("session-cookie", "setup", generations=MemoryGenerations()))
    later = await browser2()
    later.client.session.cookie_jar.update_cookies(
        {"AIOHTTP_SESSION": cookie}, later.client.make_url("/")
    )
    assert await later.whoami() is None


async def test_an_identity_the_authorization_policy_refuses_records_no_user(
    start: Start,
) -> None:
    browser = await start(make_app("session-cookie", "setup", generations=MemoryGenerations()))
    mallory = await browser()
    await mallory.login("mallory")  # not a known user: authorized_userid says None
    assert await mallory.whoami() is None


async def test_redis_generations_hide_user_ids_and_are_shared(redis_client: Any) -> None:
    one = RedisGenerations(redis_client, prefix="app:gen:")
    two = RedisGenerations(redis_client, prefix="app:gen:")
    assert await one.current("alice") is None
    first = await one.start("alice")
    assert await two.start("alice") == first  # started once, shared
    assert await two.current("alice") == first
    bumped = await two.bump("alice")
    assert bumped != first and await one.current("alice") == bumped
    keys = [k.decode() for k in await redis_client.keys("app:gen:*")]
    assert keys == ["app:gen:" + hashlib.sha256(b"alice").hexdigest()]


async def test_redis_generations_fail_loudly_when_redis_does_not_answer() -> None:
    # A port nothing listens on: the call fails within the timeout, it does not hang.
    client = Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2)
    generations = RedisGenerations(client, timeout=0.5)
    for call in (generations.current, generations.start, generations.bump):
        with pytest.raises(GenerationStoreError, match=r"did not answer within 0\.5s"):
            await asyncio.wait_for(call("alice"), 5)
    await client.aclose()


def test_generation_options_are_checked() -> None:
    with pytest.raises(TypeError, match="async current"):
        SessionWSIdentityPolicy(SessionIdentityPolicy(), generations=object())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="a redis"):
        RedisGenerations("redis://localhost")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="prefix"):
        RedisGenerations(Redis(), prefix="")
    with pytest.raises(ValueError, match="timeout"):
        RedisGenerations(Redis(), timeout=0)
    wrapped = SessionWSIdentityPolicy(SessionIdentityPolicy(), generations=MemoryGenerations())
    with pytest.raises(ValueError, match="not both"):
        security_setup(web.Application(), wrapped, Users(), generations=MemoryGenerations())
    same = wrapped.generations
    assert security_setup(web.Application(), wrapped, Users(), generations=same) is wrapped


async def test_forget_drops_the_login_record_without_session_rotation(start: Start) -> None:
    app = make_app("session-cookie", "setup", rotate_session=False, generations=MemoryGenerations())

    async def record(request: web.Request) -> web.Response:
        session = await aiohttp_session.get_session(request)
        return web.json_response({"record": session.get(SESSION_KEY)})

    app.router.add_get("/record", record)
    browser = await start(app)
    alice = await browser()
    await alice.login("alice")
    async with alice.client.get("/record") as resp:
        identity, userid, generation = (await resp.json())["record"]
    assert (identity, userid) == ("alice", "alice") and generation
    await alice.logout()
    async with alice.client.get("/record") as resp:
        assert (await resp.json())["record"] is None


async def test_a_jwt_sent_without_the_session_cookie_is_anonymous(start: Start) -> None:
    """The login record lives in the session: a token-only client has none (fail
    closed). Put the generation in the token for such clients (see the README)."""
    browser = await start(make_app("jwt", "setup", generations=MemoryGenerations()))
    alice = await browser()
    await alice.login("alice")
    assert await alice.whoami() == "alice"  # the token with the session cookie
    async with (
        aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as bare,
        bare.get(alice.client.make_url("/whoami"), headers=alice.headers) as resp,
    ):
        assert (await resp.json())["user"] is None
