"""High availability: nodes on `redis.asyncio.sentinel` follow a real failover.

A master, a replica and three sentinels run as real processes; the master is
killed (SIGKILL), the sentinels promote the replica, and the nodes' clients
(from `Sentinel.master_for`) find the new master. Closes keep flowing, and a
logout made while no master answered reaches every node from the outbox.
"""

from __future__ import annotations

import asyncio
import shutil
import time
import uuid
from collections.abc import AsyncIterator

import pytest

from aiohttp_session_ws import SESSION_ENDED_CODE
from tests.conftest import require
from tests.support.cluster import (
    RECOVERY_BOUND,
    Browser,
    Node,
    eventually,
    expect_close,
    expect_open,
)
from tests.support.sentinel import SentinelClients, SentinelSet

pytestmark = pytest.mark.redis

MARGIN = 2.0
FAILOVER_BOUND = 15.0
"""Seconds the sentinels may take to promote the replica (down-after 0.5 s here)."""


class SentinelNodes:
    """Nodes whose Redis clients come from `Sentinel.master_for` (one Sentinel each)."""

    def __init__(self, sentinels: SentinelSet) -> None:
        self.clients = SentinelClients(sentinels)
        self.channel = f"asws-ha-{uuid.uuid4().hex[:8]}"
        self.nodes: list[Node] = []

    async def start(self, name: str) -> Node:
        node = Node(name, "", self.channel, client=self.clients.master())
        await node.start()
        self.nodes.append(node)
        return node

    async def stop(self) -> None:
        for node in reversed(self.nodes):
            await node.stop()
        await self.clients.aclose()


@pytest.fixture
async def sentinels() -> AsyncIterator[SentinelSet]:
    require(shutil.which("redis-server") is not None, "redis-server")
    made = SentinelSet()
    try:
        await asyncio.to_thread(made.start)
        yield made
    finally:
        await asyncio.to_thread(made.stop)


@pytest.fixture
async def ha(sentinels: SentinelSet) -> AsyncIterator[SentinelNodes]:
    nodes = SentinelNodes(sentinels)
    yield nodes
    await nodes.stop()


async def test_closes_keep_flowing_through_a_sentinel_failover(
    sentinels: SentinelSet, ha: SentinelNodes
) -> None:
    a = await ha.start("A")
    b = await ha.start("B")
    x, y, z = Browser(), Browser(), Browser()
    try:
        x_id = (await x.get_json(a, "/id"))["id"]
        xs = [await x.ws(a), await x.ws(b)]
        for ws in xs:
            await expect_open(ws)
        before = await b.registry.close_all_session(x_id, wait=2.0)
        assert (before.closed, before.nodes_answered, before.nodes_expected) == (2, 2, 2)

        await y.get_json(a, "/id")
        stale = y.cookie(a)
        y_on_a, y_on_b = await y.ws(a), await y.ws(b)
        await expect_open(y_on_a)
        await expect_open(y_on_b)
        old = await asyncio.to_thread(sentinels.kill_master)
        # A logs y out while no master answers: the close waits in A's outbox.
        assert await y.get(a, "/reset") == "reset"
        await expect_close(y_on_a, SESSION_ENDED_CODE)
        new_port = await asyncio.to_thread(sentinels.wait_failover, old.port, FAILOVER_BOUND)
        promoted = time.monotonic()
        assert new_port != old.port
        await expect_close(y_on_b, SESSION_ENDED_CODE, timeout=RECOVERY_BOUND + MARGIN)
        assert time.monotonic() - promoted < RECOVERY_BOUND + MARGIN
        await eventually(lambda: a.registry.stats()["outbox"] == 0, timeout=MARGIN)

        # Closes keep flowing on the new master, with every node answering (once
        # every sentinel names the new master, every node subscribes to it).
        await eventually(
            lambda: all(n.registry.stats()["subscribed"] for n in (a, b)),
            timeout=RECOVERY_BOUND + MARGIN,
        )
        z_id = (await z.get_json(b, "/id"))["id"]
        zs = [await z.ws(a), await z.ws(b)]
        for ws in zs:
            await expect_open(ws)
        after = await b.registry.close_all_session(z_id, wait=2.0)
        assert (after.closed, after.nodes_answered, after.nodes_expected) == (2, 2, 2)
        for ws in zs:
            await expect_close(ws, SESSION_ENDED_CODE)
        # A node started after the failover refuses y's pre-logout cookie (the
        # revocation A queued was written to the new master).
        c = await ha.start("C")
        late = Browser(cookie=stale)
        try:
            await expect_close(await late.ws(c), SESSION_ENDED_CODE)
        finally:
            await late.close()
    finally:
        for browser in (x, y, z):
            await browser.close()


async def test_a_close_sent_to_a_replaced_master_is_sent_again_once_it_is_demoted(
    sentinels: SentinelSet, ha: SentinelNodes
) -> None:
    """Seen in the recovery bench (a second failover right after the first): after a
    failover the old master stays a writable master until the sentinels demote it
    (about 10 s later), and a node still connected to it writes its closes there.
    The other nodes, on the new master, hear nothing; the demotion then replaces the
    old master's data with the new master's, revocations included. The node must
    find its sent closes missing from the new master and send them again."""
    a = await ha.start("A")
    y = Browser()
    try:
        old_port = await asyncio.to_thread(sentinels.force_failover)
        new_port = await asyncio.to_thread(sentinels.wait_failover, old_port, FAILOVER_BOUND)
        await asyncio.to_thread(sentinels.wait_named_by_all, new_port)
        b = await ha.start("B")  # on the new master; A stays on the old one
        await y.get_json(a, "/id")
        stale = y.cookie(a)
        y_on_a, y_on_b = await y.ws(a), await y.ws(b)
        await expect_open(y_on_a)
        await expect_open(y_on_b)

        assert await y.get(a, "/reset") == "reset"  # A revokes and publishes on the old master
        await expect_close(y_on_a, SESSION_ENDED_CODE)
        await asyncio.sleep(1.0)
        await expect_open(y_on_b)  # B did not hear it: A wrote to a master nobody else uses

        await asyncio.to_thread(sentinels.wait_role, old_port, "slave")
        demoted = time.monotonic()
        await expect_close(y_on_b, SESSION_ENDED_CODE, timeout=RECOVERY_BOUND + MARGIN)
        assert time.monotonic() - demoted < RECOVERY_BOUND + MARGIN
        late = Browser(cookie=stale)  # the revocation is on the new master too
        try:
            await expect_close(await late.ws(b), SESSION_ENDED_CODE)
        finally:
            await late.close()
    finally:
        await y.close()
