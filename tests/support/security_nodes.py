"""The security test app served on a real port, with the registry a test chooses."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from aiohttp import web
from aiohttp_session import AbstractStorage
from aiohttp_session.cookie_storage import EncryptedCookieStorage
from redis.asyncio import Redis
from yarl import URL

from aiohttp_session_ws import SessionWSRegistry
from aiohttp_session_ws.redis import RedisSessionWSRegistry
from aiohttp_session_ws.security import identity_key
from tests.support.cluster import FAST, serve
from tests.support.security_app import COOKIE_KEY, make_app


class Served:
    """One node: the security test app (wrapped policy, encrypted cookies unless
    `storage` says otherwise) on a free port. `options` go to `make_app`."""

    def __init__(
        self,
        registry: SessionWSRegistry,
        storage: AbstractStorage | None = None,
        redis_clients: Sequence[Redis] = (),
        **options: Any,
    ) -> None:
        self.registry = registry
        self.redis_clients = list(redis_clients)
        app = make_app(
            "session-cookie",
            "wrapped",
            storage or EncryptedCookieStorage(COOKIE_KEY),
            registry=registry,
            **options,
        )
        self.runner = web.AppRunner(app, shutdown_timeout=2.0)
        self.url = URL()

    async def start(self) -> None:
        self.url = await serve(self.runner)

    async def stop(self) -> None:
        """Clean the app up, then close the Redis clients (the registry's, and `redis_clients`)."""
        await self.runner.cleanup()
        if isinstance(self.registry, RedisSessionWSRegistry):
            await self.registry.redis.aclose()
        for client in self.redis_clients:
            await client.aclose()

    def open_sockets(self, session_ids: set[Any], user: str) -> list[web.WebSocketResponse]:
        """Server-side sockets still open under one of `session_ids` or with `user`."""
        registry = self.registry
        found = set(registry.sockets_for_key(identity_key(user)))
        for session_id in session_ids & set(registry):
            found |= registry[session_id]
        return [ws for ws in found if not ws.closed]


def redis_nodes(redis_url: str, names: str) -> list[Served]:
    """Unstarted nodes named `names` ("ABC"), each with its own client and a Redis
    registry (fast test settings) on one fresh channel."""
    channel = f"asws-{uuid.uuid4().hex[:8]}"
    return [
        Served(
            RedisSessionWSRegistry(Redis.from_url(redis_url), channel=channel, node_id=name, **FAST)
        )
        for name in names
    ]


@asynccontextmanager
async def running(nodes: list[Served]) -> AsyncIterator[list[Served]]:
    """Start `nodes` one by one; stop them all on exit."""
    try:
        for node in nodes:
            await node.start()
        yield nodes
    finally:
        for node in nodes:
            await node.stop()
