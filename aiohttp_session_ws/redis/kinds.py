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
from collections.abc import Hashable, Iterable
from contextlib import suppress
from typing import TYPE_CHECKING, ClassVar

from aiohttp import web

from ..registry import key_revocation
from . import wire
from .revocations import target_or_none
from .sequence import shared_part
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
    logged in since (a re-sent close is numbered anew). The issuer also has the
    broker number the close in the shared close sequence (sequence.py): a node
    that did not hear it refuses sockets whose handshake began before it, and
    closes them when it reconciles after a recovery.
    """

    scope = "key"

    def marks(self, target: Hashable) -> list[Mark]:
        registry = self.registry
        return [*registry.shared.marks(self.pairs(target)), *registry.shared_sequence.marks(target)]

    async def close_here(self, target: Hashable) -> int:
        registry = self.registry
        if registry.broker_up:
            # Read the counter first: handshakes starting after the local close are
            # then marked after the broker's number for it, and not refused for it.
            with suppress(Exception):  # recorded; the local numbering still applies
                await registry.shared_sequence.refresh()
        return await registry.close_local_key(target)

    async def apply(self, message: wire.CloseMessage) -> int:
        await self.revoke_pairs(self.pairs(message.target))
        return await self.close_here(message.target)

    async def revoke_pairs(self, pairs: list[wire.JSONTarget]) -> None:
        """Write (session, key) revocations to the broker, or queue them in the outbox."""
        if pairs:
            await self.registry.share_revocations(pairs)

    def pairs(
        self, key: Hashable, sockets: Iterable[web.WebSocketResponse] | None = None
    ) -> list[wire.JSONTarget]:
        """The (session, key) revocations a close of `key` makes on this node
        (for `sockets`, by default every socket under `key`)."""
        registry = self.registry
        entries = {
            key_revocation(session_ws_id, key)
            for ws in (registry.sockets_for_key(key) if sockets is None else sockets)
            if (session_ws_id := registry.session_of(ws)) is not None
        }
        return [t for t in map(target_or_none, entries) if t is not None]

    async def reconcile(self) -> int:
        """Close the local sockets under a key closed in the broker after their mark.

        A socket whose handshake began after this node had read the close's
        number stays open (its keys were computed after the close).
        """
        registry = self.registry
        sockets = registry.keyed_sockets()
        keys = list(dict.fromkeys(key for _, entry in sockets for key in entry.keys))
        if not keys:
            return 0
        last = await registry.shared_sequence.last_closes(keys, registry.reconcile_batch)
        missed: dict[Hashable, list[web.WebSocketResponse]] = {}
        for ws, entry in sockets:
            for key in entry.keys:
                if last.get(key, 0) > shared_part(entry.mark):
                    missed.setdefault(key, []).append(ws)
        if not missed:
            return 0
        for key, stranded in missed.items():
            registry.note_key_close(key)  # handshakes in flight here are refused too
            for ws in stranded:
                session_ws_id = registry.session_of(ws)
                if session_ws_id is not None:
                    registry.revoked.add(key_revocation(session_ws_id, key))
            await self.revoke_pairs(self.pairs(key, stranded))
        stranded_sockets = {ws for group in missed.values() for ws in group}
        closed = await registry.close_sockets(stranded_sockets)
        logger.info(
            "node %s: reconciled: closed %d socket(s) under %d key(s) closed meanwhile",
            registry.node_id,
            closed,
            len(missed),
        )
        return closed
