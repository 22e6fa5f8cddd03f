"""`session_ws`: upgrade a request to a websocket tied to the session."""

from __future__ import annotations

from collections.abc import Hashable
from types import TracebackType
from typing import Any

import aiohttp_session
from aiohttp import web

from .app import get_registry
from .closing import close_sockets
from .registry import KeyProviderError, SessionWSRegistry, _get_session
from .stale import is_retired, is_unknown
from .websocket import SessionWebSocketResponse


class session_ws:  # noqa: N801 - the 1.1.1 name
    """Async context manager yielding a prepared `WebSocketResponse` (a
    `SessionWebSocketResponse`: its closes complete the closing handshake, and
    it answers pings and the client's Close even while the handler only sends).

    On enter it checks the Origin allow-list (403) and that the request is an
    upgrade (426), ensures the session has a websocket id (saving the session
    cookie on the 101 response when that changed it), upgrades, and registers
    the socket. A socket presenting a revoked id, or carrying a key closed
    since its handshake began (see `SessionWSRegistry.close_mark`), is accepted
    and closed at once with the session-ended code (it is registered before
    that check, so a close racing the check cannot miss it). On exit the
    socket is unregistered, and a close under way is given time to finish its
    handshake (bounded by the registry's `close_timeout` for the library's closes).

    A stale cookie never gets a session saved for it (that could replace the
    browser's newer cookie): a cookie that loads as no session (unknown,
    emptied, expired, undecryptable) gives an anonymous socket under an id that
    is never saved; the cookie of a session a login or logout retired gives a
    socket closed at once with the session-ended code.

    `ws_options` go to `web.WebSocketResponse` (e.g. `heartbeat=`, `protocols=`).
    With `heartbeat=`, a handler left blocked in a send after its peer vanished
    has its connection dropped, so the socket is unregistered anyway.
    """

    # One instance lives as long as its socket: no per-instance __dict__.
    __slots__ = ("_registry", "options", "request", "response", "session_ws_id")

    def __init__(self, request: web.Request, **ws_options: Any) -> None:
        self.request = request
        self.options = ws_options
        self.response: SessionWebSocketResponse | None = None
        self.session_ws_id: Hashable | None = None
        self._registry: SessionWSRegistry | None = None

    @property
    def registry(self) -> SessionWSRegistry:
        """The registry of the request's app (looked up once)."""
        if self._registry is None:
            self._registry = get_registry(self.request)
        return self._registry

    async def __aenter__(self) -> web.WebSocketResponse:
        request = self.request
        registry = self.registry
        registry.check_origin(request)
        ws = SessionWebSocketResponse(**self.options)
        if request.headers.get("Upgrade", "").lower() != "websocket":
            # A bad handshake past this point is refused by ws.prepare() (400).
            registry.count_refused("not_upgrade")
            raise web.HTTPUpgradeRequired(
                headers={"Upgrade": "websocket", "Connection": "Upgrade"},
                text="this URL is a websocket endpoint: connect with a websocket client",
            )
        session = request.get(aiohttp_session.SESSION_KEY)
        if session is not None and registry._ids_in_session:  # the common case, without a call
            session_ws_id = registry._id_in_session(request, session)
        else:
            session_ws_id = await registry.get_id(request)
            session = await _get_session(request)  # loaded by get_id already (unless overridden)
        retired = is_retired(session)
        # A stale cookie: saving a session for it could replace the browser's
        # newer cookie. Its socket gets an id of its own that is never saved.
        stale = retired or (session_ws_id is None and is_unknown(request, session))
        if session_ws_id is None:
            session_ws_id = await registry._stored_new_id(request)
        registry.handshake_started(session_ws_id)
        try:
            return await self._open(
                registry, ws, session_ws_id, session, stale=stale, retired=retired
            )
        finally:
            registry.handshake_ended(session_ws_id)

    async def _open(
        self,
        registry: SessionWSRegistry,
        ws: SessionWebSocketResponse,
        session_ws_id: Hashable,
        session: aiohttp_session.Session,
        *,
        stale: bool,
        retired: bool,
    ) -> web.WebSocketResponse:
        request = self.request
        asks_for_keys = registry._asks_for_keys()
        # Taken before the keys are computed: a key closed while they are
        # (an identity lookup may take a while) refuses the socket below.
        # Not needed when the answer is `revoked` alone (no keys, no override).
        mark = registry.close_mark() if asks_for_keys or not registry._answers_locally else None
        unidentified: KeyProviderError | None = None
        keys: tuple[Hashable, ...] = ()
        if asks_for_keys:
            try:
                keys = await registry.keys_for(request)
            except KeyProviderError as exc:  # whose socket it is is unknown: refuse it below
                unidentified = exc
        if not stale and registry._id_changed(request, session):
            # aiohttp_session saves nothing for a websocket response: the new
            # id must ride on the 101 itself.
            await request[aiohttp_session.STORAGE_KEY].save_session(request, ws, session)
        local = not keys and registry._answers_locally  # no await between upgrade and handler
        if not local:  # e.g. a Redis round trip: the handler gets the socket only after it
            ws._hold_read_check()
        await ws.prepare(request)
        if unidentified is not None:
            await registry.refuse_unidentified(ws, unidentified)
            return ws
        self.response = ws
        self.session_ws_id = session_ws_id
        # Register before asking whether the id is revoked: a close that runs
        # while the answer is in flight (a Redis round trip) then finds the
        # socket, and one that ran before has revoked the id already.
        registry.register(session_ws_id, ws)  # positional: 1.1.1 overrides keep working
        if keys:
            registry.index_keys(session_ws_id, ws, keys, mark=mark)
        try:
            # A retired session's cookie: the browser most likely holds the newer
            # one already, which a reconnect will present (the tombstone expires
            # after revocation_ttl seconds, then the cookie is merely unknown).
            if retired:
                refused: str | None = "stale_session"
            elif local:  # the common case, without a call
                refused = "revoked" if session_ws_id in registry.revoked else None
            else:
                refused = await registry.refuses(session_ws_id, keys, mark)
        except BaseException:  # __aexit__ will not run: undo what __aenter__ did
            registry.unregister(session_ws_id, ws)
            await ws.stop_reading()
            raise
        if refused:
            registry.unregister(session_ws_id, ws)
            registry.count_refused(refused)
            await close_sockets(
                [ws],
                code=registry.close_code,
                message=registry.close_message,
                timeout=registry.close_timeout,
            )
        else:
            await registry.enforce_deadline(request, session_ws_id, ws)
            if not local:
                ws._release_read_check()
        return ws

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # Unregister before any await: aiohttp may cancel the handler once the
        # connection is gone (e.g. right after a client-started close), and a
        # cancellation landing in an await below must not leave the socket registered.
        ws = self.response
        if ws is not None:
            registry = self._registry
            assert registry is not None  # set by __aenter__
            registry.unregister(self.session_ws_id, ws)
            # A close under way finishes its handshake before aiohttp, once
            # the handler returns, closes the connection.
            if ws._reading_or_closing:
                await ws.stop_reading()
