"""Origin allow-list for websocket upgrades (defence against cross-site websocket hijacking)."""

from __future__ import annotations

from collections.abc import Iterable

from aiohttp import web
from yarl import URL

from .options import check_flag


def normalize_origin(origin: str) -> str:
    """Lower-case `scheme://host[:port]`, dropping a default port and any path."""
    url = URL(origin.strip())
    if not url.scheme or not url.host:
        raise ValueError(f"{origin!r} is not an origin; write it as 'https://example.com[:port]'")
    host = url.host.lower()
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    port = "" if url.port == URL.build(scheme=url.scheme, host="x").port else f":{url.port}"
    return f"{url.scheme.lower()}://{host}{port}"


def check_allowed_origin(origin: object) -> str:
    """Normalize one `allowed_origins` entry, refusing one that could never match.

    Browsers send `scheme://host[:port]` with the page's scheme (`http`/`https`, or
    e.g. `chrome-extension`) and a real host name: an entry with a wildcard, a
    `ws`/`wss` scheme, a host no browser sends (spaces, `%`) or a port outside
    1-65535 would silently refuse everyone it was meant for.
    """
    if not isinstance(origin, str):
        raise TypeError(
            f"allowed_origins holds a {type(origin).__name__}; each origin is a str "
            "such as 'https://app.example.com'"
        )
    usage = "write it as 'https://example.com[:port]'"
    if "*" in origin:
        raise ValueError(
            f"{origin!r}: allowed_origins takes no wildcard; list each origin, "
            "e.g. ['https://app.example.com', 'https://admin.example.com']"
        )
    try:
        url = URL(origin.strip())
    except ValueError as exc:
        raise ValueError(f"{origin!r} is not an origin ({exc}); {usage}") from None
    host = url.host or ""
    if not url.scheme or not host or any(c.isspace() or c in "%\\" for c in host):
        raise ValueError(f"{origin!r} is not an origin; {usage}")
    if url.scheme.lower() in ("ws", "wss"):
        raise ValueError(
            f"{origin!r} can never match: a browser's Origin carries the page's scheme "
            "(http or https), not ws/wss"
        )
    if url.port == 0:
        raise ValueError(f"{origin!r} can never match: give a port from 1 to 65535")
    return normalize_origin(origin)


class OriginPolicy:
    """Decides whether an upgrade's `Origin` header may open a websocket."""

    def __init__(self, allowed: Iterable[str] | None, *, allow_missing: bool = True) -> None:
        if isinstance(allowed, str | bytes):
            raise TypeError("allowed_origins takes a list of origins, not a single string")
        self.allowed: frozenset[str] | None = (
            None if allowed is None else frozenset(check_allowed_origin(o) for o in allowed)
        )
        self.allow_missing = check_flag("allow_missing_origin", allow_missing)

    def permits(self, request: web.Request) -> bool:
        """True if no allow-list is set, or the request's Origin is on it."""
        if self.allowed is None:
            return True
        origin = request.headers.get("Origin")
        if origin is None:
            return self.allow_missing
        try:
            return normalize_origin(origin) in self.allowed
        except ValueError:  # "null", garbage
            return False
