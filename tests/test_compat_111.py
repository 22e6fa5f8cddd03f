"""Code written for aiohttp-session-ws 1.1.1 runs unchanged (issue #14).

Each test does what a 1.1.1 user's app, subclass or unit test did, over real
servers where 1.1.1 users had them.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Hashable
from typing import Any
from unittest.mock import Mock

import aiohttp
import aiohttp_session
import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request
from aiohttp_session import Session

from aiohttp_session_ws import (
    DEFAULT_SESSION_KEY,
    REGISTRY_KEY,
    SESSION_ENDED_CODE,
    SessionWSRegistry,
    delete_session_ws_id,
    ensure_session_ws_id,
    get_session_ws_id,
    new_session_ws_id,
    schedule_close_all_session_ws,
    session_ws,
    session_ws_middleware,
    setup,
)
from tests.core_app import handle_id as handle_ws_id
from tests.core_app import handle_ws, make_app


async def _open(client: Any) -> tuple[aiohttp.ClientWebSocketResponse, Hashable]:
    ws = await client.ws_connect("/ws")
    hello = await ws.receive_json(timeout=5)
    return ws, hello["id"]


class CallRecordingRegistry(SessionWSRegistry):
    """The 1.1.1 README's cluster extension point: `register`/`unregister` overridden
    with 1.1.1's exact signatures (no keyword arguments)."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str, Hashable, web.WebSocketResponse]] = []

    def register(self, session_ws_id, wsr):
        self.calls.append(("register", session_ws_id, wsr))
        super().register(session_ws_id, wsr)

    def unregister(self, session_ws_id, wsr):
        self.calls.append(("unregister", session_ws_id, wsr))
        super().unregister(session_ws_id, wsr)


async def _alice(request: web.Request) -> list[tuple[str, str]]:
    return [("user", "alice")]


async def test_register_unregister_overrides_with_111_signatures_are_called(
    aiohttp_client: Any,
) -> None:
    registry = CallRecordingRegistry()
    app = make_app(registry)
    client = await aiohttp_client(app)
    ws, session_ws_id = await _open(client)
    assert [(name, sid) for name, sid, _ in registry.calls] == [("register", session_ws_id)]
    server_ws = registry.calls[0][2]
    assert registry[session_ws_id] == {server_ws}
    await ws.close()
    for _ in range(100):
        if len(registry.calls) == 2:
            break
        await asyncio.sleep(0.02)
    assert registry.calls[1] == ("unregister", session_ws_id, server_ws)
    assert session_ws_id not in registry


async def test_extra_keys_reach_a_111_subclass_through_index_keys(aiohttp_client: Any) -> None:
    registry = CallRecordingRegistry()
    registry.add_key_provider(_alice)
    app = make_app(registry)
    client = await aiohttp_client(app)
    ws, session_ws_id = await _open(client)
    assert registry.calls[0][:2] == ("register", session_ws_id)
    server_ws = registry.calls[0][2]
    assert registry.sockets_for_key(("user", "alice")) == {server_ws}
    assert await registry.close_all_key(("user", "alice")) == 1
    msg = await ws.receive(timeout=5)
    assert msg.type is aiohttp.WSMsgType.CLOSE and msg.data == SESSION_ENDED_CODE
    for _ in range(100):
        if registry.stats()["keys"] == 0 and len(registry.calls) == 2:
            break
        await asyncio.sleep(0.02)
    # unregister (the override, then the base) dropped the key index too.
    assert registry.calls[1][0] == "unregister"
    assert registry.stats()["keys"] == 0
    assert app[REGISTRY_KEY] is registry


def test_index_keys_adds_and_unregister_drops_them() -> None:
    registry = SessionWSRegistry()
    ws = web.WebSocketResponse()
    registry.register("sid", ws)
    registry.index_keys("sid", ws, [("user", "a")])
    registry.index_keys("sid", ws, [("user", "a"), ("group", "g")])
    assert registry.sockets_for_key(("user", "a")) == {ws}
    assert registry.sockets_for_key(("group", "g")) == {ws}
    assert registry.stats()["keys"] == 2
    registry.unregister("sid", ws)
    assert registry.stats()["keys"] == 0 and len(registry) == 0


# -- the public names -----------------------------------------------------------


