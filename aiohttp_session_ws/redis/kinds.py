"""Close kinds: what a cluster close of a session, or of an index key, does on each node.

A kind says what the issuing node writes to the broker before it publishes the
close (`marks`), how any node closes its own sockets (`close_here`, on the
issuer; `apply`, on a node that received the close), and how a node that may
have missed closes of that kind catches up after a recovery (`reconcile`, run
after every recovery once the node's outbox is sent).

Closes that could not be sent wait in the issuing node's outbox (outbox.py)
with their marks and are sent again, in order, when the broker answers; so
`apply` may run late, and for a kind with `replay_safe` set, more than once.
The registry keeps one instance per wire scope in `kinds`; a new kind of close
is a new subclass registered there (and a wire scope), not a change to the
registry's publishing, listening, outbox or reconciling.
"""

from __future__ import annotations

import logging
from collections.abc import Hashable
from typing import TYPE_CHECKING, ClassVar

from ..registry import key_revocation
from . import wire
from .revocations import target_or_none
from .transport import Mark

if TYPE_CHECKING:
    from .cluster import ClusterSessionWSRegistry

logger = logging.getLogger("aiohttp_session_ws.redis")


class CloseKind:
    """One kind of cluster close; subclasses set `scope` and the steps below."""

    scope: ClassVar[wire.Scope]
    replay_safe: ClassVar[bool] = False
    """True if `apply` of a close gives the same result whenever it runs again (so a
    sent close may be re-sent after a recovery, against failover losses)."""

    def __init__(self, registry: ClusterSessionWSRegistry) -> None:
        self.registry = registry

    def marks(self, target: Hashable) -> list[Mark]:
        """What the issuing node writes to the broker just before publishing the close."""
        return []

    async def close_here(self, target: Hashable) -> int:
        """Close this node's sockets for `target`; return how many."""
        raise NotImplementedError

    async def apply(self, message: wire.CloseMessage) -> int:
        """Close this node's sockets for a close received from another node.

        `message.at` says when the issuer issued it: a close re-sent from an
        outbox arrives late.
        """
        return await self.close_here(message.target)

    async def reconcile(self) -> int:
        """After a recovery, close the sockets whose closes this node may have missed.

        Raise on a broker failure: the recovery is retried with backoff.
        """
        return 0


class SessionCloses(CloseKind):
    """``close_all_session(id)``: the issuer revokes the id in the broker, then publishes.

    A node that missed the message finds the revocation when it reconciles.
    """

    scope = "session"
    replay_safe = True  # a revoked id stays revoked: no socket can come back under it

    def marks(self, target: Hashable) -> list[Mark]:
        return self.registry.shared.marks([wire.to_json_target(target, "id")])

    async def close_here(self, target: Hashable) -> int:
        self.registry.revoked.add(target)
        return await self.registry.close_local_session(target)

    async def reconcile(self) -> int:
        """Close the local sessions revoked in the broker (`reconcile_batch` per round trip)."""
        registry = self.registry
        entries = [
            (session_ws_id, target)
            for session_ws_id in list(registry)
            if (target := target_or_none(session_ws_id)) is not None
        ]
        found = await registry.shared.which(
            [target for _, target in entries], registry.reconcile_batch
        )
        missed = [sid for (sid, _), hit in zip(entries, found, strict=True) if hit]
        for session_ws_id in missed:
            registry.revoked.add(session_ws_id)
        sockets = [ws for sid in missed for ws in registry.get(sid, ())]
        closed = await registry.close_sockets(sockets)
        if missed:
            logger.info(
                "node %s: reconciled: closed %d socket(s) of %d session(s) revoked meanwhile",
                registry.node_id,
                closed,
                len(missed),
            )
        return closed


class KeyCloses(CloseKind):
    """``close_all_key(key)``: every node revokes (session, key) for its own sockets.

    Each node, the issuer included, writes the (session, key) pairs of the
    sockets it is about to close to the broker, so those sessions are refused
    on any node while they still carry the key (see the core's `close_local_key`).
    Not `replay_safe`: applied again later, it would close the sockets of a user who
    logged in since. Per-key closes missed during an outage are not reconciled yet.
    """

    scope = "key"

    def marks(self, target: Hashable) -> list[Mark]:
        return self.registry.shared.marks(self.pairs(target))

    async def close_here(self, target: Hashable) -> int:
        return await self.registry.close_local_key(target)

    async def apply(self, message: wire.CloseMessage) -> int:
        registry = self.registry
        pairs = self.pairs(message.target)
        if pairs:
            await registry.share_revocations(pairs)
        return await self.close_here(message.target)

    def pairs(self, key: Hashable) -> list[wire.JSONTarget]:
        """The (session, key) revocations a close of `key` makes on this node."""
        registry = self.registry
        entries = {
            key_revocation(session_ws_id, key)
            for ws in registry.sockets_for_key(key)
            if (session_ws_id := registry.session_of(ws)) is not None
        }
        return [t for t in map(target_or_none, entries) if t is not None]
