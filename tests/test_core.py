"""The core over real servers and sockets: registry, session_ws, helpers, setup."""

from __future__ import annotations

import asyncio
import gc
import logging
import weakref
from typing import Any, TypeAlias

import aiohttp
import aiohttp_session
import pytest
from aiohttp import WSMsgType, web
from aiohttp.test_utils import TestClient

from aiohttp_session_ws import (
    REGISTRY_KEY,
    SESSION_ENDED_CODE,
    SessionWSRegistry,
    ensure_session_ws_id,
    get_session_ws_id,
    new_session_ws_id,
    session_ws,
    session_ws_middleware,
    setup,
)
from aiohttp_session_ws.keys import ID_CHANGED
from tests import legacy_example
from tests.core_app import handle_ws as core_handle_ws
from tests.core_app import make_app

Client: TypeAlias = "TestClient[web.Request, web.Application]"  # a string: aiohttp < 3.11


async def open_ws(client: Client, path: str = "/ws") -> tuple[aiohttp.ClientWebSocketResponse, Any]:
    ws = await client.ws_connect(path)
    hello = await ws.receive_json(timeout=5)
    return ws, hello["id"]


async def expect_close(ws: aiohttp.ClientWebSocketResponse, code: int) -> None:
    msg = await ws.receive(timeout=5)
    assert msg.type is WSMsgType.CLOSE, msg
    assert msg.data == code  # the frame the server sent
    assert ws.close_code == code  # and the close was clean: the client's reply got through


async def test_legacy_readme_example_runs_unchanged(aiohttp_client: Any) -> None:
    client = await aiohttp_client(legacy_example.make_app())
    assert (await client.get("/")).status == 200
    ws = await client.ws_connect("/ws")
    first = await ws.receive_str(timeout=5)
    reset = await (await client.get("/reset")).text()
    old_id = first.split("[")[1].split("]")[0]
    assert reset == f"Reset called on session {old_id}!"
    msg = await ws.receive(timeout=5)
    assert msg.type is WSMsgType.CLOSE and ws.close_code == SESSION_ENDED_CODE
    ws2 = await client.ws_connect("/ws")
    second = await ws2.receive_str(timeout=5)
    assert old_id not in second
    # The example's handler only sends: the library answers the client's close.
    close_timeout = client.app[REGISTRY_KEY].close_timeout
    assert await asyncio.wait_for(ws2.close(), close_timeout) is True
    assert ws2.close_code == 1000
    await client.ws_connect("/ws")  # left open: the test client's teardown closes it


async def test_reset_closes_only_that_sessions_sockets(aiohttp_client: Any) -> None:
    app = make_app()
    alice = await aiohttp_client(app)
    bob = await aiohttp_client(alice.server)
    await alice.get("/id")
    await bob.get("/id")
    a1, a_id = await open_ws(alice)
    a2, a_id2 = await open_ws(alice)
    b1, b_id = await open_ws(bob)
    assert a_id == a_id2 != b_id
    registry = app[REGISTRY_KEY]
    assert len(registry[a_id]) == 2

    await alice.get("/reset")
    await expect_close(a1, SESSION_ENDED_CODE)
    await expect_close(a2, SESSION_ENDED_CODE)
    await b1.send_str("still here")
    assert not b1.closed
    assert (await (await alice.get("/id")).json())["id"] != a_id
    assert registry.stats()["closed"]["session_ended"] == 2
    await b1.close()


async def test_new_session_id_is_saved_on_the_101(aiohttp_client: Any) -> None:
    client = await aiohttp_client(make_app())
    # No HTTP request first: the id is created while upgrading and must reach the client.
    ws, ws_id = await open_ws(client)
    assert (await (await client.get("/id")).json())["id"] == ws_id
    await ws.close()


