"""What a cluster-wide close reports back."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ClusterCloseResult:
    """The outcome of ``close_all_session(id, wait=...)`` / ``close_all_key(key, wait=...)``.

    `closed` counts the sockets closed by this node plus those reported by every
    node that answered before the deadline. `nodes_expected` is how many live
    nodes (this one included) were announced by their heartbeats when the close
    was published; `complete` says whether all of them answered.
    """

    closed: int
    local: int
    nodes_answered: int
    nodes_expected: int

    @property
    def complete(self) -> bool:
        """True if every node expected answered before the deadline."""
        return self.nodes_answered >= self.nodes_expected

    def __int__(self) -> int:
        return self.closed


class ClusterPublishError(ConnectionError):
    """The close could not be sent to the other nodes (Redis did not answer in time).

    The local close happened anyway: `local_closed` sockets were closed on this
    node. If `queued` is true, the close waits in this node's outbox and is
    written and published, in order, as soon as Redis answers again (while the
    process lives and the outbox has room; see `stats()["outbox"]`).
    """

    def __init__(self, message: str, local_closed: int, queued: bool = False) -> None:
        super().__init__(message)
        self.local_closed = local_closed
        self.queued = queued
