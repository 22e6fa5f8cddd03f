"""aiohttp_security integration: `remember`/`forget` also end the session's websockets.

Needs the "security" extra (aiohttp-security). Importing this package makes
every registry index sockets by the connecting user's authorized id, on apps
where aiohttp_security is set up.
"""

try:
    import aiohttp_security  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised in a subprocess
    raise ImportError(
        "aiohttp_session_ws.security needs aiohttp-security: "
        "pip install 'aiohttp-session-ws[security]'"
    ) from exc

from ..registry import add_global_key_provider
from .api import forget, remember, setup
from .generations import (
    GenerationStoreError,
    MemoryGenerations,
    RedisGenerations,
    UserGenerations,
)
from .identity import (
    close_all_identity_ws,
    identity_key,
    identity_keys,
    schedule_close_all_identity_ws,
)
from .policy import SessionWSIdentityPolicy

add_global_key_provider(identity_keys)

__all__ = [
    "GenerationStoreError",
    "MemoryGenerations",
    "RedisGenerations",
    "SessionWSIdentityPolicy",
    "UserGenerations",
    "close_all_identity_ws",
    "forget",
    "identity_key",
    "identity_keys",
    "remember",
    "schedule_close_all_identity_ws",
    "setup",
]
