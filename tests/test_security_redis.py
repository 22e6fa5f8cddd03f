"""Session rotation and invalidation with a server-side storage (RedisStorage, real redis)."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest
from aiohttp_session.redis_storage import RedisStorage

from aiohttp_session_ws import REGISTRY_KEY
from tests.support.security_app import (  # noqa: F401 - fixtures
    STYLES,
    Start,
    expect_closed,
    expect_open,
    make_app,
    redis_client_fixture,
    start_fixture,
)
from tests.support.sessions_app import add_session_routes

pytestmark = pytest.mark.redis
COOKIE = "AIOHTTP_SESSION"


async def record(redis_client: Any, key: str) -> dict[str, Any] | None:
    raw = await redis_client.get(f"{COOKIE}_{key}")
    return None if raw is None else dict(json.loads(raw))


async def replay(start_client: Any, server_app: Any, cookie: str) -> str | None:
    """Who the server thinks a request carrying only `cookie` is."""
    async with start_client.get("/whoami", headers={"Cookie": f"{COOKIE}={cookie}"}) as resp:
        assert resp.status == 200
        user: str | None = (await resp.json())["user"]
        return user


@pytest.fixture
async def setup_app(redis_client: Any, start: Start, aiohttp_client: Any) -> Any:
    async def build(style: str, **options: Any) -> Any:
        app = make_app("session-redis", style, RedisStorage(redis_client), **options)
        add_session_routes(app, style, rotate_session=options.get("rotate_session", True))
        browser = await start(app)
        first = await browser()
        # a client without a cookie jar, to replay old cookies by hand
        bare = await aiohttp_client(first.client.server, cookie_jar=aiohttp.DummyCookieJar())
        return app, browser, bare

    return build


@pytest.mark.parametrize("style", STYLES)
async def test_login_rotates_the_session_and_the_old_record_has_no_login(
    style: str, setup_app: Any, redis_client: Any
) -> None:
    app, browser, bare = await setup_app(style)
    alice = await browser()
    assert await alice.whoami() is None
    assert alice.cookie() is None  # reading the session saves none
    await alice.client.get("/form")  # the login page writes its CSRF token
    before = alice.cookie()
    assert before is not None
    assert await record(redis_client, before) is not None  # the anonymous record exists
    ws, _ = await alice.ws()

    await alice.login("alice")
    await expect_closed(ws)
    after = alice.cookie()
    assert after is not None and after != before
    old = await record(redis_client, before)
    assert old is None or "AIOHTTP_SECURITY" not in json.dumps(old)  # a tombstone at most
    assert await replay(bare, app, before) is None
    assert await replay(bare, app, after) == "alice"
    new = await record(redis_client, after)
    assert new is not None and new["session"]["AIOHTTP_SECURITY"] == "alice"
    # nothing from the old session but a (fresh) websocket id was carried over
    assert set(new["session"]) == {"AIOHTTP_SECURITY", app[REGISTRY_KEY].session_key}


@pytest.mark.parametrize("style", STYLES)
async def test_login_over_a_login_retires_the_previous_record(style: str, setup_app: Any) -> None:
    app, browser, bare = await setup_app(style)
    client = await browser()
    await client.login("alice")
    alice_cookie = client.cookie()
    await client.login("bob")
    assert client.cookie() != alice_cookie
    assert await replay(bare, app, alice_cookie) is None  # the record no longer says alice
    assert await client.whoami() == "bob"


@pytest.mark.parametrize("style", STYLES)
async def test_replayed_pre_logout_cookie_is_anonymous(style: str, setup_app: Any) -> None:
    app, browser, bare = await setup_app(style)
    alice = await browser()
    await alice.login("alice")
    logged_in = alice.cookie()
    assert await replay(bare, app, logged_in) == "alice"
    ws, seen = await alice.ws()
    assert seen == "alice"

    await alice.logout()
    await expect_closed(ws)
    assert alice.cookie() != logged_in
    assert await replay(bare, app, logged_in) is None
    # a websocket opened with the replayed cookie is closed at once: the logout
    # retired that session (its record is a tombstone for a minute, then unknown)
    replayed = await bare.ws_connect("/ws", headers={"Cookie": f"{COOKIE}={logged_in}"})
    await expect_closed(replayed)
    assert app[REGISTRY_KEY].stats()["refused"]["stale_session"] == 1


@pytest.mark.parametrize("style", STYLES)
async def test_rotation_can_be_turned_off(style: str, setup_app: Any) -> None:
    app, browser, _ = await setup_app(style, rotate_session=False)
    alice = await browser()
    await alice.client.get("/form")
    before = alice.cookie()
    ws, _ = await alice.ws()
    ws_id_before = list(app[REGISTRY_KEY])

    await alice.login("alice")
    await expect_closed(ws)
    assert alice.cookie() == before  # same session record...
    assert await alice.whoami() == "alice"
    ws2, seen = await alice.ws()
    assert seen == "alice"
    assert list(app[REGISTRY_KEY]) != ws_id_before  # ...but a new websocket id
    await expect_open(ws2)
