"""When each socket's session (or identity) expires: one heap of deadlines per registry,
driven by a single timer re-armed for the earliest, not a task per socket."""

from __future__ import annotations

import asyncio
import heapq
import itertools
import math
import time
import weakref
from collections.abc import Callable, Hashable
from numbers import Real

import aiohttp_session
from aiohttp import web

from .keys import ID_CHANGED, LOADED_CREATED, OPEN_SOCKET, SOCKET_DEADLINE

_NUMBERS = (int, float)

COMPACT_SLACK = 64
"""Stale heap entries tolerated beyond the live ones before the heap is rebuilt."""


def check_expiry_time(expires_at: object) -> float:
    """Return `expires_at` (seconds since the epoch) as a float, or raise."""
    if isinstance(expires_at, bool) or not isinstance(expires_at, Real):
        raise TypeError(
            "a socket deadline is a time in seconds since the epoch (as time.time() or "
            f"a JWT's exp), got {type(expires_at).__name__}"
        )
    when = float(expires_at)
    if math.isnan(when):
        raise ValueError("a socket deadline is a time in seconds since the epoch, got NaN")
    return when


def session_expiry(request: web.Request, session: aiohttp_session.Session) -> float | None:
    """When aiohttp_session stops loading `session`: `created + max_age` (seconds since
    the epoch), or None if it never expires.

    aiohttp_session drops a session's data once it is more than `max_age` seconds
    older than its `created` time, which every write to the session renews (and a
    save without a write does not); cookie storages also set the cookie to expire
    `max_age` after the save, and RedisStorage gives the record that lifetime. The
    earlier of the storage's and the session's `max_age` is used. If the session was
    written during this request but not saved (its id did not change), the `created`
    it had when loaded is what the client's cookie or record carries.
    """
    storage_age = getattr(request.get(aiohttp_session.STORAGE_KEY), "max_age", None)
    session_age = session.max_age
    if storage_age is None and session_age is None:  # aiohttp_session's default
        return None
    shortest: float | None = None
    for age in (storage_age, session_age):
        if (
            isinstance(age, _NUMBERS)
            and not isinstance(age, bool)
            and (shortest is None or age < shortest)
        ):
            shortest = float(age)
    if shortest is None:
        return None
    created = session.created
    loaded = request.get(LOADED_CREATED)
    if loaded is not None and loaded[0] is session and not request.get(ID_CHANGED):
        created = min(created, loaded[1])
    return created + shortest


class Deadlines:
    """Sockets to close at a deadline: a heap of (loop time, n) and one timer.

    `tighten(ws, when)` sets or brings forward a socket's deadline (a later one is
    ignored); `discard(ws)` forgets it (its heap entry is dropped lazily, and the
    heap is rebuilt when stale entries outnumber live ones, so memory stays bounded
    by the sockets that have deadlines). Heap entries hold a number, not the
    socket: a forgotten socket is not kept alive by its stale entry. When
    deadlines pass, `on_due` gets the due sockets in one call.
    """

    def __init__(self, on_due: Callable[[list[web.WebSocketResponse]], None]) -> None:
        self._on_due = on_due
        self._when: dict[web.WebSocketResponse, tuple[float, int]] = {}
        self._sockets: dict[int, web.WebSocketResponse] = {}  # n -> socket, live entries only
        self._heap: list[tuple[float, int]] = []
        self._order = itertools.count()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = math.inf

    def __len__(self) -> int:
        return len(self._when)

    def __contains__(self, ws: object) -> bool:
        return ws in self._when

    def tighten(self, ws: web.WebSocketResponse, expires_at: float) -> None:
        """Close `ws` at `expires_at` (seconds since the epoch) unless due earlier."""
        loop = asyncio.get_running_loop()
        when = loop.time() + (expires_at - time.time())
        current = self._when.get(ws)
        if current is not None:
            if current[0] <= when:
                return
            del self._sockets[current[1]]
        entry = (when, next(self._order))
        self._when[ws] = entry
        self._sockets[entry[1]] = ws
        heapq.heappush(self._heap, entry)
        self._compact()
        self._arm(loop)

    def discard(self, ws: web.WebSocketResponse) -> None:
        """Forget `ws`'s deadline, if it has one."""
        entry = self._when.pop(ws, None)
        if entry is not None:
            del self._sockets[entry[1]]
            self._compact()

    def clear(self) -> None:
        """Forget every deadline and stop the timer."""
        self._when.clear()
        self._sockets.clear()
        self._heap.clear()
        if self._timer is not None:
            self._timer.cancel()
        self._timer, self._timer_at = None, math.inf

    def _stale(self, entry: tuple[float, int]) -> bool:
        return entry[1] not in self._sockets

    def _compact(self) -> None:
        if len(self._heap) > 2 * len(self._when) + COMPACT_SLACK:
            self._heap = [entry for entry in self._heap if not self._stale(entry)]
            heapq.heapify(self._heap)

    def _arm(self, loop: asyncio.AbstractEventLoop) -> None:
        heap = self._heap
        while heap and self._stale(heap[0]):
            heapq.heappop(heap)
        if not heap:
            return  # a timer still armed finds nothing due and stops
        earliest = heap[0][0]
        if self._timer is not None:
            if self._timer_at <= earliest:
                return
            self._timer.cancel()
        self._timer, self._timer_at = loop.call_at(earliest, self._fire, loop), earliest

    def _fire(self, loop: asyncio.AbstractEventLoop) -> None:
        self._timer, self._timer_at = None, math.inf
        now = loop.time()
        heap, due = self._heap, []
        while heap and heap[0][0] <= now:
            _, n = heapq.heappop(heap)
            ws = self._sockets.pop(n, None)
            if ws is not None:
                del self._when[ws]
                due.append(ws)
        self._arm(loop)
        if due:
            self._on_due(due)