def test_every_public_name_of_111_imports() -> None:
    import aiohttp_session_ws as m

    names = [
        "DEFAULT_ID_FACTORY",
        "DEFAULT_SESSION_KEY",
        "REGISTRY_KEY",
        "SessionWSRegistry",
        "__version__",
        "delete_session_ws_id",
        "ensure_session_ws_id",
        "get_session_ws_id",
        "new_session_ws_id",
        "schedule_close_all_session_ws",
        "session_ws",
        "session_ws_middleware",
        "setup",
    ]
    assert [name for name in names if not hasattr(m, name)] == []
    assert m.DEFAULT_SESSION_KEY == "aiohttp_session_ws_id"
    assert m.SessionWSRegistry().session_key == m.DEFAULT_SESSION_KEY
    made = m.DEFAULT_ID_FACTORY(make_mocked_request("GET", "/"))
    assert isinstance(made, str) and uuid.UUID(made).version == 4
    assert m.SessionWSRegistry().id_factory is m.DEFAULT_ID_FACTORY
    assert {"DEFAULT_ID_FACTORY", "DEFAULT_SESSION_KEY"} <= set(m.__all__)


# -- unit tests written the 1.1.1 way: a mocked request carrying a session --------


def _mocked(session_ws_id: Hashable | None = None, **kwargs: Any) -> tuple[Any, Session]:
    """A request from make_mocked_request with a session on it and no storage."""
    request = make_mocked_request("GET", "/", **kwargs)
    data: dict[str, Any] = {"created": int(time.time())}
    if session_ws_id is not None:
        data["session"] = {DEFAULT_SESSION_KEY: session_ws_id}
    session = Session("identity", data=data, new=True)
    request[aiohttp_session.SESSION_KEY] = session
    return request, session


async def test_id_methods_use_a_session_already_on_a_mocked_request() -> None:
    registry = SessionWSRegistry()
    request, _ = _mocked()
    assert await registry.get_id(request) is None
    request, _ = _mocked("kept")
    assert await registry.get_id(request) == "kept"
    assert await registry.ensure_id(request) == "kept"

    request, session = _mocked()
    await registry.new_id(request)
    assert uuid.UUID(session[DEFAULT_SESSION_KEY])

    request, session = _mocked("gone")
    await registry.delete_id(request)
    assert DEFAULT_SESSION_KEY not in session

    async def async_factory(request: web.Request) -> int:
        return 7

    request, session = _mocked()
    await SessionWSRegistry(id_factory=async_factory).ensure_id(request)
    assert session[DEFAULT_SESSION_KEY] == 7


async def test_a_mocked_request_without_session_or_middleware_still_says_what_to_do() -> None:
    request = make_mocked_request("GET", "/")
    with pytest.raises(RuntimeError, match=r"aiohttp_session\.setup\(app, storage\)"):
        await SessionWSRegistry().get_id(request)


async def test_helpers_pass_the_registrys_answer_through() -> None:
    registry = SessionWSRegistry()
    request = make_mocked_request("GET", "/", app={REGISTRY_KEY: registry})  # type: ignore[arg-type]
    calls: list[tuple[Any, ...]] = []

    async def stub(*args: Any) -> tuple[Any, ...]:
        calls.append(args)
        return args

    for name in ("get_id", "new_id", "delete_id", "ensure_id"):
        setattr(registry, name, stub)
    registry.schedule_close_all_session = stub  # type: ignore[method-assign]
    response = web.Response()
    assert await get_session_ws_id(request) == (request,)
    assert await new_session_ws_id(request) == (request,)
    assert await delete_session_ws_id(request) == (request,)  # type: ignore[func-returns-value]
    assert await ensure_session_ws_id(request) == (request,)
    assert await schedule_close_all_session_ws(request, response) == (request, response)  # type: ignore[func-returns-value]
    assert len(calls) == 5


async def test_middleware_calls_the_registrys_ensure_id() -> None:
    registry = SessionWSRegistry()
    request = make_mocked_request("GET", "/", app={REGISTRY_KEY: registry})  # type: ignore[arg-type]
    seen: list[web.Request] = []

    async def ensure_id(request: web.Request) -> str:
        seen.append(request)
        return "x"

    registry.ensure_id = ensure_id  # type: ignore[method-assign]
    response = web.Response()

    async def handler(request: web.Request) -> web.StreamResponse:
        return response

    assert await session_ws_middleware(request, handler) is response
    assert seen == [request]


