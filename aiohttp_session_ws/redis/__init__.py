"""Cluster support: `RedisSessionWSRegistry` shares closes and revocations over Redis.

Needs the ``redis`` extra (``pip install 'aiohttp-session-ws[redis]'``).
"""

from .registry import DEFAULT_CHANNEL, RedisRegistryStats, RedisSessionWSRegistry
from .result import ClusterCloseResult, ClusterPublishError

__all__ = [
    "DEFAULT_CHANNEL",
    "ClusterCloseResult",
    "ClusterPublishError",
    "RedisRegistryStats",
    "RedisSessionWSRegistry",
]
