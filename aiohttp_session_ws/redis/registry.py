"""`RedisSessionWSRegistry`: the core registry, with closes and revocations shared over Redis."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Hashable, Iterable
from contextlib import suppress
from functools import partial
from typing import TypeVar, overload

from aiohttp import web
from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import MaxConnectionsError

from ..codes import SESSION_ENDED_CODE, SESSION_ENDED_REASON
from ..ids import IdFactory, default_id_factory, fingerprint
from ..options import check_seconds
from ..registry import DEFAULT_SESSION_KEY, RegistryStats, SessionWSRegistry, key_revocation
from . import wire
from .health import Backoff, Health, RateLimitedLog, logger
from .result import ClusterCloseResult, ClusterPublishError

T = TypeVar("T")

DEFAULT_CHANNEL = "aiohttp_session_ws"
RECONCILE_BATCH = 500
"""Session ids checked per Redis round trip when reconciling after a re-subscription."""


class RedisRegistryStats(RegistryStats):
    """`RegistryStats` plus the cluster's counters (no ids, no identities)."""

    redis_up: bool
    subscribed: bool
    publish_failures: int
    remote_closes: int
    ignored_messages: int
    resubscribes: int


class _Acks:
    """Answers collected for one close request."""

    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.closed: dict[str, int] = {}
        self.done = asyncio.Event()
        if expected <= 0:
            self.done.set()

    def add(self, node: str, closed: int) -> None:
        self.closed.setdefault(node, closed)
        if len(self.closed) >= self.expected:
            self.done.set()


