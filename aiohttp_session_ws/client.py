"""Serving the browser client (`static/session_ws.js`) from an aiohttp application."""

from __future__ import annotations

from pathlib import Path
from typing import Final

from aiohttp import web

CLIENT_DIR: Final = Path(__file__).parent / "static"
"""The folder holding the browser client; serve it yourself if you prefer (a CDN, nginx)."""
CLIENT_FILENAME: Final = "session_ws.js"
CLIENT_PATH: Final = CLIENT_DIR / CLIENT_FILENAME
"""The browser client: a dependency-free ES module (see the README's "Browser client")."""
CLIENT_ROUTE_NAME: Final = "aiohttp_session_ws_client"


def add_client_route(
    app: web.Application,
    prefix: str = "/aiohttp_session_ws",
    *,
    name: str = CLIENT_ROUTE_NAME,
) -> str:
    """Serve the browser client under `prefix` and return the module's URL path.

    The path carries a content hash (`?v=...`), so it can be cached for good and
    changes when the package is upgraded: put it in your pages' `import`. Adds a
    static route named `name` to `app.router` (a `RuntimeError` from aiohttp if the
    router is frozen, i.e. the app already started; a `ValueError` if `name` is taken).
    """
    resource = app.router.add_static(prefix, CLIENT_DIR, name=name, append_version=True)
    return str(resource.url_for(filename=CLIENT_FILENAME))  # versioned: append_version=True
