"""Hostile input: bad cookies, bad handshakes, foreign origins, forged ids, bad options."""

from __future__ import annotations

import base64
import json
from typing import Any

import aiohttp
import aiohttp_session
import pytest
from aiohttp import WSMsgType, web
from aiohttp.test_utils import TestClient
from aiohttp_session.cookie_storage import EncryptedCookieStorage
from cryptography.fernet import Fernet

from aiohttp_session_ws import REGISTRY_KEY, SessionWSRegistry
from tests.core_app import make_app

Client = TestClient[web.Request, web.Application]
KEY = b"k" * 32
HANDSHAKE = {
    "Upgrade": "websocket",
    "Connection": "Upgrade",
    "Sec-WebSocket-Version": "13",
    "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
}


def plain_client_headers(cookie: str) -> dict[str, str]:
    return {"Cookie": f"AIOHTTP_SESSION={cookie}"}


async def fresh_id(client: Client, cookie: str) -> Any:
    """GET /id presenting `cookie`; the request must be served (200) with a usable id."""
    async with client.get("/id", headers=plain_client_headers(cookie)) as resp:
        assert resp.status == 200, await resp.text()
        return (await resp.json())["id"]


async def ws_id(client: Client, cookie: str) -> Any:
    """Open /ws presenting `cookie`; return the id the socket was registered under."""
    ws = await client.ws_connect("/ws", headers=plain_client_headers(cookie))
    hello = await ws.receive_json(timeout=5)
    await ws.close()
    return hello["id"]


def simple(session: object) -> str:
    """A SimpleCookieStorage cookie value (quoted, as aiohttp's cookie jar would send it)."""
    return json.dumps(json.dumps(session))


GARBAGE_SIMPLE = {
    "not-json": '"{not json"',
    "a-number": "5",
    "a-list": simple([1, 2]),
    "session-not-a-dict": simple({"created": 1, "session": [1]}),
    "created-not-a-number": simple({"created": "yesterday", "session": {}}),
    "id-is-a-dict": simple({"session": {"aiohttp_session_ws_id": {"a": 1}}}),
    "id-is-a-bool": simple({"session": {"aiohttp_session_ws_id": True}}),
    "id-is-a-float": simple({"session": {"aiohttp_session_ws_id": 1.5}}),
    "id-is-null": simple({"session": {"aiohttp_session_ws_id": None}}),
    "id-is-empty": simple({"session": {"aiohttp_session_ws_id": ""}}),
    "id-nested-dicts": simple({"session": {"aiohttp_session_ws_id": [[{"x": 1}]]}}),
}


@pytest.mark.parametrize("cookie", GARBAGE_SIMPLE.values(), ids=GARBAGE_SIMPLE.keys())
async def test_malformed_simple_cookie_is_served_as_a_new_session(
    aiohttp_client: Any, cookie: str
) -> None:
    app = make_app()
    client = await aiohttp_client(app, cookie_jar=aiohttp.DummyCookieJar())
    given = await fresh_id(client, cookie)
    assert isinstance(given, str) and len(given) == 32  # a fresh id from the id_factory
    registered = await ws_id(client, cookie)
    assert isinstance(registered, str) and len(registered) == 32
    assert registered != given  # the bad cookie was not kept: each request starts afresh
    assert set(app[REGISTRY_KEY]) <= {registered}


async def test_json_round_trip_of_tuple_ids(aiohttp_client: Any) -> None:
    """A tuple id comes back from a JSON cookie as a list; it is the same id, not garbage."""
    app = make_app(SessionWSRegistry(id_factory=lambda request: ("tenant", 7)))
    client = await aiohttp_client(app)
    assert (await (await client.get("/id")).json())["id"] == ["tenant", 7]
    ws = await client.ws_connect("/ws")
    await ws.receive_json(timeout=5)
    assert list(app[REGISTRY_KEY]) == [("tenant", 7)]
    await client.get("/reset")
    msg = await ws.receive(timeout=5)
    assert (msg.type, ws.close_code) == (WSMsgType.CLOSE, 4001)


