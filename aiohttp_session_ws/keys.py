"""Keys under which the library stores its state on apps and requests."""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from aiohttp import web

LEGACY_REGISTRY_KEY: Final = "aiohttp_session_ws_registry"
"""The 1.1.1 string key; `setup` fills it too so old code keeps working."""

if TYPE_CHECKING or hasattr(web, "RequestKey"):
    ID_CHANGED: Final = web.RequestKey("aiohttp_session_ws_id_changed", bool)
else:  # aiohttp < 3.12 has no RequestKey
    ID_CHANGED: Final = "aiohttp_session_ws_id_changed"
"""Set on a request whose websocket id changed, so `session_ws` saves the session."""
