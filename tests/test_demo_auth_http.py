"""The login demo over a real server: every route, CSRF, passwords, origins, socket closes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest

from aiohttp_session_ws import SESSION_ENDED_CODE
from demo_auth.app import COOKIE_NAME, make_app
from demo_auth.passwords import MAX_PASSWORD_BYTES, PASSWORDS, Users, cost_class
from demo_auth.policy import DemoAuthorizationPolicy
from demo_auth.settings import Settings
from tests.support.demo_auth_client import DemoUser, close_code, csrf_tokens, next_tick
from tests.support.redis_server import free_port

NewUser = Callable[[], Awaitable[DemoUser]]


@pytest.fixture
def settings() -> Settings:
    return Settings(port=free_port())


@pytest.fixture
def users() -> Users:
    return Users()


@pytest.fixture
async def new_user(
    aiohttp_server: Any, aiohttp_client: Any, settings: Settings, users: Users
) -> NewUser:
    """A factory of browser sessions (own cookie jars) against one demo server."""
    server = await aiohttp_server(make_app(settings, users), port=settings.port)

    async def make() -> DemoUser:
        return DemoUser(await aiohttp_client(server, cookie_jar=aiohttp.CookieJar(unsafe=True)))

    return make


async def test_login_form_has_the_fields_and_a_csrf_token(new_user: NewUser) -> None:
    user = await new_user()
    async with user.client.get("/login") as resp:
        html = await resp.text()
        assert resp.status == 200
        assert resp.headers["Cache-Control"] == "no-store"
        assert "frame-ancestors 'none'" in resp.headers["Content-Security-Policy"]
        cookie = resp.cookies[COOKIE_NAME]
    assert 'name="username"' in html and 'name="password"' in html
    assert 'type="hidden" name="csrf_token"' in html and len(csrf_tokens(html)[0]) >= 32
    assert cookie["httponly"] and cookie["samesite"] == "Lax" and not cookie["secure"]


async def test_login_logs_in_and_the_home_page_shows_the_logout_forms(new_user: NewUser) -> None:
    user = await new_user()
    assert await user.me() is None
    anonymous_token = await user.token()
    data = {"csrf_token": anonymous_token, "username": "alice", "password": "wonderland"}
    assert await user.post("/login", data) == (303, "303: See Other", "/")
    assert await user.me() == "alice"
    async with user.client.get("/") as resp:
        html = await resp.text()
    assert "Logged in as <strong>alice</strong>" in html
    assert 'action="/logout"' in html and 'action="/logout-everywhere"' in html
    tokens = csrf_tokens(html)
    # both forms carry the token; login started a fresh session, so it is a new one
    assert len(tokens) == 2 and tokens[0] == tokens[1] != anonymous_token


async def test_the_pre_login_csrf_token_dies_with_the_pre_login_session(new_user: NewUser) -> None:
    user = await new_user()
    before = await user.token()
    assert await user.login() == 303
    assert (await user.post("/logout", {"csrf_token": before}))[0] == 403
    assert await user.me() == "alice"
    assert await user.logout() == 303  # with the fresh token


@pytest.mark.parametrize("identity", ["nobody", "", "ALICE", "alice:0"])
async def test_only_known_users_are_authorized(identity: str) -> None:
    policy = DemoAuthorizationPolicy(Users())
    assert await policy.authorized_userid(identity) is None
    assert not await policy.permits(identity, "anything")
    assert await policy.authorized_userid("alice") == "alice"
    assert await policy.permits("alice", "anything")


async def test_anonymous_home_page_links_to_login(new_user: NewUser) -> None:
    user = await new_user()
    async with user.client.get("/") as resp:
        html = await resp.text()
    assert resp.status == 200 and "Not logged in" in html and 'href="/login"' in html
    assert 'action="/logout"' not in html


@pytest.mark.parametrize("path", ["/login", "/logout", "/logout-everywhere"])
async def test_post_without_a_valid_csrf_token_is_refused(new_user: NewUser, path: str) -> None:
    user = await new_user()
    other = await new_user()
    assert await user.login() == 303
    creds = {"username": "bob", "password": "builder"}
    foreign = await other.token()  # a valid token, of another session
    for data in ({}, {"csrf_token": ""}, {"csrf_token": "x" * 43}, {"csrf_token": foreign}):
        status, body, _ = await user.post(path, {**data, **creds})
        assert status == 403, (data, body)
        assert "CSRF" in body
    assert await user.me() == "alice"  # nothing changed


async def test_logout_without_a_session_token_is_refused(new_user: NewUser) -> None:
    user = await new_user()  # never rendered a form: the session holds no token
    assert (await user.post("/logout", {"csrf_token": "anything"}))[0] == 403


@pytest.mark.parametrize(
    ("username", "password"),
    [
        ("alice", "wrong"),
        ("alice", ""),
        ("nobody", "wonderland"),
        ("ALICE", "wonderland"),
        ("alice", "wonderland" + "x" * MAX_PASSWORD_BYTES),
    ],
)
async def test_wrong_credentials_show_the_form_again_with_401(
    new_user: NewUser, username: str, password: str
) -> None:
    user = await new_user()
    data = {"csrf_token": await user.token(), "username": username, "password": password}
    status, html, location = await user.post("/login", data)
    assert (status, location) == (401, None)
    assert "Wrong username or password." in html  # the same words for unknown users
    assert 'name="password"' in html and csrf_tokens(html)
    assert await user.me() is None


async def test_login_error_page_escapes_user_input(new_user: NewUser) -> None:
    user = await new_user()
    data = {"csrf_token": await user.token(), "username": '<script>"x"</script>', "password": "p"}
    status, html, _ = await user.post("/login", data)
    assert status == 401
    assert "<script>" not in html and "&lt;script&gt;&#34;x&#34;&lt;/script&gt;" in html


async def test_bobs_outdated_hash_is_upgraded_on_login(new_user: NewUser, users: Users) -> None:
    assert "m=8192,t=1" in str(users.hash_of("bob"))
    assert await (await new_user()).login("bob", "builder") == 303
    upgraded = str(users.hash_of("bob"))
    assert upgraded.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert not PASSWORDS.needs_update(upgraded)
    assert await (await new_user()).login("bob", "builder") == 303  # the new hash works
    assert await (await new_user()).login("bob", "wonderland") == 401


def test_passwords_over_the_cap_are_wrong_even_when_they_match() -> None:
    at_cap, over_cap = "p" * MAX_PASSWORD_BYTES, "p" * (MAX_PASSWORD_BYTES + 1)
    users = Users({"carol": PASSWORDS.hash(at_cap), "dave": PASSWORDS.hash(over_cap)})
    assert users.check("carol", at_cap)
    assert not users.check("dave", over_cap)
    assert not users.check("carol", "é" * (MAX_PASSWORD_BYTES // 2 + 1))  # bytes, not chars


def verified_cost_classes(users: Users, username: str, password: str) -> list[str]:
    """The cost class (scheme and parameters) of every hash one check verifies against."""
    seen: list[str] = []
    context = users.context

    class Recording:
        def verify(self, secret: str, stored: str) -> bool:
            seen.append(cost_class(stored))
            return bool(context.verify(secret, stored))

        def verify_and_update(self, secret: str, stored: str) -> tuple[bool, str | None]:
            seen.append(cost_class(stored))
            ok, new_hash = context.verify_and_update(secret, stored)
            return bool(ok), new_hash

    users.context = Recording()  # type: ignore[assignment]
    try:
        users.check(username, password)
    finally:
        users.context = context
    return seen


def test_every_check_costs_the_same_whatever_the_stored_hash() -> None:
    """Item 6: bob's older, cheaper hash must not make his wrong passwords answer faster.

    Every check verifies once per cost class in use (current parameters, and bob's
    older ones), whoever the user is: the same work, so the same time (measured in
    `python -m bench.login_timing`).
    """
    users = Users()
    expected = [cost_class(str(users.hash_of("alice"))), cost_class(str(users.hash_of("bob")))]
    assert "m=8192,t=1" in expected[1] and expected[0] != expected[1]
    cases = [
        ("alice", "wrong"),
        ("bob", "wrong"),
        ("nobody", "wrong"),
        ("alice", "x" * (MAX_PASSWORD_BYTES + 1)),
        ("bob", "builder"),  # right: upgrades bob's hash
        ("bob", "wrong"),  # after the upgrade, still the old class's dummy too
    ]
    for username, password in cases:
        assert sorted(verified_cost_classes(users, username, password)) == sorted(expected), (
            username
        )
    assert not PASSWORDS.needs_update(str(users.hash_of("bob")))


def test_dummy_hashes_match_no_password() -> None:
    users = Users({"carol": PASSWORDS.hash("secret")})
    assert users.check("carol", "secret") and not users.check("carol", "")
    assert not users.check("dave", "secret") and not users.check("dave", "")


async def test_api_me(new_user: NewUser) -> None:
    user = await new_user()
    async with user.client.get("/api/me") as resp:
        assert resp.status == 200 and resp.content_type == "application/json"
        assert await resp.json() == {"user": None}
    await user.login("bob", "builder")
    assert await user.me() == "bob"


async def test_get_on_post_routes_and_plain_get_on_ws(new_user: NewUser) -> None:
    user = await new_user()
    for path in ("/logout", "/logout-everywhere"):
        async with user.client.get(path) as resp:
            assert resp.status == 405
    async with user.client.get("/ws") as resp:
        assert resp.status == 426


async def test_websocket_from_a_foreign_origin_is_refused(
    new_user: NewUser, settings: Settings
) -> None:
    user = await new_user()
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await user.client.ws_connect("/ws", origin="https://evil.example")
    assert refused.value.status == 403
    for origin in (f"http://127.0.0.1:{settings.port}", f"http://localhost:{settings.port}"):
        ws, who = await user.ws(origin=origin)
        assert who is None
        await ws.close()


async def test_websocket_says_who_then_ticks_with_presence(new_user: NewUser) -> None:
    laptop, phone = await new_user(), await new_user()
    ws, who = await laptop.ws()
    assert who is None
    tick = await next_tick(ws)
    assert tick["seconds"] == 0 and tick["others"] == 0
    await ws.close()
    await laptop.login()
    await phone.login()
    ws_laptop, who = await laptop.ws()
    assert who == "alice"
    ws_phone, who = await phone.ws()
    assert who == "alice"
    # item 3: the laptop is another browser (session) of alice: not one of the phone's tabs
    assert (await next_tick(ws_phone))["others"] == 0
    ws_laptop_2, _ = await laptop.ws()  # a second tab of the laptop's browser
    assert (await next_tick(ws_laptop_2))["others"] == 1
    assert (await next_tick(ws_phone))["others"] == 0
    for ws in (ws_laptop, ws_laptop_2, ws_phone):
        await ws.close()


async def test_login_closes_the_anonymous_socket_and_the_next_one_is_alices(
    new_user: NewUser,
) -> None:
    user = await new_user()
    ws, who = await user.ws()
    assert who is None
    assert await user.login() == 303
    assert await close_code(ws) == SESSION_ENDED_CODE
    ws, who = await user.ws()
    assert who == "alice"
    await ws.close()


async def test_logout_closes_the_socket_and_the_next_one_is_anonymous(new_user: NewUser) -> None:
    user = await new_user()
    await user.login()
    ws, who = await user.ws()
    assert who == "alice"
    assert await user.logout() == 303
    assert await close_code(ws) == SESSION_ENDED_CODE
    assert await user.me() is None
    ws, who = await user.ws()
    assert who is None
    await ws.close()


async def test_logout_everywhere_closes_the_other_sessions_sockets(new_user: NewUser) -> None:
    laptop, phone, bob = await new_user(), await new_user(), await new_user()
    for browser in (laptop, phone):
        assert await browser.login() == 303
    assert await bob.login("bob", "builder") == 303
    ws_phone, _ = await phone.ws()
    ws_bob, _ = await bob.ws()
    assert await laptop.logout("/logout-everywhere") == 303
    assert await close_code(ws_phone) == SESSION_ENDED_CODE
    # the phone's session is logged out too, over HTTP and on its next socket
    assert await phone.me() is None and await laptop.me() is None
    ws_phone, who = await phone.ws()
    assert who is None
    # bob is untouched
    assert await bob.me() == "bob" and (await next_tick(ws_bob))["type"] == "tick"
    assert not ws_bob.closed
    for ws in (ws_phone, ws_bob):
        await ws.close()


async def test_plain_logout_leaves_other_sessions_alone(new_user: NewUser) -> None:
    laptop, phone = await new_user(), await new_user()
    await laptop.login()
    await phone.login()
    ws_phone, _ = await phone.ws()
    assert await laptop.logout() == 303
    assert await phone.me() == "alice"
    assert (await next_tick(ws_phone))["type"] == "tick" and not ws_phone.closed
    await ws_phone.close()


async def test_cookie_is_secure_off_localhost(aiohttp_client: Any) -> None:
    client = await aiohttp_client(make_app(Settings(host="0.0.0.0", port=8080)))
    async with client.get("/login") as resp:
        cookie = resp.cookies[COOKIE_NAME]
    assert cookie["secure"] and cookie["httponly"] and cookie["samesite"] == "Lax"


async def test_form_that_is_not_utf8_is_a_clear_400(new_user: NewUser) -> None:
    user = await new_user()
    token = await user.token()
    headers = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}
    body = f"csrf_token={token}&username=alice&password=\xff".encode("latin-1")
    async with user.client.post("/login", data=body, headers=headers) as resp:
        assert resp.status == 400 and "Could not read the form" in await resp.text()
    assert await user.me() is None


async def test_a_stale_logout_shows_the_page_again_with_a_fresh_form(new_user: NewUser) -> None:
    """Item 1: a tab rendered before a logout and a new login posts a dead CSRF token."""
    user = await new_user()
    assert await user.login() == 303
    stale = await user.token("/")
    assert await user.logout() == 303
    assert await user.login() == 303
    status, html, location = await user.post("/logout", {"csrf_token": stale})
    assert (status, location) == (403, None)
    assert "This page was out of date" in html and "nothing was done" in html
    assert "Logged in as <strong>alice</strong>" in html and 'id="logout-form"' in html
    assert "<!doctype html>" in html  # the whole page, not a bare error
    fresh = csrf_tokens(html)
    assert fresh and stale not in fresh
    assert await user.me() == "alice"  # nothing happened
    assert (await user.post("/logout", {"csrf_token": fresh[0]}))[0] == 303
    assert await user.me() is None


async def test_a_stale_login_form_shows_the_form_again(new_user: NewUser) -> None:
    user = await new_user()
    stale = await user.token()
    assert await user.login() == 303  # e.g. in another tab
    data = {"csrf_token": stale, "username": "bob", "password": "builder"}
    status, html, _ = await user.post("/login", data)
    assert status == 403 and "This page was out of date" in html and 'name="password"' in html
    assert await user.me() == "alice"


async def test_favicon_is_served(new_user: NewUser) -> None:
    """Item 3: no favicon 404 on every page."""
    user = await new_user()
    for path in ("/favicon.ico", "/static/favicon.svg"):
        async with user.client.get(path) as resp:
            assert resp.status == 200 and resp.content_type == "image/svg+xml"
    async with user.client.get("/login") as resp:
        assert 'rel="icon" href="/static/favicon.svg"' in await resp.text()


async def test_the_page_loads_the_librarys_client(new_user: NewUser) -> None:
    user = await new_user()
    async with user.client.get("/") as resp:
        html = await resp.text()
    url = csrf_free_attr(html, "data-client-url")
    assert url.startswith("/aiohttp_session_ws/session_ws.js?v=")
    async with user.client.get(url) as resp:
        assert resp.status == 200 and "export class SessionSocket" in await resp.text()


def csrf_free_attr(html: str, name: str) -> str:
    return html.split(f'{name}="', 1)[1].split('"', 1)[0]


def throttled_settings(per_address: str, per_account: str) -> Settings:
    return Settings(
        port=free_port(),
        login_attempts_per_address=per_address,
        login_failures_per_account=per_account,
    )


async def client_from(aiohttp_client: Any, server: Any, address: str) -> DemoUser:
    """A browser whose connections come from `address` (another loopback address)."""
    connector = aiohttp.TCPConnector(local_addr=(address, 0))
    jar = aiohttp.CookieJar(unsafe=True)
    return DemoUser(await aiohttp_client(server, cookie_jar=jar, connector=connector))


async def test_logins_are_throttled_per_client_address(
    aiohttp_server: Any, aiohttp_client: Any
) -> None:
    """Item 7: a flood from one address gets 429 + Retry-After before any hashing."""
    users = Users()
    checks: list[str] = []
    check = users.check
    users.check = lambda u, p: checks.append(u) or check(u, p)  # type: ignore[method-assign]
    server = await aiohttp_server(make_app(throttled_settings("3/minute", "100/minute"), users))
    flood = await client_from(aiohttp_client, server, "127.0.0.2")
    token = await flood.token()
    data = {"csrf_token": token, "username": "alice", "password": "guess"}
    assert [(await flood.post("/login", data))[0] for _ in range(3)] == [401] * 3
    async with flood.client.post("/login", data=data, allow_redirects=False) as resp:
        assert resp.status == 429
        assert 1 <= int(resp.headers["Retry-After"]) <= 60
        assert "Too many login attempts. Try again in" in await resp.text()
    assert len(checks) == 3  # the refused attempt hashed nothing
    right = {**data, "password": "wonderland"}
    assert (await flood.post("/login", right))[0] == 429  # even the right password waits
    other = await client_from(aiohttp_client, server, "127.0.0.3")
    assert await other.login() == 303  # another address is not slowed down


async def test_failed_logins_are_throttled_per_account_from_any_address(
    aiohttp_server: Any, aiohttp_client: Any
) -> None:
    """Item 7: guesses at one account from many addresses; unknown accounts alike."""
    server = await aiohttp_server(make_app(throttled_settings("100/minute", "2/minute")))
    for username in ("alice", "nobody"):  # the same answers for an unknown user
        statuses = []
        for address in ("127.0.0.2", "127.0.0.3", "127.0.0.4"):
            guesser = await client_from(aiohttp_client, server, address)
            data = {"csrf_token": await guesser.token(), "username": username, "password": "x"}
            statuses.append((await guesser.post("/login", data))[0])
        assert statuses == [401, 401, 429], username
    bob = await client_from(aiohttp_client, server, "127.0.0.2")
    assert await bob.login("bob", "builder") == 303  # other accounts are not affected


def test_unusable_throttle_rates_are_a_clear_error() -> None:
    with pytest.raises(ValueError, match="login_attempts_per_address must be a rate"):
        make_app(throttled_settings("often", "5/minute"))
