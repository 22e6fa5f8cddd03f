"""The middleware order check: aiohttp_session's middleware must wrap `session_ws_middleware`."""

from __future__ import annotations

from typing import Final

import aiohttp_session
from aiohttp import web

NEEDS_SESSION_MIDDLEWARE: Final = (
    "aiohttp_session_ws needs aiohttp_session's middleware: call "
    "aiohttp_session.setup(app, storage) (or add session_middleware(storage)) and "
    "place session_ws_middleware after it in the middlewares list"
)


def is_session_middleware(middleware: object) -> bool:
    """True for a middleware made by `aiohttp_session.session_middleware(storage)`."""
    return getattr(middleware, "__module__", None) == aiohttp_session.__name__ and getattr(
        middleware, "__qualname__", ""
    ).startswith("session_middleware.")


async def check_middleware_order(app: web.Application) -> None:
    """On startup, refuse an app listing `session_ws_middleware` before aiohttp_session's.

    Such an app would otherwise fail only on its first request, with a 500.
    A common cause: ``aiohttp_session.setup(app, storage)`` appends its
    middleware, so calling it after building ``middlewares=[session_ws_middleware]``
    puts it last. Raises `RuntimeError` (the app does not start).
    """
    # Imported here: .middleware imports .app, which imports this module.
    from .middleware import session_ws_middleware

    middlewares = list(app.middlewares)
    if session_ws_middleware not in middlewares:
        return
    ours = middlewares.index(session_ws_middleware)
    if any(is_session_middleware(m) for m in middlewares[ours + 1 :]) and not any(
        is_session_middleware(m) for m in middlewares[:ours]
    ):
        raise RuntimeError(
            f"{NEEDS_SESSION_MIDDLEWARE}; this app lists session_ws_middleware before it "
            "(aiohttp_session.setup appends its middleware: call it before adding "
            "session_ws_middleware, or list session_middleware(storage) first)"
        )
