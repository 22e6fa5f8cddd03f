"""The registry: which websockets belong to which session (and to which extra keys)."""

from __future__ import annotations

import asyncio
import logging
import time
import warnings
from collections import Counter
from collections.abc import Awaitable, Callable, Hashable, Iterable, Iterator, Mapping
from typing import Any, NamedTuple, TypedDict

import aiohttp_session
from aiohttp import web

from .close_sequence import CloseMark, CloseSequence
from .closing import close_sockets
from .codes import (
    SESSION_ENDED_CODE,
    SESSION_ENDED_REASON,
    SESSION_EXPIRED_REASON,
    SHUTDOWN_CODE,
    SHUTDOWN_REASON,
    TRY_AGAIN_LATER_CODE,
    TRY_AGAIN_LATER_REASON,
    encode_reason,
    validate_close_code,
)
from .expiry import SocketExpiry, check_expiry_time
from .ids import IdFactory, call_id_factory, check_id_factory, default_id_factory, stored_id
from .keys import ID_CHANGED, LOADED_CREATED
from .lineage import MAX_LINEAGE, Ended, Link, Record, SessionLineage
from .logs import RateLimitedLog, error_trace
from .options import check_name, check_seconds
from .order import NEEDS_SESSION_MIDDLEWARE
from .origin import OriginPolicy
from .revocation import OTHER, SIGNED_IN, SOCKETS, RevokedIds

logger = logging.getLogger("aiohttp_session_ws")

DEFAULT_SESSION_KEY = "aiohttp_session_ws_id"
"""Where the websocket id is kept in the session unless `session_key=` says otherwise."""
KEY_REVOCATION_TAG = "aiohttp_session_ws:key"

KeyProvider = Callable[[web.Request], Awaitable[Iterable[Hashable]]]
"""Returns extra index keys for a connecting socket (e.g. the user's identity)."""

_global_key_providers: list[KeyProvider] = []


def add_global_key_provider(provider: KeyProvider) -> None:
    """Consult `provider` for the extra keys of sockets in every registry.

    For integrations that cannot reach each registry when it is built (e.g.
    `aiohttp_session_ws.security`). Adding the same provider twice has no
    effect. The provider should return no keys for apps it does not apply to.
    """
    if provider not in _global_key_providers:
        _global_key_providers.append(provider)


class KeyProviderError(Exception):
    """A key provider raised, so a socket's extra keys (e.g. its user) are unknown.

    `session_ws` refuses such a socket (closed at once with 1013, Try Again Later)
    rather than register it without its keys. The message names the provider's
    error type only; the original error is the `__cause__`.
    """


class RegistryStats(TypedDict):
    """Counts for metrics. Never contains ids, identities or cookie values."""

    sockets: int
    sessions: int
    keys: int
    revoked: int
    key_closes: int
    """Keys whose last close is remembered (the close sequence's memory)."""
    superseded: int
    """Sessions ended because a login or logout answered with an older cookie of the
    same browser replaced them (see `SessionWSRegistry.supersede`)."""
    deadlines: int
    pending_closes: int
    closed: dict[str, int]
    refused: dict[str, int]