class RedisSessionWSRegistry(SessionWSRegistry):
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
        reconnect_cap: float = 10.0,
        redis_timeout: float = 1.0,
        start_timeout: float = 5.0,
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
        super().__init__(
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
        if not isinstance(redis, Redis):
            raise TypeError(
                f"RedisSessionWSRegistry needs a redis.asyncio.Redis client, got "
                f"{type(redis).__name__}; e.g. redis.asyncio.Redis.from_url('redis://host:6379/0')"
            )
        if not isinstance(channel, str) or not channel:
            raise ValueError("channel must be a non-empty str, e.g. 'aiohttp_session_ws'")
        for name, value in (
            ("heartbeat_interval", heartbeat_interval),
            ("redis_timeout", redis_timeout),
            ("start_timeout", start_timeout),
        ):
            check_seconds(name, value)
        ttl = 3 * heartbeat_interval
        if heartbeat_ttl is not None:
            ttl = check_seconds("heartbeat_ttl", heartbeat_ttl)
        if ttl <= heartbeat_interval:
            raise ValueError("heartbeat_ttl must be longer than heartbeat_interval (e.g. 3x)")
        if node_id is not None and (
            not isinstance(node_id, str) or not 0 < len(node_id) <= wire.MAX_NAME
        ):
            raise ValueError(
                f"node_id must be a non-empty str of at most {wire.MAX_NAME} characters, "
                "unique per process (or leave it out for a random one)"
            )
        Backoff(reconnect_base, reconnect_cap)  # validates the delays
        self.redis = redis
        self.channel = channel
        self.node_id = node_id or uuid.uuid4().hex[:12]
        self.heartbeat_interval = heartbeat_interval
        self.heartbeat_ttl = ttl
        self.reconnect_base = reconnect_base
        self.reconnect_cap = reconnect_cap
        self.redis_timeout = redis_timeout
        self.start_timeout = start_timeout
        self._health = Health(self.node_id)
        self._slots = asyncio.Semaphore(call_slots(redis))
        self._bad_messages = RateLimitedLog()
        self._publish_errors = RateLimitedLog()
        self._listener: asyncio.Task[None] | None = None
        self._beat: asyncio.Task[None] | None = None
        self._pubsub: PubSub | None = None
        self._stopping = False
        self._wake = asyncio.Event()
        self._announced = asyncio.Event()
        self._subscribed = False
        self._acks: dict[str, _Acks] = {}
        self._publish_failures = 0
        self._remote_closes = 0
        self._ignored = 0
        self._resubscribes = 0

    # -- Redis names -----------------------------------------------------------

    @property
    def ack_channel(self) -> str:
        """Where other nodes send this node their acknowledgements."""
        return self._ack_channel_of(self.node_id)

    def _ack_channel_of(self, node: str) -> str:
        return f"{self.channel}:ack:{node}"

    def _revoked_key(self, target: wire.JSONTarget) -> str:
        return f"{self.channel}:revoked:{wire.digest(target)}"

    @property
    def _nodes_key(self) -> str:
        return f"{self.channel}:nodes"

    def _node_key(self, node: str) -> str:
        return f"{self.channel}:node:{node}"

    # -- ids and keys must travel as JSON --------------------------------------

    async def generate_id(self, request: web.Request) -> Hashable:
        """Make a new id, refusing one that cannot be sent to other nodes."""
        session_ws_id = await super().generate_id(request)
        wire.to_json_target(session_ws_id, "id")
        return session_ws_id

    async def keys_for(self, request: web.Request) -> tuple[Hashable, ...]:
        """The extra index keys for a socket, refusing ones that cannot be sent."""
        keys = await super().keys_for(request)
        for key in keys:
            wire.to_json_target(key, "key")
        return keys

    # -- revocation ------------------------------------------------------------

    async def revoke(self, session_ws_id: Hashable) -> None:
        """Revoke locally, and in Redis (with the TTL) when Redis is reachable."""
        self.revoked.add(session_ws_id)
        target = _target_or_none(session_ws_id)
        if target is None or not self._health.up:
            return
        with suppress(Exception):  # recorded by _timed; the close will report it
            await self._timed(lambda: self._set_revoked([target]), "revoking an id")

    async def is_revoked(self, session_ws_id: Hashable) -> bool:
        """Check this node's memory, then Redis (skipped while Redis is down)."""
        if session_ws_id in self.revoked:
            return True
        target = _target_or_none(session_ws_id)
        if target is None or not self._health.up:
            return False
        try:
            found = await self._timed(
                lambda: self.redis.exists(self._revoked_key(target)), "checking a revocation"
            )
        except Exception:
            return False
        if found:
            self.revoked.add(session_ws_id)
            return True
        return False

    async def _set_revoked(self, targets: list[wire.JSONTarget]) -> None:
        ttl_ms = max(1, int(self.revoked.ttl * 1000))
        async with self.redis.pipeline(transaction=False) as pipe:
            for target in targets:
                pipe.set(self._revoked_key(target), b"1", px=ttl_ms)
            await pipe.execute()

    async def _are_revoked(self, targets: list[wire.JSONTarget]) -> list[object]:
        """One round trip: whether each target is revoked in Redis (truthy if so)."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for target in targets:
                pipe.exists(self._revoked_key(target))
            result: list[object] = await pipe.execute()
            return result

    # -- closing ---------------------------------------------------------------

    @overload
    async def close_all_session(self, session_ws_id: Hashable) -> int: ...
    @overload
    async def close_all_session(
        self, session_ws_id: Hashable, *, wait: float
    ) -> ClusterCloseResult: ...
    @overload
    async def close_all_session(
        self, session_ws_id: Hashable, *, wait: float | None
    ) -> int | ClusterCloseResult: ...

    async def close_all_session(
        self, session_ws_id: Hashable, *, wait: float | None = None
    ) -> int | ClusterCloseResult:
        """Revoke `session_ws_id` everywhere and close its sockets on every node.

        Without `wait`, returns how many sockets this node closed (an int, as in
        the core). With `wait=seconds`, waits up to that long for the other
        nodes and returns a `ClusterCloseResult`. Raises `ClusterPublishError`
        (after closing the local sockets) if Redis could not be reached, and
        `TypeError` (before doing anything) for an id that is not JSON-encodable.
        """
        _check_wait(wait)
        target = wire.to_json_target(session_ws_id, "id")
        self.revoked.add(session_ws_id)
        result = await self._broadcast(
            "session", target, [target], lambda: self.close_local_session(session_ws_id), wait
        )
        return result if wait is not None else result.local

    @overload
    async def close_all_key(self, key: Hashable) -> int: ...
    @overload
    async def close_all_key(self, key: Hashable, *, wait: float) -> ClusterCloseResult: ...
    @overload
    async def close_all_key(
        self, key: Hashable, *, wait: float | None
    ) -> int | ClusterCloseResult: ...

    async def close_all_key(
        self, key: Hashable, *, wait: float | None = None
    ) -> int | ClusterCloseResult:
        """Close the sockets under an index key (e.g. ``("identity", "alice")``) on every node.

        Each node revokes, in Redis and locally, the key within the sessions of
        the sockets it closes before closing them, so those sessions are
        refused on any node while they still carry the key (see the core's
        `close_local_key`). Returns and raises as `close_all_session` does.
        """
        _check_wait(wait)
        target = wire.to_json_target(key, "key")
        revoke = self._revocable_ids_under(key)
        result = await self._broadcast(
            "key", target, revoke, lambda: self.close_local_key(key), wait
        )
        return result if wait is not None else result.local

    async def schedule_close_all_session(
        self, request: web.Request, response: web.StreamResponse
    ) -> None:
        """As in the core; a close that Redis could not carry is logged, not lost silently."""
        session_ws_id = await self.get_id(request)
        if session_ws_id is None:
            return
        await self.revoke(session_ws_id)
        self.after_response(request, response, lambda: self._close_reporting(session_ws_id))

    async def _close_reporting(self, session_ws_id: Hashable) -> None:
        try:
            await self.close_all_session(session_ws_id)
        except ClusterPublishError as exc:
            self._publish_errors.warning(
                "node %s: the scheduled close of session %s reached this node only: %s",
                self.node_id,
                fingerprint(session_ws_id),
                exc,
            )
        except TypeError:
            await self.close_local_session(session_ws_id)
            raise

    async def _broadcast(
        self,
        scope: wire.Scope,
        target: wire.JSONTarget,
        revoke: list[wire.JSONTarget],
        close_local: Callable[[], Awaitable[int]],
        wait: float | None,
    ) -> ClusterCloseResult:
        """Revoke in Redis and publish (bounded by `redis_timeout`), then close locally.

        Redis first, so that no socket sees its close frame before its id is
        revoked everywhere; if Redis is known to be down, the local close goes
        first so it never waits for a timeout.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + (wait or 0.0)
        local = None if self._health.up else await close_local()
        request = uuid.uuid4().hex if wait is not None else None
        acks: _Acks | None = None
        error: Exception | None = None
        try:
            try:
                if request is not None:
                    peers = await self._timed(self._live_nodes, "counting live nodes")
                    peers.discard(self.node_id)
                    acks = self._acks[request] = _Acks(len(peers))
                await self._timed(
                    lambda: self._publish(scope, target, revoke, request), "publishing a close"
                )
            except Exception as exc:
                error = exc
                self._publish_failures += 1
            if local is None:
                local = await close_local()
            if error is not None:
                raise ClusterPublishError(
                    f"could not publish the close to Redis ({type(error).__name__}: {error}); "
                    f"closed {local} socket(s) on this node, other nodes were not told",
                    local,
                ) from error
            if acks is None:
                return ClusterCloseResult(local, local, 1, 1)
            remaining = deadline - loop.time()
            if remaining > 0:
                with suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(acks.done.wait(), remaining)
            return ClusterCloseResult(
                closed=local + sum(acks.closed.values()),
                local=local,
                nodes_answered=1 + len(acks.closed),
                nodes_expected=1 + acks.expected,
            )
        finally:
            if request is not None:
                self._acks.pop(request, None)

    async def _publish(
        self,
        scope: wire.Scope,
        target: wire.JSONTarget,
        revoke: list[wire.JSONTarget],
        request: str | None,
    ) -> None:
        """One round trip: SET each revocation with its TTL, then PUBLISH, in that order."""
        ttl_ms = max(1, int(self.revoked.ttl * 1000))
        async with self.redis.pipeline(transaction=False) as pipe:
            for item in revoke:
                pipe.set(self._revoked_key(item), b"1", px=ttl_ms)
            pipe.publish(self.channel, wire.encode_close(scope, target, self.node_id, request))
            await pipe.execute()

    def _revocable_ids_under(self, key: Hashable) -> list[wire.JSONTarget]:
        """The (session, key) revocations a close of `key` makes here (see the core)."""
        entries = {
            key_revocation(self._socket_keys[ws][0], key)
            for ws in self.sockets_for_key(key)
            if ws in self._socket_keys
        }
        return [t for t in map(_target_or_none, entries) if t is not None]

    # -- the other nodes' closes -----------------------------------------------

    def _on_message(self, channel: str, data: object) -> None:
        try:
            message = wire.decode(data)
            if isinstance(message, wire.AckMessage):
                if channel != self.ack_channel:
                    raise wire.MessageError("an ack outside this node's ack channel")
                acks = self._acks.get(message.request)
                if acks is not None:  # else: a late answer, after the deadline
                    acks.add(message.node, message.closed)
                return
            if channel != self.channel:
                raise wire.MessageError("a close outside the channel")
        except wire.MessageError as exc:
            self._ignored += 1
            self._bad_messages.warning(
                "node %s: ignored a message on %s: %s", self.node_id, channel, exc
            )
            return
        if message.origin != self.node_id:  # the publisher closed its own sockets already
            self.spawn(self._apply(message))

    async def _apply(self, message: wire.CloseMessage) -> None:
        self._remote_closes += 1
        if message.scope == "session":
            self.revoked.add(message.target)
            closed = await self.close_local_session(message.target)
        else:
            revoke = self._revocable_ids_under(message.target)
            if revoke and self._health.up:
                with suppress(Exception):  # recorded; the local revocation still applies
                    await self._timed(lambda: self._set_revoked(revoke), "revoking ids")
            closed = await self.close_local_key(message.target)
        logger.debug(
            "node %s: closed %d socket(s) for %s %s from node %s",
            self.node_id,
            closed,
            message.scope,
            fingerprint(message.target),
            message.origin,
        )
        if message.request is not None:
            ack = wire.encode_ack(message.request, self.node_id, closed)
            with suppress(Exception):
                await self._timed(
                    lambda: self.redis.publish(self._ack_channel_of(message.origin), ack),
                    "acknowledging a close",
                )

    # -- background work -------------------------------------------------------

    async def start(self) -> None:
        """Subscribe and start the heartbeat; wait (up to `start_timeout`) to be announced."""
        await super().start()
        if self._listener is not None:
            return
        self._stopping = False
        self._listener = asyncio.create_task(
            self._listen(), name=f"aiohttp_session_ws.redis listener {self.node_id}"
        )
        self._beat = asyncio.create_task(
            self._heartbeat(), name=f"aiohttp_session_ws.redis heartbeat {self.node_id}"
        )
        try:
            await asyncio.wait_for(self._announced.wait(), self.start_timeout)
        except asyncio.TimeoutError:
            logger.warning(
                "node %s: not subscribed to Redis after %.1fs; serving anyway, cluster "
                "closes start once Redis answers",
                self.node_id,
                self.start_timeout,
            )

    async def stop(self) -> None:
        """Stop the subscription and heartbeat, leave the cluster, finish pending work."""
        tasks = [task for task in (self._listener, self._beat) if task is not None]
        self._listener = self._beat = None
        self._stopping = True
        await self._end(tasks)
        self._subscribed = False
        self._announced.clear()
        for acks in self._acks.values():
            acks.done.set()
        if self._health.up:
            with suppress(Exception):
                await self._timed(self._retire, "leaving the cluster")
        pending = set(self._tasks)
        if pending:
            _, late = await asyncio.wait(pending, timeout=self.close_timeout)
            for task in late:
                task.cancel()
            if late:
                await asyncio.wait(late)
        await super().stop()

    async def _end(self, tasks: list[asyncio.Task[None]]) -> None:
        """Cancel the background tasks and wait for them, boundedly.

        redis-py can lose a cancellation while its pub/sub connection reconnects
        (right after a Redis restart it surfaced as an ordinary error, so the
        listener looped on and `stop`, and with it the app's cleanup, waited
        forever); the loops therefore also check `_stopping`. A task still
        running after `redis_timeout` has its connection dropped, which ends its
        read; one that survives even that is abandoned with a warning.
        """
        for task in tasks:
            task.cancel()
        _, pending = await asyncio.wait(tasks, timeout=self.redis_timeout) if tasks else ((), ())
        if not pending:
            return
        pubsub = self._pubsub
        if pubsub is not None and pubsub.connection is not None:
            with suppress(Exception):
                await asyncio.wait_for(pubsub.connection.disconnect(), self.redis_timeout)
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=self.redis_timeout)
        if pending:
            logger.warning(
                "node %s: %d Redis task(s) did not stop within %.1fs; abandoned",
                self.node_id,
                len(pending),
                2 * self.redis_timeout,
            )

    async def _listen(self) -> None:
        """Subscribe, dispatch messages, and re-subscribe with backoff; never raises."""
        backoff = Backoff(self.reconnect_base, self.reconnect_cap)
        while not self._stopping:
            pubsub = self._pubsub = self.redis.pubsub()
            try:
                await pubsub.subscribe(self.channel, self.ack_channel)
                async for message in pubsub.listen():
                    kind = _text(message.get("type"))
                    if kind == "subscribe" and _count(message.get("data")) >= 2:
                        self._on_subscribed()
                        backoff.reset()
                    elif kind == "message":
                        self._dispatch(_text(message.get("channel")), message.get("data"))
                raise ConnectionError("the subscription ended")
            except Exception as exc:
                self._subscribed = False
                self._health.failed(exc, "listening on the channel")
            finally:
                self._pubsub = None
                with suppress(Exception):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]
            if not self._stopping:
                await asyncio.sleep(backoff.next())

    def _dispatch(self, channel: str, data: object) -> None:
        try:
            self._on_message(channel, data)
        except Exception:  # a bug in handling one message must not end the listener
            self._ignored += 1
            logger.exception("node %s: error while handling a message", self.node_id)

    def _on_subscribed(self) -> None:
        if self._announced.is_set() or self._resubscribes or self._health.outages:
            self._resubscribes += 1
            self.spawn(self._reconcile())
        self._subscribed = True
        self._health.succeeded()
        self._wake.set()  # announce ourselves at once

    async def _reconcile(self) -> None:
        """After a re-subscription, close the local sessions revoked in Redis meanwhile.

        Pub/sub keeps nothing for a node whose subscription was down, but every
        session close writes its revocation to Redis before publishing, so the
        closes this node missed can be found there. Per-key closes are not
        recovered this way (their revocations are written per node).
        """
        entries = [
            (session_ws_id, target)
            for session_ws_id in list(self._sessions)
            if (target := _target_or_none(session_ws_id)) is not None
        ]
        found: list[object] = []
        for start in range(0, len(entries), RECONCILE_BATCH):
            batch = [target for _, target in entries[start : start + RECONCILE_BATCH]]
            try:
                found += await self._timed(
                    partial(self._are_revoked, batch), "reconciling revocations"
                )
            except Exception:
                return  # recorded by _timed; the next re-subscription tries again
        missed = [sid for (sid, _), hit in zip(entries, found, strict=True) if hit]
        for session_ws_id in missed:
            self.revoked.add(session_ws_id)
        sockets = [ws for sid in missed for ws in self._sessions.get(sid, ())]
        closed = await self._close(sockets, self.close_code, self.close_message, "session_ended")
        if missed:
            logger.info(
                "node %s: closed %d socket(s) of %d session(s) revoked while unsubscribed",
                self.node_id,
                closed,
                len(missed),
            )

    async def _heartbeat(self) -> None:
        """Announce this node while it is subscribed, so callers know whom to wait for."""
        while not self._stopping:
            self._wake.clear()
            if self._subscribed:
                try:
                    await self._timed(self._announce, "sending the heartbeat")
                except Exception:
                    pass  # recorded by _timed
                else:
                    self._announced.set()
            with suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.heartbeat_interval)

    async def _announce(self) -> None:
        ttl_ms = max(1, int(self.heartbeat_ttl * 1000))
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.set(self._node_key(self.node_id), b"1", px=ttl_ms)
            pipe.sadd(self._nodes_key, self.node_id)
            await pipe.execute()

    async def _retire(self) -> None:
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.delete(self._node_key(self.node_id))
            pipe.srem(self._nodes_key, self.node_id)
            await pipe.execute()

    async def _live_nodes(self) -> set[str]:
        """Nodes whose heartbeat key has not expired; forgets the expired ones."""
        members = sorted(_text(m) for m in await self.redis.smembers(self._nodes_key))
        if not members:
            return set()
        values = await self.redis.mget([self._node_key(m) for m in members])
        dead = [m for m, value in zip(members, values, strict=True) if value is None]
        if dead:
            await self.redis.srem(self._nodes_key, *dead)
        return {m for m, value in zip(members, values, strict=True) if value is not None}

    async def _timed(self, call: Callable[[], Awaitable[T]], doing: str) -> T:
        """Run a Redis call bounded by `redis_timeout`, recording health either way.

        A connection error is retried once at once: pooled connections opened
        before a Redis restart fail on first use (and redis-py does not retry
        pipelines). Every call here is idempotent, a repeated close included.

        At most `call_slots` calls run at once, so a burst of connects queues
        here instead of exhausting the client's pool. A pool exhausted anyway
        (the app shares the client) is a busy client, not an outage: the call
        waits for a free connection, within `redis_timeout`.
        """

        async def attempt() -> T:
            retried = False
            async with self._slots:
                while True:
                    try:
                        return await call()
                    except RedisConnectionError as exc:
                        if pool_exhausted(exc):
                            await asyncio.sleep(POOL_BUSY_DELAY)
                        elif retried:
                            raise
                        else:
                            retried = True

        try:
            result = await asyncio.wait_for(attempt(), self.redis_timeout)
        except Exception as exc:
            self._health.failed(exc, doing)
            raise
        self._health.succeeded()
        return result

    # -- metrics ---------------------------------------------------------------

    def stats(self) -> RedisRegistryStats:
        """The core counts plus Redis state, publish failures and messages handled."""
        return RedisRegistryStats(
            **super().stats(),
            redis_up=self._health.up,
            subscribed=self._subscribed,
            publish_failures=self._publish_failures,
            remote_closes=self._remote_closes,
            ignored_messages=self._ignored,
            resubscribes=self._resubscribes,
        )


POOL_BUSY_DELAY = 0.002
"""Seconds between attempts to get a connection from an exhausted client pool."""


def call_slots(redis: Redis) -> int:
    """How many Redis calls one registry runs at once.

    Half of the client's pool, less the pub/sub connection, at most 64: the rest
    stays free for the app's own use of the client (e.g. `RedisStorage`).
    """
    size = getattr(redis.connection_pool, "max_connections", None)
    if not isinstance(size, int) or size <= 0:
        return 32
    return max(1, min(64, (size - 1) // 2))


def pool_exhausted(exc: Exception) -> bool:
    """True for redis-py's "no free connection in the pool" (not a Redis failure).

    redis-py 5.0 raises a plain ConnectionError with this message; later
    versions raise its subclass MaxConnectionsError.
    """
    return isinstance(exc, MaxConnectionsError) or str(exc) == "Too many connections"


def _check_wait(wait: float | None) -> None:
    if wait is not None and (isinstance(wait, bool) or not wait > 0):
        raise ValueError(f"wait must be a positive number of seconds or None, got {wait!r}")


def _target_or_none(value: Hashable) -> wire.JSONTarget | None:
    try:
        return wire.to_json_target(value)
    except TypeError:
        return None


def _text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def _count(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0
