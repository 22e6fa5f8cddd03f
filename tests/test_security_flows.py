"""Login closes anonymous sockets, logout closes authenticated ones: every policy, every style."""

from __future__ import annotations

from typing import Any

import pytest

from aiohttp_session_ws import REGISTRY_KEY
from aiohttp_session_ws.security import identity_key
from tests.support.security_app import (  # noqa: F401 - fixtures
    POLICIES,
    STYLES,
    Start,
    expect_closed,
    expect_open,
    make_app,
    start_fixture,
    storage_fixture,
)


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("policy", POLICIES)
async def test_login_and_logout_close_only_this_sessions_sockets(
    policy: str, style: str, storage: Any, start: Start
) -> None:
    app = make_app(policy, style, storage)
    browser = await start(app)
    registry = app[REGISTRY_KEY]
    alice, stranger, bob = await browser(), await browser(), await browser()

    await bob.login("bob")
    bob_ws, seen = await bob.ws()
    assert seen == "bob"
    stranger_ws, seen = await stranger.ws()
    assert seen is None
    assert await alice.whoami() is None
    anon_ws, seen = await alice.ws()
    assert seen is None

    await alice.login("alice")
    await expect_closed(anon_ws)
    await expect_open(stranger_ws)
    await expect_open(bob_ws)
    assert await alice.whoami() == "alice"

    alice_ws, seen = await alice.ws()
    assert seen == "alice"
    assert len(registry.sockets_for_key(identity_key("alice"))) == 1
    assert len(registry.sockets_for_key(identity_key("bob"))) == 1

    await alice.logout()
    await expect_closed(alice_ws)
    await expect_open(stranger_ws)
    await expect_open(bob_ws)
    assert await alice.whoami() is None
    again_ws, seen = await alice.ws()
    assert seen is None
    await expect_open(again_ws)
    assert registry.sockets_for_key(identity_key("alice")) == frozenset()


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("policy", ["session-cookie", "session-redis"])
async def test_remember_and_forget_on_a_raised_redirect(
    policy: str, style: str, storage: Any, start: Start
) -> None:
    browser = await start(make_app(policy, style, storage))
    alice = await browser()
    anon_ws, _ = await alice.ws()
    async with alice.client.post("/login-redirect", data={"user": "alice"}) as resp:
        assert resp.status == 200 and resp.history[0].status == 302
        assert (await resp.json())["user"] == "alice"
    await expect_closed(anon_ws)

    alice_ws, seen = await alice.ws()
    assert seen == "alice"
    async with alice.client.post("/logout-redirect") as resp:
        assert resp.status == 200
        assert (await resp.json())["user"] is None
    await expect_closed(alice_ws)
