"""The cluster registry over another `Transport` (in-process): no Redis, no copied registry."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from aiohttp_session_ws import SESSION_ENDED_CODE
from aiohttp_session_ws.redis.cluster import ClusterSessionWSRegistry
from tests.support.cluster import (
    FAST,
    Browser,
    closes,
    eventually,
    expect_close,
    expect_open,
    make_app,
    serve,
)
from tests.support.memory_transport import MemoryBroker


class MemoryNode:
    def __init__(self, name: str, broker: MemoryBroker) -> None:
        self.name = name
        self.registry = ClusterSessionWSRegistry(broker.transport(), node_id=name, **FAST)
        self.runner = web.AppRunner(make_app(self.registry), shutdown_timeout=2.0)

    async def start(self) -> None:
        self.url = await serve(self.runner)

    async def stop(self) -> None:
        await self.runner.cleanup()


@pytest.fixture
async def nodes() -> AsyncIterator[list[MemoryNode]]:
    broker = MemoryBroker()
    made = [MemoryNode(name, broker) for name in "AB"]
    for node in made:
        await node.start()
    yield made
    for node in made:
        await node.stop()


async def test_closes_counts_and_revocations_travel_over_another_transport(
    nodes: list[MemoryNode],
) -> None:
    a, b = nodes
    x, y = Browser(), Browser()
    try:
        x_id = (await x.get_json(a, "/login?user=alice"))["id"]
        await y.get_json(b, "/login?user=alice")
        on_a, on_b = await x.ws(a), await x.ws(b)
        other = await y.ws(b)
        for ws in (on_a, on_b, other):
            await expect_open(ws)
        stale = x.cookie(a)

        closing = closes([on_a, on_b], SESSION_ENDED_CODE)  # clients read as it closes
        result = await a.registry.close_all_session(x_id, wait=2.0)

        assert (result.closed, result.nodes_answered, result.nodes_expected) == (2, 2, 2)
        await closing
        await expect_open(other)
        late = Browser(cookie=stale)
        try:  # the revocation is shared: B refuses the old cookie
            await expect_close(await late.ws(b), SESSION_ENDED_CODE)
        finally:
            await late.close()
        closing = closes([other], SESSION_ENDED_CODE)
        by_key = await b.registry.close_all_key(("identity", "alice"), wait=2.0)
        assert (by_key.closed, by_key.nodes_answered) == (1, 2)
        await closing
        await eventually(lambda: a.registry.stats()["remote_closes"] == 1)
    finally:
        await x.close()
        await y.close()
