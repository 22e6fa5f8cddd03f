"""Tie websockets to the aiohttp_session session, and close them when it changes."""

from .app import REGISTRY_KEY, get_registry, setup
from .client import CLIENT_PATH, add_client_route
from .codes import (
    SESSION_ENDED_CODE,
    SESSION_ENDED_REASON,
    SESSION_EXPIRED_REASON,
    SHUTDOWN_CODE,
    SHUTDOWN_REASON,
    TRY_AGAIN_LATER_CODE,
    TRY_AGAIN_LATER_REASON,
)
from .context import session_ws
from .helpers import (
    delete_session_ws_id,
    ensure_session_ws_id,
    get_session_ws_id,
    new_session_ws_id,
    schedule_close_all_session_ws,
    set_session_ws_deadline,
)
from .ids import DEFAULT_ID_FACTORY
from .lineage import LineageLookupError
from .middleware import session_ws_middleware
from .registry import DEFAULT_SESSION_KEY, RegistryStats, SessionWSRegistry

setup_session_ws = setup

__version__ = "2.0.0.dev0"

__all__ = [
    "CLIENT_PATH",
    "DEFAULT_ID_FACTORY",
    "DEFAULT_SESSION_KEY",
    "REGISTRY_KEY",
    "SESSION_ENDED_CODE",
    "SESSION_ENDED_REASON",
    "SESSION_EXPIRED_REASON",
    "SHUTDOWN_CODE",
    "SHUTDOWN_REASON",
    "TRY_AGAIN_LATER_CODE",
    "TRY_AGAIN_LATER_REASON",
    "LineageLookupError",
    "RegistryStats",
    "SessionWSRegistry",
    "add_client_route",
    "delete_session_ws_id",
    "ensure_session_ws_id",
    "get_registry",
    "get_session_ws_id",
    "new_session_ws_id",
    "schedule_close_all_session_ws",
    "session_ws",
    "session_ws_middleware",
    "set_session_ws_deadline",
    "setup",
    "setup_session_ws",
]