class SessionWSRegistry(Mapping[Hashable, frozenset[web.WebSocketResponse]]):
    """Tracks websockets by session websocket id, and closes them on demand.

    It is a read-only mapping of id -> the open sockets registered under it.
    Subclass and override `get_id`/`set_id`/`delete_id` to keep the id
    somewhere other than the aiohttp_session session.
    """

    def __init__(
        self,
        *,
        id_factory: IdFactory = default_id_factory,
        session_key: str = DEFAULT_SESSION_KEY,
        close_code: int = SESSION_ENDED_CODE,
        close_message: str | bytes = SESSION_ENDED_REASON,
        close_timeout: float = 2.0,
        revocation_ttl: float = 600.0,
        revocation_max_size: int = 100_000,
        allowed_origins: Iterable[str] | None = None,
        allow_missing_origin: bool = True,
    ) -> None:
        self.id_factory = check_id_factory(id_factory)
        self.session_key = check_name("session_key", session_key)
        self.close_code = validate_close_code(close_code)
        self.close_message = encode_reason(close_message)
        self.close_timeout = check_seconds("close_timeout", close_timeout)
        self.origins = OriginPolicy(allowed_origins, allow_missing=allow_missing_origin)
        self.revoked = RevokedIds(
            revocation_ttl, revocation_max_size, budget_of=self._revocation_budget
        )
        self.close_sequence = CloseSequence(revocation_ttl, revocation_max_size)
        self.lineage = SessionLineage(revocation_ttl, revocation_max_size)
        self._superseded = 0
        self._sessions: dict[Hashable, set[web.WebSocketResponse]] = {}
        self._keys: dict[Hashable, set[web.WebSocketResponse]] = {}
        # Only sockets with extra keys appear here.
        self._socket_keys: dict[web.WebSocketResponse, SocketKeys] = {}
        self._key_providers: list[KeyProvider] = []
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closed: Counter[str] = Counter()
        self._refused: Counter[str] = Counter()
        self._expiry = SocketExpiry(self._expire)
        self._handshakes: dict[Hashable, int] = {}  # id -> handshakes in flight
        self._mark = CloseMark(self.close_sequence.current)  # see close_mark()
        self._refusals = RateLimitedLog(logger)
        self._unreadable = RateLimitedLog(logger)
        cls = type(self)
        self._ids_in_session = cls.get_id is SessionWSRegistry.get_id
        """Whether the id is read from the session as here (`get_id` is not overridden):
        `session_ws` then reads it with `_id_in_session`, without a call to `get_id`."""
        self._answers_locally = (
            cls.refuses is SessionWSRegistry.refuses
            and cls.is_revoked is SessionWSRegistry.is_revoked
        )
        """Whether `refuses` asks only this process's memory (neither it nor
        `is_revoked` is overridden): `session_ws` then looks a socket without extra
        keys up in `revoked` itself."""

    # -- Mapping -----------------------------------------------------------

    def __getitem__(self, session_ws_id: Hashable) -> frozenset[web.WebSocketResponse]:
        return frozenset(self._sessions[session_ws_id])

    def __iter__(self) -> Iterator[Hashable]:
        return iter(self._sessions)

    def __len__(self) -> int:
        return len(self._sessions)

    @property
    def _registry(self) -> dict[Hashable, set[web.WebSocketResponse]]:
        """Deprecated: the 1.1.1 name of the live id -> sockets dict.

        Kept so 1.1.1 tests and subclasses that read (or fill) it keep working;
        the attribute cannot be rebound. Emits a `DeprecationWarning`: read the
        registry itself (a `Mapping`) and use `register`/`unregister` instead.
        """
        warnings.warn(
            "SessionWSRegistry._registry is deprecated: read the registry itself (a Mapping "
            "of id -> sockets) and change it with register()/unregister()",
            DeprecationWarning,
            stacklevel=2,
        )
        return self._sessions

    # -- the id in the session ---------------------------------------------

    async def generate_id(self, request: web.Request) -> Hashable:
        """Make a new id with `id_factory` (sync or async), checking the result."""
        return await call_id_factory(self.id_factory, request)

    async def get_id(self, request: web.Request) -> Hashable | None:
        """The request's current websocket id, or None (also for a value no id can be)."""
        return self._id_in_session(request, await _get_session(request, self._unreadable))

    def _id_in_session(
        self, request: web.Request, session: aiohttp_session.Session
    ) -> Hashable | None:
        """`get_id` for the request's loaded `session` (which `get_id` reads unless overridden)."""
        value = session.get(self.session_key)
        session_ws_id = stored_id(value)
        if session_ws_id is None and value is not None:
            self._refused["bad_id"] += 1
            logger.debug(
                "ignored an unusable websocket id (a %s) in a session", type(value).__name__
            )
        elif session_ws_id is not None:
            self._expiry.renewed(request, session, session_ws_id)
        return session_ws_id

    async def set_id(self, request: web.Request, session_ws_id: Hashable) -> None:
        """Store `session_ws_id` as the request's websocket id."""
        session = await _get_session(request, self._unreadable)
        session[self.session_key] = session_ws_id
        request[ID_CHANGED] = True

    def _id_changed(self, request: web.Request, session: aiohttp_session.Session) -> bool:
        """Whether `request` changed its websocket id (set, deleted or new).

        An id kept in the session changes only by a write to the session: while
        aiohttp_session's flag says it was not written, no lookup is made (a
        lookup that misses costs an exception).
        """
        if self._ids_in_session and not getattr(session, "_changed", True):
            return False
        return bool(request.get(ID_CHANGED))

    async def delete_id(self, request: web.Request) -> None:
        """Remove the request's websocket id."""
        session = await _get_session(request, self._unreadable)
        if session.pop(self.session_key, None) is not None:
            request[ID_CHANGED] = True

    async def new_id(self, request: web.Request) -> Hashable:
        """Generate, store and return a fresh websocket id."""
        session_ws_id = await self.generate_id(request)
        await self.set_id(request, session_ws_id)
        return session_ws_id

    async def ensure_id(self, request: web.Request) -> Hashable:
        """Return the request's id, making a new one if it has none.

        A revoked id is kept: replacing it here would re-save (and so revive)
        a pre-logout cookie session. Rotate with `new_id` where the session
        legitimately changes; the helpers and the security layer do.
        """
        session_ws_id = await self.get_id(request)
        if session_ws_id is None:
            session_ws_id = await self._stored_new_id(request)
        return session_ws_id

    async def _stored_new_id(self, request: web.Request) -> Hashable:
        """`new_id`, then the id it stored even if it returned None (as 1.1.1's did).

        Raises `RuntimeError` if no id can be read back: an override of
        `new_id` must store the id where `get_id` finds it.
        """
        session_ws_id = await self.new_id(request)
        if session_ws_id is None:  # a 1.1.1 subclass's new_id returns nothing
            # and may write the session itself: save it on a websocket upgrade too.
            request[ID_CHANGED] = True
            session_ws_id = await self.get_id(request)
            if session_ws_id is None:
                raise RuntimeError(
                    f"{type(self).__name__}.new_id() returned None and get_id() then found no "
                    "id: new_id must store the id where get_id reads it (override set_id and "
                    "get_id together) and should return it"
                )
        return session_ws_id

    # -- registration ------------------------------------------------------

    def add_key_provider(self, provider: KeyProvider) -> None:
        """Index every new socket under the keys `provider(request)` returns too."""
        self._key_providers.append(provider)

    def _asks_for_keys(self) -> bool:
        """Whether `keys_for` may return keys (a provider is set, or it is overridden)."""
        return bool(
            _global_key_providers
            or self._key_providers
            or type(self).keys_for is not SessionWSRegistry.keys_for
        )

    async def keys_for(self, request: web.Request) -> tuple[Hashable, ...]:
        """The extra index keys for a socket opened by `request` (global providers first)."""
        providers = (*_global_key_providers, *self._key_providers)
        if not providers:
            return ()
        keys: dict[Hashable, None] = {}
        for provider in providers:
            try:
                provided = await provider(request)
            except Exception as exc:
                raise KeyProviderError(
                    f"a key provider raised {type(exc).__name__}: the socket's keys are unknown"
                ) from exc
            keys.update(dict.fromkeys(provided))
        return tuple(keys)

    def close_mark(self) -> CloseMark:
        """Where the close sequence stands now. Take it before computing a socket's
        keys and pass it to `index_keys` and `refuses`: a key closed after it
        refuses the socket."""
        current = self.close_sequence.current
        mark = self._mark
        if mark.sequence != current:  # marks are immutable: one per sequence value
            self._mark = mark = CloseMark(current)
        return mark

    def register(self, session_ws_id: Hashable, wsr: web.WebSocketResponse) -> None:
        """Record `wsr` under `session_ws_id`.

        The 1.1.1 signature: `session_ws` calls ``register(session_ws_id, wsr)``
        positionally, so a subclass overriding it (and calling super) keeps
        working. Extra index keys come separately, through `index_keys`.
        """
        self._sessions.setdefault(session_ws_id, set()).add(wsr)

    def index_keys(
        self,
        session_ws_id: Hashable,
        wsr: web.WebSocketResponse,
        keys: Iterable[Hashable],
        *,
        mark: CloseMark | None = None,
    ) -> None:
        """Index `wsr` (registered under `session_ws_id`) under each extra key in `keys` too.

        `session_ws` calls it right after `register`, with the keys of
        `keys_for` (e.g. the user's identity). Calling it again adds keys;
        `unregister` drops them all. Keys are looked up with `sockets_for_key`
        and closed with `close_all_key`. `mark` is the `close_mark()` taken
        before `keys` were computed (default: now); the socket keeps it, so a
        reconciliation after an outage can tell which key closes it missed.
        """
        extra = tuple(keys)
        if not extra:
            return
        known = self._socket_keys.get(wsr)
        if known is not None:  # a socket keeps its first, oldest mark (fail closed)
            mark = known.mark
        elif mark is None:
            mark = self.close_mark()
        old_keys = known.keys if known is not None else ()
        added = tuple(key for key in dict.fromkeys(extra) if key not in old_keys)
        self._socket_keys[wsr] = SocketKeys(session_ws_id, old_keys + added, mark)
        for key in added:
            self._keys.setdefault(key, set()).add(wsr)

    def unregister(self, session_ws_id: Hashable, wsr: web.WebSocketResponse) -> None:
        """Forget `wsr` and its extra keys. Unknown pairs are ignored, so calling twice is safe."""
        _discard(self._sessions, session_ws_id, wsr)
        entry = self._socket_keys.pop(wsr, None)
        for key in entry.keys if entry is not None else ():
            _discard(self._keys, key, wsr)
        self._expiry.forget(wsr, session_ws_id, last=session_ws_id not in self._sessions)

    def handshake_started(self, session_ws_id: Hashable) -> None:
        """Note a handshake in flight for `session_ws_id` (see `handshake_ended`).

        Until it ends, a revocation of the id is kept in the budget of sessions with
        sockets, so no flood of other revocations can evict it before the new
        socket checks it.
        """
        self._handshakes[session_ws_id] = self._handshakes.get(session_ws_id, 0) + 1

    def handshake_ended(self, session_ws_id: Hashable) -> None:
        """The handshake noted by `handshake_started` was registered or failed."""
        left = self._handshakes.get(session_ws_id, 0) - 1
        if left > 0:
            self._handshakes[session_ws_id] = left
        else:
            self._handshakes.pop(session_ws_id, None)

    async def refuse_unidentified(self, wsr: web.WebSocketResponse, error: BaseException) -> None:
        """Close a prepared socket whose keys could not be determined, with 1013.

        It was never registered. Logged (rate-limited) with the error's type only:
        a lookup's error may carry the identity it looked up.
        """
        self._refused["identity_error"] += 1
        cause = error.__cause__ if error.__cause__ is not None else error
        self._refusals.warning(
            "refused a websocket: its user could not be determined (%s); "
            "closed with %d (try again later)",
            type(cause).__name__,
            TRY_AGAIN_LATER_CODE,
        )
        await close_sockets(
            [wsr],
            code=TRY_AGAIN_LATER_CODE,
            message=TRY_AGAIN_LATER_REASON.encode(),
            timeout=self.close_timeout,
        )

    def sockets_for_key(self, key: Hashable) -> frozenset[web.WebSocketResponse]:
        """The open sockets registered under an extra key."""
        return frozenset(self._keys.get(key, ()))

    # -- expiry ------------------------------------------------------------

    def set_deadline(self, request: web.Request, expires_at: float) -> None:
        """Close the socket `request` opens (or opened) at `expires_at` at the latest.

        `expires_at` is in seconds since the epoch, like `time.time()` and a JWT's
        `exp`. Call it from an identity policy's `identify`, a key provider or the
        websocket handler; it only ever brings the deadline forward. The socket is
        closed with the session-ended code and the reason "session expired" (at
        once, if the time has passed). Raises TypeError/ValueError for a value that
        is not a time.
        """
        when = check_expiry_time(expires_at)
        wsr, session_ws_id = self._expiry.note(request, when)
        if wsr is not None and not wsr.closed and wsr in self._sessions.get(session_ws_id, ()):
            self._expiry.tighten(wsr, session_ws_id, when)

    async def enforce_deadline(
        self, request: web.Request, session_ws_id: Hashable, wsr: web.WebSocketResponse
    ) -> None:
        """Close the registered `wsr` when its session expires (see `set_deadline` too).

        The session expires at `created + max_age` (aiohttp_session's rule; no
        deadline without a `max_age`), pushed back when a later request of the
        same session shows it was renewed. A socket whose deadline has already
        passed is unregistered and closed at once (counted as `refused["expired"]`).
        """
        if self._expiry.watch(request, session_ws_id, wsr):
            return
        self.unregister(session_ws_id, wsr)
        self._refused["expired"] += 1
        await close_sockets(
            [wsr],
            code=self.close_code,
            message=SESSION_EXPIRED_REASON.encode(),
            timeout=self.close_timeout,
        )

    def _expire(self, sockets: list[web.WebSocketResponse]) -> None:
        """Close sockets whose deadline passed (in a tracked task, on the close path)."""
        self.spawn(
            self._close(sockets, self.close_code, SESSION_EXPIRED_REASON.encode(), "expired")
        )

    # -- revocation --------------------------------------------------------

    async def revoke(self, session_ws_id: Hashable) -> None:
        """Refuse sockets presenting `session_ws_id` for `revocation_ttl` seconds."""
        self.revoked.add(session_ws_id)

    def _revocation_budget(self, key: Hashable) -> int:
        """Which budget of the revocation memory a revocation of `key` goes to.

        Sessions whose sockets carry extra keys (a signed-in user's) and per-key
        revocations first, then sessions with sockets or a handshake in flight, then
        the rest (e.g. anonymous logouts), so a flood of the last cannot evict the
        first two.
        """
        sockets = self._sessions.get(key)
        if sockets:
            socket_keys = self._socket_keys
            return SIGNED_IN if any(ws in socket_keys for ws in sockets) else SOCKETS
        if key in self._handshakes:
            return SOCKETS
        if isinstance(key, tuple) and key[:1] == (KEY_REVOCATION_TAG,):
            return SIGNED_IN
        return OTHER

    async def is_revoked(self, session_ws_id: Hashable) -> bool:
        """True if `session_ws_id` was revoked and has not expired."""
        return session_ws_id in self.revoked

    async def refuses(
        self,
        session_ws_id: Hashable,
        keys: Iterable[Hashable] = (),
        mark: CloseMark | None = None,
    ) -> str | None:
        """Why a socket of `session_ws_id` carrying `keys` must be closed at once, or None.

        "revoked": its id, or one of its keys within its session, is revoked.
        "key_closed": one of its keys was closed after `mark` (its `close_mark()`).
        """
        keys = tuple(keys)
        if await self.is_revoked(session_ws_id):
            return "revoked"
        if not keys:  # the common case: no key to look up
            return None
        for key in keys:
            if await self.is_revoked(key_revocation(session_ws_id, key)):
                return "revoked"
        if mark is not None and self.close_sequence.closed_since(keys, mark.sequence):
            return "key_closed"
        return None

    def _refused_locally(
        self, session_ws_id: Hashable, keys: tuple[Hashable, ...], mark: CloseMark | None
    ) -> str | None:
        """`refuses` from this process's memory alone (for registries that also ask a broker)."""
        if session_ws_id in self.revoked or any(
            key_revocation(session_ws_id, key) in self.revoked for key in keys
        ):
            return "revoked"
        if mark is not None and self.close_sequence.closed_since(keys, mark.sequence):
            return "key_closed"
        return None

    # -- closing -----------------------------------------------------------

    async def close_all(
        self, *, code: int = SHUTDOWN_CODE, message: bytes = SHUTDOWN_REASON.encode()
    ) -> int:
        """Close every known socket (by default with 1001 GOING_AWAY); return the count.

        Connections of sockets already closed but still registered (their handler
        is stuck, e.g. writing to a peer that stopped reading) are dropped too.
        """
        sockets = [ws for group in self._sessions.values() for ws in group]
        reason = "shutdown" if code == SHUTDOWN_CODE else "all"
        return await self._close(sockets, code, message, reason, drop_closed=True)

    async def close_all_session(self, session_ws_id: Hashable) -> int:
        """Revoke `session_ws_id` and close its sockets with the session-ended code.

        Takes an id rather than a request, because by the time it runs the
        request may already carry a new id. Returns how many sockets it closed.
        """
        await self.revoke(session_ws_id)
        return await self.close_local_session(session_ws_id)

    async def close_all_key(self, key: Hashable) -> int:
        """Close every socket registered under an extra key, revoking their session ids."""
        return await self.close_local_key(key)

    async def close_local_session(self, session_ws_id: Hashable) -> int:
        """Close this process's sockets of one session (no revocation, no broadcast)."""
        return await self._close(
            self._sessions.get(session_ws_id, ()),
            self.close_code,
            self.close_message,
            "session_ended",
        )

    async def close_local_key(self, key: Hashable) -> int:
        """Close this process's sockets under `key`, revoking `key` in their sessions locally.

        Only the (session, key) pair is revoked: a session that no longer
        carries `key` when it reconnects (its user was logged out) may open
        sockets again, one that still does is closed at once. The close is
        numbered in the close sequence first, so a socket whose handshake
        computed `key` before this and registers after it is refused.
        """
        self.note_key_close(key)
        sockets = list(self._keys.get(key, ()))
        if not sockets:
            return 0
        for ws in sockets:
            self.revoked.add(key_revocation(self._socket_keys[ws].session_ws_id, key))
        return await self._close(sockets, self.close_code, self.close_message, "session_ended")

    def note_key_close(self, key: Hashable) -> None:
        """Number a close of `key` in the close sequence (before its sockets are closed)."""
        self.close_sequence.close(key)

    async def _close(
        self,
        sockets: Iterable[web.WebSocketResponse],
        code: int,
        message: bytes,
        reason: str,
        *,
        drop_closed: bool = False,
    ) -> int:
        """Close `sockets`, counting them under `reason` in `stats()["closed"]`.

        Counted also if the caller is cancelled meanwhile (a scheduled close that
        `shutdown` cut short): the closes it began are still this call's.
        """

        def count(closed: int) -> None:
            self._closed[reason] += closed

        return await close_sockets(
            list(sockets),
            code=code,
            message=message,
            timeout=self.close_timeout,
            drop_closed=drop_closed,
            on_closed=count,
        )

    # -- closing after a response --------------------------------------------

    async def schedule_close_all_session(
        self, request: web.Request, response: web.StreamResponse
    ) -> None:
        """Close the request's current session sockets once `response` is delivered.

        The id is captured now, so rotating it afterwards is safe. Keep-alive
        is ended on `response` so delivery is followed by the close. Returns at
        once; called from inside a websocket handler, the close starts at once.
        """
        session_ws_id = await self.get_id(request)
        if session_ws_id is None:
            return
        await self.schedule_close_id(request, response, session_ws_id)

    async def schedule_close_id(
        self, request: web.Request, response: web.StreamResponse, session_ws_id: Hashable
    ) -> None:
        """Revoke `session_ws_id` now and close its sockets once `response` is delivered."""
        await self.revoke(session_ws_id)  # refuse reconnects with this id from now on
        self.after_response(request, response, lambda: self.close_all_session(session_ws_id))

    # -- sessions replaced in their browser ----------------------------------

    async def swap_successor(self, retired: Hashable, record: Record) -> Record | None:
        """Store `record` (a `Link` to the session that replaced that of `retired` in
        its browser, or `Ended`) for `revocation_ttl` seconds; return, atomically,
        what was stored before (None: nothing)."""
        return self.lineage.swap(retired, record)

    async def supersede(
        self,
        request: web.Request,
        response: web.StreamResponse,
        retired: Hashable,
        successor: Hashable | None,
        *,
        arrived_at: float | None = None,
    ) -> int:
        """`response` replaces, in its browser, the session of `retired` by the
        session of `successor` (None: one without an id); returns how many
        sessions that ends.

        `session_ws_middleware` calls it for every response that sets a new
        session or id (a login or logout), with `arrived_at`, when its request
        arrived (`time.time()`; default now). If a response had already
        replaced `retired` (the request carried an older cookie of the same
        browser: a stale tab, two logins from one cookie), the browser's jar
        takes whichever cookie arrives last: that newer session, and each one
        that replaced it in turn, is revoked now and its sockets are closed with
        the session-ended code once `response` is delivered; so is the session
        that took the jar from an ended `retired` (the browser got the ended
        session's response last, and now replaces it). If that happened
        while this request was in flight (after `arrived_at`), no one can tell
        which response the browser keeps: `successor` is ended too (fail
        closed: the browser must log in again). Counted in
        `stats()["superseded"]`. Errors of a shared lineage store (a
        cluster's broker) propagate.
        """
        now = time.time()
        arrived_at = now if arrived_at is None else arrived_at
        record = Ended(now) if successor is None else Link(successor, now)
        previous = await self.swap_successor(retired, record)
        current = _next_in_lineage(previous)
        ended = 0
        if previous is not None and previous.at >= arrived_at and successor is not None:
            await self.schedule_close_id(request, response, successor)  # raced: end both
            ended += 1
        seen = {retired, successor}
        while current is not None and current not in seen and ended < MAX_LINEAGE:
            seen.add(current)
            await self.schedule_close_id(request, response, current)
            ended += 1
            following = await self.swap_successor(current, Ended(now, successor))
            current = _next_in_lineage(following)
        self._superseded += ended
        return ended

    def after_response(
        self,
        request: web.Request,
        response: web.StreamResponse,
        action: Callable[[], Awaitable[object]],
    ) -> None:
        """Run `action()` right after `response` has reached the client.

        Within a websocket handler there is no later response to wait for, so
        the action starts at once. The task is tracked, its errors are logged,
        and `shutdown` waits for it.
        """
        if isinstance(response, web.WebSocketResponse) or _is_upgrade(request):
            self.spawn(action())
            return
        response.force_close()
        connection_task = request.task

        async def run() -> None:
            # The connection task ends once the response is written and, with
            # keep-alive off, the transport is closed.
            await asyncio.wait([connection_task])
            await action()

        self.spawn(run())

    def spawn(self, coro: Awaitable[object]) -> asyncio.Task[Any]:
        """Run `coro` as a tracked background task whose errors are logged."""
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        error = None if task.cancelled() else task.exception()
        if error is not None:  # the type and stack only: a message may hold an id
            logger.error("scheduled websocket close failed: %s", error_trace(error))

    async def start(self) -> None:
        """Called when the app starts (subclasses start background work here)."""

    async def stop(self) -> None:
        """Called on app cleanup, after `shutdown` (subclasses stop background work here)."""

    async def shutdown(self) -> int:
        """Finish scheduled closes, then close every socket with 1001."""
        if self._tasks:
            _, pending = await asyncio.wait(set(self._tasks), timeout=self.close_timeout)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending)
        closed = await self.close_all()
        self._expiry.clear()
        return closed

    # -- origin and metrics --------------------------------------------------

    def check_origin(self, request: web.Request) -> None:
        """Raise 403 if the allow-list refuses the request's Origin."""
        if not self.origins.permits(request):
            self._refused["origin"] += 1
            raise web.HTTPForbidden(text="websocket refused: Origin not allowed")

    def count_refused(self, reason: str) -> None:
        """Count a refused or closed-at-connect socket for `stats()`."""
        self._refused[reason] += 1

    def stats(self) -> RegistryStats:
        """Counts for metrics: open sockets, sessions, revoked ids, closes by reason."""
        return RegistryStats(
            sockets=sum(len(group) for group in self._sessions.values()),
            sessions=len(self._sessions),
            keys=len(self._keys),
            revoked=len(self.revoked),
            key_closes=len(self.close_sequence),
            superseded=self._superseded,
            deadlines=len(self._expiry),
            pending_closes=len(self._tasks),
            closed=dict(self._closed),
            refused=dict(self._refused),
        )