async def test_an_id_rotated_before_the_upgrade_is_saved_on_the_101(aiohttp_client: Any) -> None:
    # The session exists and has an id; the handler changes it and then upgrades.
    # session_ws skips its lookup of the change while the session is unwritten:
    # here it was written, and the 101 must carry the new id's cookie.
    async def handle_rotate_ws(request: web.Request) -> web.WebSocketResponse:
        if "rotate" in request.query:
            await new_session_ws_id(request)
        return await core_handle_ws(request)

    app = make_app()
    app.router.add_get("/ws-rotating", handle_rotate_ws)
    client = await aiohttp_client(app)
    old_id = (await (await client.get("/id")).json())["id"]

    def cookies() -> dict[str, str]:
        return {cookie.key: cookie.value for cookie in client.session.cookie_jar}

    before = cookies()
    ws = await client.ws_connect("/ws-rotating")  # unchanged: no cookie on the 101
    assert (await ws.receive_json(timeout=5))["id"] == old_id
    await ws.close()
    assert cookies() == before
    ws = await client.ws_connect("/ws-rotating?rotate=1")
    new_id = (await ws.receive_json(timeout=5))["id"]
    assert new_id != old_id
    await ws.close()
    assert cookies() != before
    assert (await (await client.get("/id")).json())["id"] == new_id


async def test_sub_application(aiohttp_client: Any) -> None:
    root = web.Application(
        middlewares=[
            aiohttp_session.session_middleware(aiohttp_session.SimpleCookieStorage()),
            session_ws_middleware,
        ]
    )
    sub = web.Application()

    async def handle_ws(request: web.Request) -> web.WebSocketResponse:
        async with session_ws(request) as ws:
            await ws.send_json({"id": await get_session_ws_id(request)})
            async for _ in ws:
                pass
        return ws

    sub.router.add_get("/ws", handle_ws)
    root.add_subapp("/sub", sub)
    setup(root, SessionWSRegistry())
    client = await aiohttp_client(root)
    ws, ws_id = await open_ws(client, "/sub/ws")
    assert root[REGISTRY_KEY][ws_id]
    assert await root[REGISTRY_KEY].close_all_session(ws_id) == 1
    await expect_close(ws, SESSION_ENDED_CODE)


