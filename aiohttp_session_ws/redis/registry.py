"""`RedisSessionWSRegistry`: the core registry, with closes and revocations shared over Redis."""

from __future__ import annotations

from collections.abc import Iterable

from redis.asyncio import Redis

from ..codes import SESSION_ENDED_CODE, SESSION_ENDED_REASON
from ..ids import IdFactory, default_id_factory
from ..registry import DEFAULT_SESSION_KEY
from .cluster import RECONCILE_BATCH, ClusterRegistryStats, ClusterSessionWSRegistry
from .redis_transport import POOL_BUSY_DELAY, RedisTransport, call_slots, pool_exhausted

__all__ = [
    "DEFAULT_CHANNEL",
    "POOL_BUSY_DELAY",
    "RECONCILE_BATCH",
    "RedisRegistryStats",
    "RedisSessionWSRegistry",
    "call_slots",
    "pool_exhausted",
]

DEFAULT_CHANNEL = "aiohttp_session_ws"

RedisRegistryStats = ClusterRegistryStats
"""`RegistryStats` plus the cluster's counters (no ids, no identities)."""


class RedisSessionWSRegistry(ClusterSessionWSRegistry):
    """A `SessionWSRegistry` whose closes reach every node sharing one Redis.

    - `close_all_session(id)` and `close_all_key(key)` (and scheduled closes)
      write the ids to revoke to Redis with a TTL, publish the close on `channel`,
      and close this node's sockets; every other node closes its own on receipt.
      Pass `wait=seconds` to get a `ClusterCloseResult` counting the sockets
      closed on every node that answered before the deadline.
    - `is_revoked` checks this node's memory, then Redis, so a revoked id is
      refused on any node.
    - If Redis goes away, local closes keep working, the outage is logged once,
      a close that cannot be published raises `ClusterPublishError` (after the
      local close), and the node re-subscribes with capped, jittered backoff.

    The subscription and the heartbeat run between `start()` and `stop()`,
    which `aiohttp_session_ws.setup` ties to the app. The Redis client belongs
    to the caller: close it after the app's cleanup.
    """

    def __init__(
        self,
        redis: Redis,
        *,
        channel: str = DEFAULT_CHANNEL,
        node_id: str | None = None,
        heartbeat_interval: float = 5.0,
        heartbeat_ttl: float | None = None,
        reconnect_base: float = 0.1,
        reconnect_cap: float = 2.0,
        redis_timeout: float = 1.0,
        start_timeout: float = 5.0,
        ping_interval: float = 1.0,
        outbox_size: int = 10_000,
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
        if not isinstance(redis, Redis):
            raise TypeError(
                f"RedisSessionWSRegistry needs a redis.asyncio.Redis client, got "
                f"{type(redis).__name__}; e.g. redis.asyncio.Redis.from_url('redis://host:6379/0')"
            )
        if not isinstance(channel, str) or not channel:
            raise ValueError("channel must be a non-empty str, e.g. 'aiohttp_session_ws'")
        transport = RedisTransport(redis, channel)
        super().__init__(
            transport,
            node_id=node_id,
            heartbeat_interval=heartbeat_interval,
            heartbeat_ttl=heartbeat_ttl,
            reconnect_base=reconnect_base,
            reconnect_cap=reconnect_cap,
            redis_timeout=redis_timeout,
            start_timeout=start_timeout,
            ping_interval=ping_interval,
            outbox_size=outbox_size,
            id_factory=id_factory,
            session_key=session_key,
            close_code=close_code,
            close_message=close_message,
            close_timeout=close_timeout,
            revocation_ttl=revocation_ttl,
            revocation_max_size=revocation_max_size,
            allowed_origins=allowed_origins,
            allow_missing_origin=allow_missing_origin,
        )
        self.redis = redis
        self.channel = channel
        self._redis_transport = transport
        self.reconcile_batch = RECONCILE_BATCH  # read here, so tests can lower it

    @property
    def ack_channel(self) -> str:
        """Where other nodes send this node their acknowledgements."""
        return self._redis_transport.ack_channel(self.node_id)
