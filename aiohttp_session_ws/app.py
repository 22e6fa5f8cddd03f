"""Installing the registry on an application, and finding it again."""

from __future__ import annotations

import warnings
from collections.abc import AsyncIterator
from typing import Final

from aiohttp import web

from .keys import LEGACY_REGISTRY_KEY
from .order import check_middleware_order
from .registry import SessionWSRegistry

REGISTRY_KEY: Final = web.AppKey("aiohttp_session_ws_registry", SessionWSRegistry)
"""Where `setup` puts the registry: `app[REGISTRY_KEY]`."""


def setup(app: web.Application, registry: SessionWSRegistry) -> None:
    """Install `registry` on `app`, tie its lifetime to the app's, and close
    every socket with 1001 on shutdown.

    On startup the app's middleware order is checked: `session_ws_middleware`
    listed before aiohttp_session's middleware raises `RuntimeError` then,
    instead of a 500 on the first request.
    """
    if not isinstance(registry, SessionWSRegistry):
        raise TypeError(
            f"setup() needs a SessionWSRegistry, got {type(registry).__name__}; "
            "call setup(app, SessionWSRegistry())"
        )
    app[REGISTRY_KEY] = registry
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", web.NotAppKeyWarning)
        app[LEGACY_REGISTRY_KEY] = registry
    app.on_startup.append(check_middleware_order)
    app.on_shutdown.append(_on_shutdown)
    app.cleanup_ctx.append(_lifetime)


async def _on_shutdown(app: web.Application) -> None:
    await app[REGISTRY_KEY].shutdown()


async def _lifetime(app: web.Application) -> AsyncIterator[None]:
    registry = app[REGISTRY_KEY]
    await registry.start()
    yield
    await registry.stop()


def get_registry(request: web.Request) -> SessionWSRegistry:
    """The registry of the request's application (sub-applications included)."""
    # Every request passes here (the middleware): look in its own app before
    # building the chain of parent apps.
    registry = request.app.get(REGISTRY_KEY)
    if registry is None:
        config = request.config_dict
        registry = config.get(REGISTRY_KEY)
        if registry is None:
            registry = config.get(LEGACY_REGISTRY_KEY)  # set by hand, 1.1.1 style
    if not isinstance(registry, SessionWSRegistry):
        raise RuntimeError(
            "aiohttp_session_ws is not set up on this application: call "
            "aiohttp_session_ws.setup(app, SessionWSRegistry()) on the app (or a parent app)"
        )
    return registry