async def test_schedule_close_on_a_mocked_request_waits_for_its_task() -> None:
    registry = SessionWSRegistry()
    request, _ = _mocked("dummy")
    delivered = asyncio.Event()
    request._task = asyncio.ensure_future(delivered.wait())  # what 1.1.1's tests did
    closed: list[Hashable] = []
    real_close = registry.close_all_session

    async def close_all_session(session_ws_id: Hashable) -> int:
        closed.append(session_ws_id)
        return await real_close(session_ws_id)

    registry.close_all_session = close_all_session  # type: ignore[method-assign]
    response = web.Response()
    await registry.schedule_close_all_session(request, response)
    assert closed == [] and not response.keep_alive
    delivered.set()
    for _ in range(100):
        if closed:
            break
        await asyncio.sleep(0.01)
    assert closed == ["dummy"]


async def test_setup_then_shutdown_calls_close_all_once() -> None:
    registry = SessionWSRegistry()
    calls: list[tuple[Any, ...]] = []

    async def close_all(*args: Any) -> int:
        calls.append(args)
        return 0

    registry.close_all = close_all  # type: ignore[method-assign]
    app = web.Application()
    setup(app, registry)
    app.freeze()
    assert app[REGISTRY_KEY] is registry
    await app.shutdown()
    assert calls == [()]


# -- registry._registry -------------------------------------------------------------


def test_registry_dict_alias_reads_and_fills_the_registry_with_a_deprecation_warning() -> None:
    registry = SessionWSRegistry()
    ws, other = web.WebSocketResponse(), web.WebSocketResponse()
    with pytest.warns(DeprecationWarning, match="register"):
        registry._registry[0] = {ws, other}  # as 1.1.1's tests set up a registry
    assert registry[0] == {ws, other} and list(registry) == [0] and len(registry) == 1
    registry.unregister(0, ws)
    assert registry.get(0) == {other}
    registry.unregister(0, other)
    assert 0 not in registry
    registry.register("sid", ws)
    with pytest.warns(DeprecationWarning):
        assert registry._registry == {"sid": {ws}}
    with pytest.raises(AttributeError):
        registry._registry = {}  # type: ignore[misc]


async def test_close_all_and_close_all_session_with_mocked_sockets() -> None:
    """1.1.1's unit tests closed `Mock(spec=WebSocketResponse)` sockets."""
    registry = SessionWSRegistry()
    ws = Mock(spec=web.WebSocketResponse)
    registry.register(0, ws)
    await asyncio.wait_for(registry.close_all_session(0), 5)
    await asyncio.wait_for(registry.close_all(), 5)


# -- subclasses keeping the id elsewhere, the 1.1.1 way ------------------------------


class HeaderIdRegistry(SessionWSRegistry):
    """Ids derived from the request, as the 1.1.1 README suggests; `new_id` returns
    nothing, as 1.1.1's did."""

    ids: dict[str, Hashable] = {}

    async def get_id(self, request):  # type: ignore[no-untyped-def]
        return self.ids.get(request.headers.get("X-Device", ""))

    async def new_id(self, request):  # type: ignore[no-untyped-def]
        self.ids[request.headers.get("X-Device", "")] = await self.generate_id(request)

    async def delete_id(self, request):  # type: ignore[no-untyped-def]
        self.ids.pop(request.headers.get("X-Device", ""), None)


async def test_subclass_moving_the_id_with_111_return_values(aiohttp_client: Any) -> None:
    registry = HeaderIdRegistry(id_factory=lambda request: "device-" + request.headers["X-Device"])
    registry.ids = {}
    # No session_ws_middleware (as in 1.1.1's own tests): session_ws makes the id.
    app = web.Application(
        middlewares=[aiohttp_session.session_middleware(aiohttp_session.SimpleCookieStorage())]
    )
    app.router.add_get("/ws", handle_ws)
    setup(app, registry)
    client = await aiohttp_client(app)
    ws, session_ws_id = await _open_with(client, {"X-Device": "d1"})
    assert session_ws_id == "device-d1" and set(registry) == {"device-d1"}
    assert await registry.close_all_session("device-d1") == 1
    msg = await ws.receive(timeout=5)
    assert msg.type is aiohttp.WSMsgType.CLOSE and msg.data == SESSION_ENDED_CODE


class BrokenNewIdRegistry(SessionWSRegistry):
    async def new_id(self, request):  # type: ignore[no-untyped-def]
        return None  # stores nothing


async def test_new_id_override_that_stores_nothing_gets_a_clear_error() -> None:
    request, _ = _mocked()
    with pytest.raises(RuntimeError, match="new_id must store the id"):
        await BrokenNewIdRegistry().ensure_id(request)


