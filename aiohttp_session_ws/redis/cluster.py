"""`ClusterSessionWSRegistry`: the core registry plus closes shared through a broker.

It composes small parts, each with one job, around a `Transport` (the broker):

- `SharedRevocations` (revocations.py): revoked ids as expiring marks in the broker;
- close kinds (kinds.py): what a session or key close writes, does and reconciles;
- `Listener` (listener.py): the subscription, checked for liveness with pings and
  re-made with backoff;
- `Membership` (membership.py): heartbeats announcing this node while it listens;
- `Publisher` (publisher.py) with `AckBook` (acks.py): this node's closes, and the
  answers to those that wait for them;
- `Outbox` (outbox.py): what this node could not send, kept in order;
- `Recovery` (recovery.py): after every recovery, the outbox sent, then every
  kind reconciled;
- `BoundedCalls` and `Health` (calls.py, health.py): every broker call bounded by
  `redis_timeout`, outages logged once.

`RedisSessionWSRegistry` is this class over `RedisTransport`; another broker needs
only another `Transport`.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Hashable, Iterable
from contextlib import suppress
from typing import overload

from aiohttp import web

from ..close_sequence import CloseMark
from ..codes import SESSION_ENDED_CODE, SESSION_ENDED_REASON
from ..ids import IdFactory, default_id_factory, fingerprint
from ..lineage import LineageLookupError, Record
from ..logs import error_trace
from ..options import check_seconds
from ..registry import (
    DEFAULT_SESSION_KEY,
    RegistryStats,
    SessionWSRegistry,
    SocketKeys,
    key_revocation,
)
from . import wire
from .calls import BoundedCalls
from .health import Backoff, Health, RateLimitedLog, logger
from .kinds import CloseKind, KeyCloses, SessionCloses
from .lineage import SharedLineage
from .listener import Listener
from .membership import Membership
from .outbox import Outbox
from .publisher import Publisher
from .recovery import Recovery
from .result import ClusterCloseResult, ClusterPublishError
from .revocations import SharedRevocations, target_or_none
from .sequence import ClusterCloseMark, SharedCloseSequence, number, shared_part
from .transport import CLOSE_COUNTER, Delivery, Transport

RECONCILE_BATCH = 500
"""Session ids checked per broker round trip when reconciling."""


class ClusterRegistryStats(RegistryStats):
    """`RegistryStats` plus the cluster's counters (no ids, no identities)."""

    redis_up: bool
    subscribed: bool
    publish_failures: int
    remote_closes: int
    ignored_messages: int
    resubscribes: int
    liveness_failures: int
    outbox: int
    outbox_dropped: int
    outbox_sent: int
    recoveries: int


