"""Keys under which the library stores its state on apps and requests."""

from __future__ import annotations

import weakref
from collections.abc import Hashable
from typing import TYPE_CHECKING, Final

import aiohttp_session
from aiohttp import web

LEGACY_REGISTRY_KEY: Final = "aiohttp_session_ws_registry"
"""The 1.1.1 string key; `setup` fills it too so old code keeps working."""

if TYPE_CHECKING or hasattr(web, "RequestKey"):
    ID_CHANGED: Final = web.RequestKey("aiohttp_session_ws_id_changed", bool)
    LOADED_CREATED: Final[web.RequestKey[tuple[aiohttp_session.Session, int]]] = web.RequestKey(
        "aiohttp_session_ws_loaded_created"
    )
    SOCKET_DEADLINE: Final = web.RequestKey("aiohttp_session_ws_deadline", float)
    OPEN_SOCKET: Final[web.RequestKey[tuple[weakref.ref[web.WebSocketResponse], Hashable]]] = (
        web.RequestKey("aiohttp_session_ws_socket")
    )
else:  # aiohttp < 3.12 has no RequestKey
    ID_CHANGED: Final = "aiohttp_session_ws_id_changed"
    LOADED_CREATED: Final = "aiohttp_session_ws_loaded_created"
    SOCKET_DEADLINE: Final = "aiohttp_session_ws_deadline"
    OPEN_SOCKET: Final = "aiohttp_session_ws_socket"
"""ID_CHANGED: set on a request whose websocket id changed, so `session_ws` saves the
session. LOADED_CREATED: the session as first loaded and its `created` time.
SOCKET_DEADLINE: the earliest deadline set with `set_deadline` (seconds since the
epoch). OPEN_SOCKET: a weak reference to the socket `session_ws` registered for the
request (the socket refers to its request: a strong one would make a reference cycle,
freed only by the cyclic GC), and its websocket id."""