class SetIdRegistry(SessionWSRegistry):
    """get_id/set_id/delete_id overridden: the id lives in a second session key."""

    async def get_id(self, request):  # type: ignore[no-untyped-def]
        session = await aiohttp_session.get_session(request)
        return session.get("my_ws_id")

    async def set_id(self, request, session_ws_id):  # type: ignore[no-untyped-def]
        session = await aiohttp_session.get_session(request)
        session["my_ws_id"] = session_ws_id

    async def delete_id(self, request):  # type: ignore[no-untyped-def]
        session = await aiohttp_session.get_session(request)
        session.pop("my_ws_id", None)


async def test_get_set_delete_id_overrides(aiohttp_client: Any) -> None:
    registry = SetIdRegistry()
    client = await aiohttp_client(make_app(registry))
    first = (await (await client.get("/id")).json())["id"]
    assert first is not None
    ws, session_ws_id = await _open(client)
    assert session_ws_id == first and set(registry) == {first}
    await client.get("/reset")
    msg = await ws.receive(timeout=5)
    assert msg.type is aiohttp.WSMsgType.CLOSE and msg.data == SESSION_ENDED_CODE
    second = (await (await client.get("/id")).json())["id"]
    assert second not in (None, first)


async def _open_with(
    client: Any, headers: dict[str, str]
) -> tuple[aiohttp.ClientWebSocketResponse, Hashable]:
    ws = await client.ws_connect("/ws", headers=headers)
    hello = await ws.receive_json(timeout=5)
    return ws, hello["id"]


# -- the 1.1.1 README's other snippets --------------------------------------------


# 1.1.1's README returns the HTTPFound, which aiohttp now deprecates (raise it instead).
@pytest.mark.filterwarnings("ignore:returning HTTPException object is deprecated")
async def test_111_readme_logout_pattern_and_ws_options(aiohttp_client: Any) -> None:
    """The 1.1.1 README's logout handler (close, new session, new id) and `session_ws`
    with WebSocketResponse options (`protocols=`)."""

    async def handle_logout(request: web.Request) -> web.StreamResponse:
        response = web.HTTPFound("/")
        await schedule_close_all_session_ws(request, response)
        await aiohttp_session.new_session(request)
        await new_session_ws_id(request)
        return response

    async def handle_websocket(request: web.Request) -> web.WebSocketResponse:
        async with session_ws(request, protocols=("graphql-ws",)) as wsr:
            async for msg in wsr:
                await wsr.send_str(f"Heard: {msg.data}")
            return wsr

    async def handle_root(request: web.Request) -> web.Response:
        return web.Response(text="root")

    app = _app_111()
    app.router.add_get("/", handle_root)
    app.router.add_get("/logout", handle_logout)
    app.router.add_get("/ws", handle_websocket)
    client = await aiohttp_client(app)
    await client.get("/")
    ws = await client.ws_connect("/ws", protocols=("graphql-ws",))
    assert ws.protocol == "graphql-ws"
    await ws.send_str("hi")
    assert await ws.receive_str(timeout=5) == "Heard: hi"
    assert (await client.get("/logout", allow_redirects=False)).status == 302
    msg = await ws.receive(timeout=5)
    assert msg.type is aiohttp.WSMsgType.CLOSE and msg.data == SESSION_ENDED_CODE
    again = await client.ws_connect("/ws", protocols=("graphql-ws",))  # new id: not refused
    await again.send_str("back")
    assert await again.receive_str(timeout=5) == "Heard: back"
    await again.close()
    assert app["aiohttp_session_ws_registry"] is app[REGISTRY_KEY]  # the 1.1.1 string key


async def test_middleware_gives_an_existing_session_without_id_one(aiohttp_client: Any) -> None:
    """As 1.1.1's integration test: a session cookie lacking the id gets one on any response."""
    app = _app_111()
    app.router.add_get("/id", handle_ws_id)
    client = await aiohttp_client(app)
    client.session.cookie_jar.update_cookies(
        {COOKIE_NAME: json.dumps({"session": {}, "created": int(time.time())})}
    )
    response = await client.get("/id")
    saved = json.loads(response.cookies[COOKIE_NAME].value)["session"]
    assert saved[DEFAULT_SESSION_KEY] == (await response.json())["id"]


COOKIE_NAME = "AIOHTTP_SESSION_WEBSOCKET"


def _app_111() -> web.Application:
    """An app set up as 1.1.1's tests set theirs up (routes added by the caller)."""
    app = web.Application(
        middlewares=[
            aiohttp_session.session_middleware(
                aiohttp_session.SimpleCookieStorage(cookie_name=COOKIE_NAME)
            ),
            session_ws_middleware,
        ]
    )
    setup(app, SessionWSRegistry())
    return app