class ClusterSessionWSRegistry(SessionWSRegistry):
    """A `SessionWSRegistry` whose closes reach every node sharing one broker.

    See `RedisSessionWSRegistry` for the behaviour; this class holds it for any
    `Transport`. Options are those of `RedisSessionWSRegistry` but the client.
    """

    reconcile_batch = RECONCILE_BATCH

    def __init__(
        self,
        transport: Transport,
        *,
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
        for name, value in (
            ("heartbeat_interval", heartbeat_interval),
            ("redis_timeout", redis_timeout),
            ("start_timeout", start_timeout),
            ("ping_interval", ping_interval),
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
        self.transport = transport
        self.node_id = node_id or uuid.uuid4().hex[:12]
        self.heartbeat_interval = heartbeat_interval
        self.heartbeat_ttl = ttl
        self.reconnect_base = reconnect_base
        self.reconnect_cap = reconnect_cap
        self.redis_timeout = redis_timeout
        self.start_timeout = start_timeout
        self.ping_interval = ping_interval
        self._health = Health(self.node_id)
        self._calls = BoundedCalls(self._health, redis_timeout)
        self.shared = SharedRevocations(transport, self._calls, self.revoked.ttl)
        self.shared_sequence = SharedCloseSequence(transport, self._calls, self.revoked.ttl)
        self.shared_lineage = SharedLineage(transport, self._calls, self.revoked.ttl)
        self.kinds: dict[str, CloseKind] = {
            kind.scope: kind for kind in (SessionCloses(self), KeyCloses(self))
        }
        self._listener = Listener(
            transport,
            self.node_id,
            self._health,
            Backoff(reconnect_base, reconnect_cap),
            ping_interval,
            redis_timeout,
            self._on_subscribed,
            self._dispatch,
            self._on_lost,
        )
        self._membership = Membership(
            transport,
            self._calls,
            self.node_id,
            heartbeat_interval,
            ttl,
            live=lambda: self._listener.subscribed,
        )
        self.outbox = Outbox(outbox_size)
        self._publisher = Publisher(
            transport,
            self._calls,
            self._membership,
            self.node_id,
            self.outbox,
            self.kinds,
            listening=lambda: self._listener.subscribed,
        )
        self._recovery = Recovery(
            lambda: self._publisher.flush(self.reconcile_batch),
            self._reconcile,
            Backoff(reconnect_base, reconnect_cap),
            self.spawn,
            active=lambda: self._listener.running,
        )
        self._health.on_recovery = self._recovery.request
        self._bad_messages = RateLimitedLog()
        self._publish_errors = RateLimitedLog()
        self._background: list[asyncio.Task[None]] = []
        self._remote_closes = 0
        self._ignored = 0
        self._resubscribes = 0

    @property
    def broker_up(self) -> bool:
        """Whether the broker answered the last call made to it."""
        return self._health.up

    def session_of(self, ws: web.WebSocketResponse) -> Hashable | None:
        """The session id of a socket registered with extra keys (else None)."""
        entry = self._socket_keys.get(ws)
        return None if entry is None else entry.session_ws_id

    def keyed_sockets(self) -> list[tuple[web.WebSocketResponse, SocketKeys]]:
        """Every socket registered with extra keys, with its session id, keys and mark."""
        return list(self._socket_keys.items())

    async def close_sockets(self, sockets: Iterable[web.WebSocketResponse]) -> int:
        """Close `sockets` as ended sessions (code and reason of this registry)."""
        return await self._close(sockets, self.close_code, self.close_message, "session_ended")

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
        """Revoke locally and in the broker (with the TTL); if the broker does not
        answer, the revocation waits in the outbox until it does."""
        self.revoked.add(session_ws_id)
        target = target_or_none(session_ws_id)
        if target is not None:
            await self.share_revocations([target])

    async def share_revocations(self, targets: list[wire.JSONTarget]) -> None:
        """Write revocations to the broker (bounded), or queue them in the outbox."""
        await self._publisher.queue_marks(self.shared.marks(targets))

    def close_mark(self) -> ClusterCloseMark:
        """This node's close sequence now, and the cluster's as this node last read it."""
        return ClusterCloseMark(self.close_sequence.current, self.shared_sequence.seen)

    async def refuses(
        self,
        session_ws_id: Hashable,
        keys: Iterable[Hashable] = (),
        mark: CloseMark | None = None,
    ) -> str | None:
        """As in the core, then the broker in one round trip (skipped while it is down):
        the id and each (id, key) pair revoked anywhere, and each key closed anywhere
        after `mark` (the close counter is read along, moving this node's view on)."""
        keys = tuple(keys)
        refused = self._refused_locally(session_ws_id, keys, mark)
        if refused is not None or not self._health.up:
            return refused
        revocable = [session_ws_id, *(key_revocation(session_ws_id, key) for key in keys)]
        targets = [(i, t) for i in revocable if (t := target_or_none(i)) is not None]
        closes = self.shared_sequence.names(keys) if mark is not None else []
        names = [SharedRevocations.name(t) for _, t in targets] + closes + [CLOSE_COUNTER]
        try:
            values = await self._calls(
                lambda: self.transport.read_marks(names), "checking a revocation"
            )
        except Exception:
            return None  # recorded; this node's memory answered above
        self.shared_sequence.observe(values[-1])
        revoked = [i for (i, _), value in zip(targets, values, strict=False) if value is not None]
        for item in revoked:
            self.revoked.add(item)
        if revoked:
            return "revoked"
        closed = values[len(targets) : -1]
        if any(number(value) > shared_part(mark) for value in closed):
            return "key_closed"
        return None

    async def is_revoked(self, session_ws_id: Hashable) -> bool:
        """Check this node's memory, then the broker (skipped while it is down)."""
        if session_ws_id in self.revoked:
            return True
        target = target_or_none(session_ws_id)
        if target is None or not self._health.up:
            return False
        try:
            found = await self.shared.contains(target)
        except Exception:
            return False
        if found:
            self.revoked.add(session_ws_id)
            return True
        return False

    # -- lineage ---------------------------------------------------------------

    async def swap_successor(self, retired: Hashable, record: Record) -> Record | None:
        """In the broker, atomically (so two nodes superseding one session at once see
        each other), and in this node's memory, which answers where the broker has
        nothing (Redis lost its data). If the broker does not answer, the record
        waits in the outbox and this node's memory answers; if that knows nothing
        either, raises `LineageLookupError`."""
        local = self.lineage.swap(retired, record)
        target = target_or_none(retired)
        if target is None:
            return local
        if self._health.up:
            try:
                shared = await self.shared_lineage.swap(target, record)
            except Exception as exc:  # recorded by the bounded call (or a foreign record)
                cause: Exception = exc
            else:  # Redis lost what this node recorded (a flush, a restart): keep ours
                return local if shared is None else shared
        else:
            cause = LineageLookupError("the broker is down")
        await self._publisher.queue_marks([self.shared_lineage.mark(target, record)])
        if local is None:
            raise LineageLookupError("the broker did not answer") from cause
        return local

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
        (after closing the local sockets) if the broker could not be reached, and
        `TypeError` (before doing anything) for an id that is not JSON-encodable.
        """
        _check_wait(wait)
        wire.to_json_target(session_ws_id, "id")
        self.revoked.add(session_ws_id)
        result = await self._publisher.close(self.kinds["session"], session_ws_id, wait)
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

        Each node revokes, in the broker and locally, the key within the sessions
        of the sockets it closes before closing them, so those sessions are
        refused on any node while they still carry the key (see the core's
        `close_local_key`). Returns and raises as `close_all_session` does.
        """
        _check_wait(wait)
        wire.to_json_target(key, "key")
        result = await self._publisher.close(self.kinds["key"], key, wait)
        return result if wait is not None else result.local

    async def schedule_close_id(
        self, request: web.Request, response: web.StreamResponse, session_ws_id: Hashable
    ) -> None:
        """As in the core; a close the broker could not carry is logged, not lost silently."""
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

    # -- the other nodes' closes -----------------------------------------------

    def _dispatch(self, delivery: Delivery) -> None:
        try:
            self._on_delivery(delivery)
        except Exception as exc:  # a bug in handling one message must not end the listener
            self._ignored += 1
            logger.error(
                "node %s: error while handling a message: %s", self.node_id, error_trace(exc)
            )

    def _on_delivery(self, delivery: Delivery) -> None:
        try:
            message = wire.decode(delivery.data)
            if isinstance(message, wire.AckMessage):
                if not delivery.for_acks:
                    raise wire.MessageError("an ack outside this node's ack channel")
                self._publisher.acks.deliver(message)
                return
            if delivery.for_acks:
                raise wire.MessageError("a close outside the channel")
        except wire.MessageError as exc:
            self._ignored += 1
            self._bad_messages.warning(
                "node %s: ignored a message on %s: %s", self.node_id, delivery.channel, exc
            )
            return
        if message.origin != self.node_id:  # the publisher closed its own sockets already
            self.spawn(self._apply(message))

    async def _apply(self, message: wire.CloseMessage) -> None:
        self._remote_closes += 1
        closed = await self.kinds[message.scope].apply(message)
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
                await self._calls(
                    lambda: self.transport.publish_ack(message.origin, ack),
                    "acknowledging a close",
                )

    def _on_subscribed(self, again: bool) -> None:
        if again:
            self._resubscribes += 1
            self._recovery.request()
        self._membership.wake()  # announce ourselves at once

    def _on_lost(self) -> None:
        """The subscription failed or went deaf: stop counting as live, and catch up
        from the broker's marks while re-subscribing (the pool may still answer)."""
        self.spawn(_quietly(self._membership.withdraw()))
        self._recovery.request()

    async def _reconcile(self) -> None:
        """Apply the closes of every kind this node may have missed.

        Pub/sub keeps nothing for a node whose subscription was down or deaf, and
        a close published during a stall may never have been; each kind finds
        what it missed in the broker's marks. Raises on a broker failure.
        """
        for kind in self.kinds.values():
            await kind.reconcile()

    # -- background work -------------------------------------------------------

    async def start(self) -> None:
        """Subscribe and start the heartbeat; wait (up to `start_timeout`) to be announced."""
        await super().start()
        if self._background:
            return
        self._listener.stopping = self._membership.stopping = False
        self._background = [
            asyncio.create_task(
                self._listener.run(), name=f"aiohttp_session_ws.redis listener {self.node_id}"
            ),
            asyncio.create_task(
                self._membership.run(), name=f"aiohttp_session_ws.redis heartbeat {self.node_id}"
            ),
        ]
        try:
            await asyncio.wait_for(self._membership.announced.wait(), self.start_timeout)
        except asyncio.TimeoutError:
            logger.warning(
                "node %s: not subscribed to Redis after %.1fs; serving anyway, cluster "
                "closes start once Redis answers",
                self.node_id,
                self.start_timeout,
            )
        else:
            # Marks of the first handshakes then come after the closes made so far.
            with suppress(Exception):  # recorded; the first registration reads it again
                await self.shared_sequence.refresh()

    async def stop(self) -> None:
        """Stop the subscription and heartbeat, leave the cluster, finish pending work."""
        tasks, self._background = self._background, []
        self._listener.stopping = self._membership.stopping = True
        await self._end(tasks)
        self._listener.subscribed = False
        self._membership.announced.clear()
        self._publisher.acks.release_all()
        if self.outbox.unsent:
            with suppress(Exception):  # a last try, each entry bounded
                await self._publisher.flush()
            if self.outbox.unsent:
                logger.warning(
                    "node %s: stopped with %d close(s) or revocation(s) Redis never took",
                    self.node_id,
                    self.outbox.unsent,
                )
        if self._health.up:
            with suppress(Exception):
                await self._membership.leave()
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
        forever); the loops therefore also check `stopping`. A task still
        running after `redis_timeout` has its connection dropped, which ends its
        read; one that survives even that is abandoned with a warning.
        """
        for task in tasks:
            task.cancel()
        _, pending = await asyncio.wait(tasks, timeout=self.redis_timeout) if tasks else ((), ())
        if not pending:
            return
        await self._listener.abort(self.redis_timeout)
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

    # -- metrics ---------------------------------------------------------------

    def stats(self) -> ClusterRegistryStats:
        """The core counts plus broker state, publish failures and messages handled."""
        return ClusterRegistryStats(
            **super().stats(),
            redis_up=self._health.up,
            subscribed=self._listener.subscribed,
            publish_failures=self._publisher.failures,
            remote_closes=self._remote_closes,
            ignored_messages=self._ignored,
            resubscribes=self._resubscribes,
            liveness_failures=self._listener.deaf,
            outbox=self.outbox.unsent,
            outbox_dropped=self.outbox.dropped,
            outbox_sent=self._publisher.resent,
            recoveries=self._recovery.runs,
        )


async def _quietly(call: Awaitable[object]) -> None:
    """Await a bounded broker call whose failure is recorded already."""
    with suppress(Exception):
        await call


def _check_wait(wait: float | None) -> None:
    """`wait=` is None or seconds in `SECONDS_RANGES["wait"]` (TypeError/ValueError otherwise)."""
    if wait is not None:
        check_seconds("wait", wait)