def fernet_token(key: bytes, payload: str) -> str:
    return Fernet(base64.urlsafe_b64encode(key)).encrypt(payload.encode()).decode()


GARBAGE_ENCRYPTED = {
    "not-a-token": "garbage",
    "empty": '""',
    "truncated": fernet_token(KEY, json.dumps({"session": {"a": 1}}))[:-10],
    "bit-flipped": "X" + fernet_token(KEY, json.dumps({"session": {"a": 1}}))[1:],
    "wrong-key": fernet_token(b"w" * 32, json.dumps({"session": {"a": 1}})),
    "oversized": "A" * 4000,
    # What a leaked key (or a bug upstream) could produce: valid crypto, bad content.
    "right-key-not-json": fernet_token(KEY, "{oops"),
    "right-key-bad-id": fernet_token(KEY, json.dumps({"session": {"aiohttp_session_ws_id": {}}})),
}


@pytest.mark.parametrize("cookie", GARBAGE_ENCRYPTED.values(), ids=GARBAGE_ENCRYPTED.keys())
async def test_tampered_encrypted_cookie_is_served_as_a_new_session(
    aiohttp_client: Any, cookie: str
) -> None:
    app = make_app(storage=EncryptedCookieStorage(KEY))
    client = await aiohttp_client(app, cookie_jar=aiohttp.DummyCookieJar())
    given = await fresh_id(client, cookie)
    registered = await ws_id(client, cookie)
    assert len(given) == len(registered) == 32 and given != registered
    assert set(app[REGISTRY_KEY]) <= {registered}


async def test_cookie_larger_than_aiohttp_accepts_is_refused_before_the_app(
    aiohttp_client: Any,
) -> None:
    app = make_app()
    client = await aiohttp_client(app)
    async with client.get("/ws", headers={**HANDSHAKE, **plain_client_headers("x" * 20_000)}) as r:
        assert r.status in (400, 431)
    assert len(app[REGISTRY_KEY]) == 0
    assert (await client.get("/id")).status == 200  # the server is fine


BAD_HANDSHAKES = {
    "plain-get": {},
    "upgrade-without-key": {"Upgrade": "websocket", "Connection": "Upgrade"},
    "bad-version": {**HANDSHAKE, "Sec-WebSocket-Version": "99"},
    "bad-key": {**HANDSHAKE, "Sec-WebSocket-Key": "short"},
    "upgrade-to-h2c": {**HANDSHAKE, "Upgrade": "h2c"},
}


@pytest.mark.parametrize("headers", BAD_HANDSHAKES.values(), ids=BAD_HANDSHAKES.keys())
async def test_bad_handshakes_register_nothing(
    aiohttp_client: Any, headers: dict[str, str]
) -> None:
    app = make_app()
    client = await aiohttp_client(app)
    async with client.get("/ws", headers=headers) as resp:
        assert resp.status in (400, 426), resp.status
    async with client.post("/ws", headers=HANDSHAKE) as resp:
        assert resp.status == 405
    assert len(app[REGISTRY_KEY]) == 0
    assert app[REGISTRY_KEY].stats()["sockets"] == 0


@pytest.mark.parametrize(
    ("origin", "allow_missing", "status"),
    [
        ("http://evil.example", True, 403),
        ("null", True, 403),
        ("http://good.example.evil.example", True, 403),
        ("https://good.example", True, 403),  # another scheme is another origin
        ("%%%", True, 403),
        (None, True, 101),  # browsers always send Origin on a websocket: a missing one is a
        (None, False, 403),  # non-browser client, allowed by default; refusable by option
        ("http://good.example", False, 101),
    ],
)
async def test_foreign_and_missing_origin(
    aiohttp_client: Any, origin: str | None, allow_missing: bool, status: int
) -> None:
    app = make_app(allowed_origins=["http://good.example"], allow_missing_origin=allow_missing)
    client = await aiohttp_client(app)
    headers = {**HANDSHAKE, **({"Origin": origin} if origin is not None else {})}
    async with client.get("/ws", headers=headers) as resp:
        assert resp.status == status
    if status == 403:
        assert len(app[REGISTRY_KEY]) == 0
        assert app[REGISTRY_KEY].stats()["refused"] == {"origin": 1}