class SocketExpiry:
    """When each registered socket must close: its session's expiry (renewed as later
    requests of the session show it was) or an earlier deadline set for it.

    `on_due` gets the sockets whose time has come, in one call per timer tick.
    """

    def __init__(self, on_due: Callable[[list[web.WebSocketResponse]], None]) -> None:
        self._on_due = on_due
        self._deadlines = Deadlines(self._due)
        # socket -> (its session id, the deadline set with `tighten`, or inf)
        self._sockets: dict[web.WebSocketResponse, tuple[Hashable, float]] = {}
        # session id -> the latest expiry seen for it (while it has expiring sockets)
        self._sessions: dict[Hashable, float] = {}
        self._noted = False  # whether `note` ever put a deadline on a request

    def __len__(self) -> int:
        return len(self._sockets)

    def watch(
        self, request: web.Request, session_ws_id: Hashable, wsr: web.WebSocketResponse
    ) -> bool:
        """Give the just-registered `wsr` its deadline; False if that has passed already.

        The deadline is the earlier of its session's expiry (`session_expiry`) and
        one set on `request` with `note` before the socket opened.
        """
        request[OPEN_SOCKET] = (weakref.ref(wsr), session_ws_id)  # the socket refers to the request
        session = request.get(aiohttp_session.SESSION_KEY)
        session_until = None if session is None else session_expiry(request, session)
        if session_until is None and not self._noted:  # the common case: no deadline
            return True
        # A lookup that misses costs an exception: none is made before any deadline was noted.
        fixed = request.get(SOCKET_DEADLINE, math.inf) if self._noted else math.inf
        if session_until is not None:
            known = self._sessions.get(session_ws_id, -math.inf)
            self._sessions[session_ws_id] = session_until = max(known, session_until)
        expires_at = min(fixed, math.inf if session_until is None else session_until)
        if expires_at == math.inf:
            return True
        if expires_at <= time.time():
            return False
        self._sockets[wsr] = (session_ws_id, fixed)
        self._deadlines.tighten(wsr, expires_at)
        return True

    def note(
        self, request: web.Request, expires_at: float
    ) -> tuple[web.WebSocketResponse | None, Hashable]:
        """Record a deadline on `request` (the earliest wins); return the socket it
        opened, if any, and that socket's session id."""
        self._noted = True
        current = request.get(SOCKET_DEADLINE)
        if current is None or expires_at < current:
            request[SOCKET_DEADLINE] = expires_at
        opened = request.get(OPEN_SOCKET)
        return (None, None) if opened is None else (opened[0](), opened[1])

    def tighten(
        self, wsr: web.WebSocketResponse, session_ws_id: Hashable, expires_at: float
    ) -> None:
        """Close the registered `wsr` at `expires_at` (seconds since the epoch) at the latest."""
        known = self._sockets.get(wsr)
        fixed = expires_at if known is None else min(known[1], expires_at)
        self._sockets[wsr] = (session_ws_id, fixed)
        self._deadlines.tighten(wsr, expires_at)

    def renewed(
        self, request: web.Request, session: aiohttp_session.Session, session_ws_id: Hashable
    ) -> None:
        """A request loaded session `session_ws_id`: if it expires later than known, note it.

        Only the `created` time the session was loaded with counts (the client holds
        that cookie or record); a due socket of the session then gets the later time.
        """
        known = self._sessions.get(session_ws_id)
        if known is None:  # the common case: no expiring socket in this session
            return
        until = session_expiry(request, session)
        if until is not None and until > known:
            self._sessions[session_ws_id] = until

    def forget(self, wsr: web.WebSocketResponse, session_ws_id: Hashable, *, last: bool) -> None:
        """`wsr` was unregistered (`last`: its session has no socket left here)."""
        if self._sockets.pop(wsr, None) is not None:
            self._deadlines.discard(wsr)
            if last:
                self._sessions.pop(session_ws_id, None)

    def clear(self) -> None:
        """Forget every socket and stop the timer (on shutdown)."""
        self._deadlines.clear()
        self._sockets.clear()
        self._sessions.clear()

    def _due(self, sockets: list[web.WebSocketResponse]) -> None:
        now = time.time()
        due = []
        for wsr in sockets:
            session_ws_id, fixed = self._sockets.get(wsr, (None, now))
            until = min(fixed, self._sessions.get(session_ws_id, math.inf))
            if until > now:  # the session was renewed meanwhile
                self._deadlines.tighten(wsr, until)
            else:
                due.append(wsr)
        if due:
            self._on_due(due)
