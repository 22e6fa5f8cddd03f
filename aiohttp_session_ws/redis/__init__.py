"""Cluster support: `RedisSessionWSRegistry` shares closes and revocations over Redis.

Needs the ``redis`` extra (``pip install 'aiohttp-session-ws[redis]'``).
"""

try:
    import redis.asyncio  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised in a subprocess
    raise ImportError(
        "aiohttp_session_ws.redis needs redis-py >= 5.0.1 (the 'redis' extra of "
        "aiohttp-session-ws): pip install 'redis>=5.0.1'"
    ) from exc

from .registry import DEFAULT_CHANNEL, RedisRegistryStats, RedisSessionWSRegistry
from .result import ClusterCloseResult, ClusterPublishError

__all__ = [
    "DEFAULT_CHANNEL",
    "ClusterCloseResult",
    "ClusterPublishError",
    "RedisRegistryStats",
    "RedisSessionWSRegistry",
]