async def test_plain_get_to_ws_route_registers_nothing(aiohttp_client: Any) -> None:
    app = make_app()
    client = await aiohttp_client(app)
    resp = await client.get("/ws")
    assert resp.status == 426
    assert "websocket" in (await resp.text())
    bad = await client.get(
        "/ws",
        headers={"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "7"},
    )
    assert bad.status in (400, 426)
    assert len(app[REGISTRY_KEY]) == 0
    assert app[REGISTRY_KEY].stats()["sockets"] == 0


async def test_churn_leaves_registry_empty(aiohttp_client: Any) -> None:
    app = make_app()
    client = await aiohttp_client(app)
    await client.get("/id")
    for _ in range(500):
        ws, _id = await open_ws(client)
        await ws.close()
    for _ in range(50):  # unregistering happens as each handler finishes
        if not app[REGISTRY_KEY]:
            break
        await asyncio.sleep(0.02)
    assert len(app[REGISTRY_KEY]) == 0
    assert app[REGISTRY_KEY].stats()["sockets"] == 0


async def expect_closed_at_connect(client: Client) -> None:
    """Open a socket, read past its hello (if sent before the close) to a clean 4001."""
    ws = await client.ws_connect("/ws")
    msg = await ws.receive(timeout=5)
    while msg.type is WSMsgType.TEXT:
        msg = await ws.receive(timeout=5)
    assert msg.type is WSMsgType.CLOSE and ws.close_code == SESSION_ENDED_CODE


async def test_revoked_id_is_closed_on_connect(aiohttp_client: Any) -> None:
    app = make_app()
    client = await aiohttp_client(app)
    jar = client.session.cookie_jar
    old_id = (await (await client.get("/id")).json())["id"]
    stale_cookie = jar.filter_cookies(client.make_url("/"))
    await client.get("/reset")
    fresh_cookie = jar.filter_cookies(client.make_url("/"))
    # A tab that reconnects with the pre-reset cookie (or a replayed cookie).
    jar.update_cookies(stale_cookie, client.make_url("/"))
    ws = await client.ws_connect("/ws")
    msg = await ws.receive(timeout=5)
    if msg.type is WSMsgType.TEXT:  # the hello may precede the close
        assert msg.json()["id"] == old_id
        msg = await ws.receive(timeout=5)
    assert msg.type is WSMsgType.CLOSE and ws.close_code == SESSION_ENDED_CODE
    assert app[REGISTRY_KEY].stats()["refused"]["revoked"] == 1
    assert old_id not in app[REGISTRY_KEY]
    # An HTTP request does not quietly replace the revoked id (that would
    # re-save the stale session); the cookie from the reset response works.
    assert (await (await client.get("/id")).json())["id"] == old_id
    jar.update_cookies(fresh_cookie, client.make_url("/"))
    ws2, ws2_id = await open_ws(client)
    assert ws2_id not in (old_id, None)
    await ws2.close()


async def test_close_from_inside_a_websocket_handler(aiohttp_client: Any) -> None:
    app = make_app()
    client = await aiohttp_client(app)
    await client.get("/id")
    other, _ = await open_ws(client)
    ws, _ = await open_ws(client)
    await ws.send_str("reset-from-inside")
    assert await ws.receive_str(timeout=5) == "scheduled"  # returned at once, no hang
    await expect_close(ws, SESSION_ENDED_CODE)
    await expect_close(other, SESSION_ENDED_CODE)


async def test_scheduled_close_waits_for_the_response(aiohttp_client: Any) -> None:
    """The close happens only after the reset response reached the client."""
    order: list[str] = []
    app = make_app()
    client = await aiohttp_client(app)
    await client.get("/id")
    ws, _ = await open_ws(client)

    async def watch() -> None:
        msg = await ws.receive(timeout=5)
        order.append(f"ws:{msg.type.name}")

    watcher = asyncio.create_task(watch())
    resp = await client.get("/reset")
    order.append(f"http:{resp.status}")
    await resp.read()
    await watcher
    assert order == ["http:200", "ws:CLOSE"]
    assert resp.headers.get("Connection", "").lower() == "close"


async def test_scheduled_close_errors_are_logged(
    aiohttp_client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    class Broken(SessionWSRegistry):
        async def close_all_session(self, session_ws_id: Any) -> int:
            raise RuntimeError(f"broker exploded closing {session_ws_id}")

    app = make_app(Broken())
    client = await aiohttp_client(app)
    session_ws_id = (await (await client.get("/id")).json())["id"]
    with caplog.at_level(logging.ERROR, logger="aiohttp_session_ws"):
        await client.get("/reset")
        for _ in range(100):
            if not app[REGISTRY_KEY].stats()["pending_closes"]:
                break
            await asyncio.sleep(0.01)
    messages = [r.getMessage() for r in caplog.records]
    failed = [m for m in messages if m.startswith("scheduled websocket close failed")]
    assert len(failed) == 1, messages
    # The type and where it was raised; not the message, which may carry the id.
    assert "RuntimeError" in failed[0] and "close_all_session" in failed[0]
    assert session_ws_id not in failed[0]


async def test_legacy_string_key_and_manual_registry(aiohttp_client: Any) -> None:
    app = make_app()
    assert app["aiohttp_session_ws_registry"] is app[REGISTRY_KEY]
    # 1.1.1 code that stored the registry under the string key by hand still works.
    manual = web.Application(
        middlewares=[
            aiohttp_session.session_middleware(aiohttp_session.SimpleCookieStorage()),
            session_ws_middleware,
        ]
    )
    registry = SessionWSRegistry()
    with pytest.warns(web.NotAppKeyWarning):
        manual["aiohttp_session_ws_registry"] = registry
    manual.router.add_get("/id", lambda_id)
    client = await aiohttp_client(manual)
    assert (await (await client.get("/id")).json())["id"] is not None


async def lambda_id(request: web.Request) -> web.Response:
    return web.json_response({"id": await ensure_session_ws_id(request)})


async def test_origin_allow_list(aiohttp_client: Any) -> None:
    app = make_app(allowed_origins=["http://good.example"])
    client = await aiohttp_client(app)
    refused = await client.get(
        "/ws",
        headers={
            "Origin": "http://evil.example",
            "Upgrade": "websocket",
            "Connection": "Upgrade",
            "Sec-WebSocket-Version": "13",
            "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
        },
    )
    assert refused.status == 403
    with pytest.raises(aiohttp.WSServerHandshakeError) as info:
        await client.ws_connect("/ws", origin="http://evil.example")
    assert info.value.status == 403
    ws, _ = await open_ws_with_origin(client, "http://GOOD.example:80")
    await ws.close()
    ws, _ = await open_ws(client)  # no Origin: not a browser, allowed by default
    await ws.close()
    assert len(app[REGISTRY_KEY]) <= 1
    assert app[REGISTRY_KEY].stats()["refused"]["origin"] == 2


async def open_ws_with_origin(client: Client, origin: str) -> tuple[Any, Any]:
    ws = await client.ws_connect("/ws", origin=origin)
    return ws, (await ws.receive_json(timeout=5))["id"]


async def test_custom_close_code_and_reason(aiohttp_client: Any) -> None:
    client = await aiohttp_client(make_app(close_code=4321, close_message="bye now"))
    await client.get("/id")
    ws, _ = await open_ws(client)
    await client.get("/reset")
    msg = await ws.receive(timeout=5)
    assert msg.type is WSMsgType.CLOSE
    assert (ws.close_code, msg.extra) == (4321, "bye now")


@pytest.mark.parametrize("asynchronous", [False, True])
async def test_sync_and_async_id_factories(aiohttp_client: Any, asynchronous: bool) -> None:
    counter = iter(range(1000))

    def sync_factory(request: web.Request) -> str:
        return f"id-{next(counter)}"

    async def async_factory(request: web.Request) -> str:
        await asyncio.sleep(0)
        return f"id-{next(counter)}"

    factory = async_factory if asynchronous else sync_factory
    app = make_app(SessionWSRegistry(id_factory=factory))
    client = await aiohttp_client(app)
    assert (await (await client.get("/id")).json())["id"] == "id-0"
    ws, ws_id = await open_ws(client)
    assert ws_id == "id-0"
    await client.get("/reset")
    await expect_close(ws, SESSION_ENDED_CODE)
    assert (await (await client.get("/id")).json())["id"] == "id-1"


@pytest.mark.parametrize(
    ("result", "error", "words"),
    [(None, ValueError, "returned None"), (["a", "list"], TypeError, "unhashable")],
)
async def test_bad_id_factory_results(
    aiohttp_client: Any, result: object, error: type[Exception], words: str
) -> None:
    registry = SessionWSRegistry(id_factory=lambda request: result)
    client = await aiohttp_client(make_app(registry))
    resp = await client.get("/id")
    assert resp.status == 500  # the handler fails loudly ...
    with pytest.raises(error, match=words):  # ... with an error that says what to do
        await registry.generate_id(None)  # type: ignore[arg-type]


def test_id_factory_must_be_callable() -> None:
    with pytest.raises(TypeError, match="id_factory must be a callable"):
        SessionWSRegistry(id_factory="uuid4")  # type: ignore[arg-type]


async def test_missing_session_middleware_says_how_to_fix(aiohttp_client: Any) -> None:
    app = web.Application(middlewares=[session_ws_middleware])
    setup(app, SessionWSRegistry())
    seen: list[BaseException] = []

    @web.middleware
    async def capture(request: web.Request, handler: Any) -> web.StreamResponse:
        try:
            return await handler(request)
        except RuntimeError as exc:
            seen.append(exc)
            raise

    app.middlewares.insert(0, capture)
    app.router.add_get("/", lambda_id)
    client = await aiohttp_client(app)
    assert (await client.get("/")).status == 500
    assert "aiohttp_session.setup(app, storage)" in str(seen[0])
    assert "session_ws_middleware after it" in str(seen[0])


async def test_missing_setup_says_how_to_fix(aiohttp_client: Any) -> None:
    seen: list[BaseException] = []

    async def handler(request: web.Request) -> web.StreamResponse:
        try:
            async with session_ws(request) as ws:
                return ws
        except RuntimeError as exc:
            seen.append(exc)
            raise

    app = web.Application(
        middlewares=[aiohttp_session.session_middleware(aiohttp_session.SimpleCookieStorage())]
    )
    app.router.add_get("/ws", handler)
    client = await aiohttp_client(app)
    with pytest.raises(aiohttp.WSServerHandshakeError):
        await client.ws_connect("/ws")
    assert "setup(app, SessionWSRegistry())" in str(seen[0])


async def test_unregister_is_idempotent_and_closing_never_raises(aiohttp_client: Any) -> None:
    registry = SessionWSRegistry()
    unprepared = web.WebSocketResponse()
    registry.register("sid", unprepared)
    registry.index_keys("sid", unprepared, [("user", "x")])
    assert await registry.close_all_session("sid") == 0  # never prepared: skipped, no error
    assert await registry.close_all_key(("user", "x")) == 0
    registry.unregister("sid", unprepared)
    registry.unregister("sid", unprepared)
    registry.unregister("nope", unprepared)
    assert len(registry) == 0 and registry.stats()["keys"] == 0


async def test_extra_keys_close_across_sessions(aiohttp_client: Any) -> None:
    app = make_app()
    registry = app[REGISTRY_KEY]
    registry.add_key_provider(_user_key)
    laptop = await aiohttp_client(app)
    phone = await aiohttp_client(laptop.server)
    await laptop.get("/id")
    await phone.get("/id")
    l_ws, l_id = await open_ws(laptop)
    p_ws, p_id = await open_ws(phone)
    assert l_id != p_id
    assert len(registry.sockets_for_key(("user", "alice"))) == 2
    assert await registry.close_all_key(("user", "alice")) == 2
    await expect_close(l_ws, SESSION_ENDED_CODE)
    await expect_close(p_ws, SESSION_ENDED_CODE)
    assert await registry.close_all_key(("user", "alice")) == 0  # counts only real closes
    # Both sessions refuse sockets that still carry the key, and only those.
    for session_ws_id in (l_id, p_id):
        assert await registry.refuses(session_ws_id, [("user", "alice")])
        assert not await registry.refuses(session_ws_id, [("user", "bob")])
        assert not await registry.refuses(session_ws_id)
    await expect_closed_at_connect(laptop)
    assert registry.stats()["refused"]["revoked"] == 1


class OverridingRegistry(SessionWSRegistry):
    """Overrides what `session_ws` otherwise answers without a call (get_id and
    set_id, keys_for, refuses): each must still be asked at every handshake."""

    def __init__(self) -> None:
        super().__init__()
        self.keys: tuple[Any, ...] = ()
        self.refusal: str | None = None

    async def get_id(self, request: web.Request) -> Any:  # the id under a key of its own
        return (await aiohttp_session.get_session(request)).get("my_id")

    async def set_id(self, request: web.Request, session_ws_id: Any) -> None:
        (await aiohttp_session.get_session(request))["my_id"] = session_ws_id
        request[ID_CHANGED] = True

    async def keys_for(self, request: web.Request) -> tuple[Any, ...]:
        return self.keys

    async def refuses(self, session_ws_id: Any, keys: Any = (), mark: Any = None) -> str | None:
        return self.refusal or await super().refuses(session_ws_id, keys, mark)


async def test_a_subclass_overriding_the_handshake_lookups_is_asked(aiohttp_client: Any) -> None:
    registry = OverridingRegistry()
    client = await aiohttp_client(make_app(registry))
    session_ws_id = (await (await client.get("/id")).json())["id"]
    # get_id: the socket is registered under the id the override reads.
    ws, socket_id = await open_ws(client)
    assert socket_id == session_ws_id and session_ws_id in registry
    await ws.close()
    # keys_for: its keys index the socket.
    registry.keys = (("device", "laptop"),)
    ws, _ = await open_ws(client)
    assert await registry.close_all_key(("device", "laptop")) == 1
    await expect_close(ws, SESSION_ENDED_CODE)
    # refuses: a socket without keys that it refuses is closed at once.
    registry.keys, registry.refusal = (), "revoked"
    await expect_closed_at_connect(client)
    assert registry.stats()["refused"]["revoked"] == 1


async def _user_key(request: web.Request) -> list[tuple[str, str]]:
    return [("user", "alice")]


@pytest.mark.parametrize("max_age", [None, 3600], ids=["no-expiry", "expiring-session"])
async def test_a_closed_socket_and_its_request_are_freed_without_the_cyclic_gc(
    aiohttp_client: Any, max_age: int | None
) -> None:
    """No reference cycle through the library: once the handler has returned, the
    socket and its request are freed by reference counting alone (with a session
    expiry, the socket also had a deadline)."""
    alive: list[tuple[weakref.ref[web.Request], weakref.ref[web.WebSocketResponse]]] = []

    async def handler(request: web.Request) -> web.WebSocketResponse:
        async with session_ws(request) as ws:
            alive.append((weakref.ref(request), weakref.ref(ws)))
            await ws.send_str("open")
            async for _ in ws:
                pass
        return ws

    app = make_app(storage=aiohttp_session.SimpleCookieStorage(max_age=max_age))
    app.router.add_get("/probe", handler)
    client = await aiohttp_client(app)
    registry = app[REGISTRY_KEY]
    await client.get("/id")
    gc.collect()
    gc.disable()
    try:
        for _ in range(3):
            ws = await client.ws_connect("/probe")
            assert await ws.receive_str(timeout=5) == "open"
            await ws.close()
        for _ in range(100):  # the handlers return once the closes are done
            if len(registry) == 0 and all(ref() is None for pair in alive for ref in pair):
                break
            await asyncio.sleep(0.02)
        assert len(registry) == 0
        assert len(alive) == 3
        assert [(req() is None, sock() is None) for req, sock in alive] == [(True, True)] * 3
    finally:
        gc.enable()


async def test_close_all_counts_and_shutdown_code(aiohttp_client: Any) -> None:
    app = make_app()
    client = await aiohttp_client(app)
    await client.get("/id")
    sockets = [(await open_ws(client))[0] for _ in range(3)]
    assert await app[REGISTRY_KEY].close_all() == 3
    for ws in sockets:
        await expect_close(ws, 1001)
    assert await app[REGISTRY_KEY].close_all() == 0


async def test_client_close_with_heartbeat_unregisters_the_socket(aiohttp_client: Any) -> None:
    """aiohttp cancels the handler once the connection is gone; a cancellation landing in
    session_ws's exit (it awaits the heartbeat watchdog) must not leave the socket registered."""

    async def handler(request: web.Request) -> web.WebSocketResponse:
        async with session_ws(request, heartbeat=30) as ws:
            async for _ in ws:
                pass
        return ws

    app = web.Application(
        middlewares=[
            aiohttp_session.session_middleware(aiohttp_session.SimpleCookieStorage()),
            session_ws_middleware,
        ]
    )
    app.router.add_get("/ws", handler)
    setup(app, SessionWSRegistry())
    client = await aiohttp_client(app)
    registry = app[REGISTRY_KEY]
    for _ in range(3):
        ws = await client.ws_connect("/ws")
        await ws.close()
    for _ in range(100):
        if len(registry) == 0:
            break
        await asyncio.sleep(0.02)
    assert len(registry) == 0 and registry.stats()["sockets"] == 0