class SocketKeys(NamedTuple):
    """What the registry keeps about a socket with extra keys."""

    session_ws_id: Hashable
    keys: tuple[Hashable, ...]
    mark: CloseMark
    """Where the close sequence stood before its keys were computed."""


def key_revocation(session_ws_id: Hashable, key: Hashable) -> tuple[str, Hashable, Hashable]:
    """The revocation entry for `key` within one session (see `close_local_key`)."""
    return (KEY_REVOCATION_TAG, session_ws_id, key)


def _discard(
    index: dict[Hashable, set[web.WebSocketResponse]], key: Hashable, wsr: web.WebSocketResponse
) -> None:
    group = index.get(key)
    if group is None:
        return
    group.discard(wsr)
    if not group:
        del index[key]


def _next_in_lineage(record: Record | None) -> Hashable | None:
    """The session a lineage record leads to: the successor, or the one that took
    the browser's jar from an ended session."""
    if isinstance(record, Link):
        return record.successor
    return None if record is None else record.by


def _is_upgrade(request: web.Request) -> bool:
    return request.headers.get("Upgrade", "").lower() == "websocket"


async def _get_session(
    request: web.Request, warnings: RateLimitedLog | None = None
) -> aiohttp_session.Session:
    """The request's session; one whose stored data cannot be read is replaced by a new one.

    A session already on the request (`request[aiohttp_session.SESSION_KEY]`,
    as a mocked request in a unit test has it) is used as it is.

    aiohttp_session raises (500) on a cookie that decodes to the wrong shape
    (e.g. SimpleCookieStorage fed garbage); the request is served as a new
    session instead, which the session middleware saves over the bad cookie.
    """
    session: aiohttp_session.Session | None = request.get(aiohttp_session.SESSION_KEY)
    if session is not None:  # loaded already (or placed by hand): as get_session would
        return session
    if request.get(aiohttp_session.STORAGE_KEY) is None:
        # No middleware and no session placed on the request (as unit tests
        # with make_mocked_request do): aiohttp_session's own error is vaguer.
        raise RuntimeError(NEEDS_SESSION_MIDDLEWARE)
    try:
        session = await aiohttp_session.get_session(request)
    except (ValueError, TypeError, AttributeError, KeyError, IndexError, RecursionError) as exc:
        # RecursionError: JSON nested thousands deep. Any client can send these, so
        # the registry's warning is rate-limited.
        (warnings or RateLimitedLog(logger)).warning(
            "unreadable session data (%s); serving the request as a new session",
            type(exc).__name__,
        )
        return await aiohttp_session.new_session(request)
    request[LOADED_CREATED] = (session, session.created)
    return session