async def test_forged_id_in_a_simple_cookie_is_accepted_but_not_in_a_signed_one(
    aiohttp_client: Any,
) -> None:
    """Why production needs a signed or server-side storage.

    With SimpleCookieStorage the client writes the session: anyone who learns a
    victim's websocket id can register sockets under it. With EncryptedCookieStorage
    the same forged cookie is refused and the client gets a fresh session.
    """
    for storage, expect_forged in (
        (aiohttp_session.SimpleCookieStorage(), True),
        (EncryptedCookieStorage(KEY), False),
    ):
        app = make_app(storage=storage)
        victim = await aiohttp_client(app)
        victim_id = (await (await victim.get("/id")).json())["id"]
        forged = simple({"session": {"aiohttp_session_ws_id": victim_id}})
        attacker = await aiohttp_client(victim.server, cookie_jar=aiohttp.DummyCookieJar())
        assert (await ws_id(attacker, forged) == victim_id) is expect_forged


@pytest.mark.parametrize(
    ("message", "error", "words"),
    [
        ("x" * 10_000, ValueError, "at most 123 bytes"),
        (b"x" * 124, ValueError, "at most 123 bytes"),
        (b"\xc3\x28", ValueError, "UTF-8"),
        ("bad \udcff surrogate", ValueError, "UTF-8"),
        (None, TypeError, "str or bytes"),
    ],
)
def test_unusable_close_reasons_fail_at_construction(
    message: object, error: type[Exception], words: str
) -> None:
    with pytest.raises(error, match=words):
        SessionWSRegistry(close_message=message)  # type: ignore[arg-type]


@pytest.mark.parametrize("option", ["close_timeout", "revocation_ttl"])
@pytest.mark.parametrize("value", [0, -1, float("nan"), float("inf")])
def test_unusable_timeouts_fail_at_construction(option: str, value: float) -> None:
    with pytest.raises(ValueError, match=option.split("_")[0]):
        SessionWSRegistry(**{option: value})


async def test_id_factory_raising_fails_the_request_and_registers_nothing(
    aiohttp_client: Any,
) -> None:
    broken = True

    def factory(request: web.Request) -> str:
        if broken:
            raise RuntimeError("id service down")
        return "a-good-id"

    app = make_app(SessionWSRegistry(id_factory=factory))
    client = await aiohttp_client(app)
    assert (await client.get("/id")).status == 500
    with pytest.raises(aiohttp.WSServerHandshakeError) as info:
        await client.ws_connect("/ws")
    assert info.value.status == 500
    assert len(app[REGISTRY_KEY]) == 0
    broken = False  # the service recovers: so does the app
    ws = await client.ws_connect("/ws")
    assert (await ws.receive_json(timeout=5))["id"] == "a-good-id"
    assert list(app[REGISTRY_KEY]) == ["a-good-id"]
    await ws.close()


@pytest.mark.parametrize(
    "option",
    [
        "heartbeat_interval",
        "heartbeat_ttl",
        "redis_timeout",
        "start_timeout",
        "reconnect_base",
        "reconnect_cap",
    ],
)
@pytest.mark.parametrize("value", [float("nan"), float("inf"), 0])
def test_unusable_redis_timings_fail_at_construction(option: str, value: float) -> None:
    from redis.asyncio import Redis

    from aiohttp_session_ws.redis import RedisSessionWSRegistry

    client = Redis()  # never connected: construction must not touch the network
    with pytest.raises(ValueError, match="reconnect" if "reconnect" in option else option):
        RedisSessionWSRegistry(client, **{option: value})
