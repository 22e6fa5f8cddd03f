"""Origin allow-list for websocket upgrades (defence against cross-site websocket hijacking)."""

from __future__ import annotations

from collections.abc import Iterable

from aiohttp import web
from yarl import URL


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


class OriginPolicy:
    """Decides whether an upgrade's `Origin` header may open a websocket."""

    def __init__(self, allowed: Iterable[str] | None, *, allow_missing: bool = True) -> None:
        if isinstance(allowed, str):
            raise TypeError("allowed_origins takes a list of origins, not a single string")
        self.allowed: frozenset[str] | None = (
            None if allowed is None else frozenset(normalize_origin(o) for o in allowed)
        )
        self.allow_missing = allow_missing

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
