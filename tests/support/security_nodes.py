"""The security test app served on a real port, with the registry a test chooses."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from aiohttp_session.cookie_storage import EncryptedCookieStorage
from yarl import URL

from aiohttp_session_ws import SessionWSRegistry
from aiohttp_session_ws.security import identity_key
from tests.support.security_app import COOKIE_KEY, make_app


class Served:
    """One node: the security test app (wrapped policy, encrypted cookies) on a free port."""

    def __init__(self, registry: SessionWSRegistry) -> None:
        self.registry = registry
        app = make_app(
            "session-cookie", "wrapped", EncryptedCookieStorage(COOKIE_KEY), registry=registry
        )
        self.runner = web.AppRunner(app, shutdown_timeout=2.0)
        self.url = URL()

    async def start(self) -> None:
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        host, port = self.runner.addresses[0][:2]
        self.url = URL.build(scheme="http", host=host, port=port)

    def open_sockets(self, session_ids: set[Any], user: str) -> list[web.WebSocketResponse]:
        """Server-side sockets still open under one of `session_ids` or with `user`."""
        registry = self.registry
        found = set(registry.sockets_for_key(identity_key(user)))
        for session_id in session_ids & set(registry):
            found |= registry[session_id]
        return [ws for ws in found if not ws.closed]
