"""Websocket id generation and validation."""

from __future__ import annotations

import hashlib
import inspect
import uuid
from collections.abc import Awaitable, Callable, Hashable

from aiohttp import web

IdFactory = Callable[[web.Request], Hashable | Awaitable[Hashable]]


def default_id_factory(request: web.Request) -> str:
    """A random 128-bit id as 32 hex characters."""
    return uuid.uuid4().hex


def check_id_factory(id_factory: object) -> IdFactory:
    """Refuse a factory that cannot be called, at construction time."""
    if not callable(id_factory):
        raise TypeError(
            f"id_factory must be a callable taking the request, got {type(id_factory).__name__}; "
            "e.g. id_factory=lambda request: uuid.uuid4().hex"
        )
    return id_factory


async def call_id_factory(id_factory: IdFactory, request: web.Request) -> Hashable:
    """Call a sync or async factory and check that its result can be an id."""
    result = id_factory(request)
    if inspect.isawaitable(result):
        result = await result
    if result is None:
        raise ValueError(
            f"id_factory {id_factory!r} returned None; it must return a hashable, "
            "non-None value such as uuid.uuid4().hex"
        )
    try:
        hash(result)
    except TypeError:
        raise TypeError(
            f"id_factory {id_factory!r} returned an unhashable {type(result).__name__}; "
            "return a str, int or tuple (the id is a dict key and is stored in the session)"
        ) from None
    return result


def fingerprint(value: object) -> str:
    """A short, non-reversible tag for logs: ids and identities never appear in full."""
    return hashlib.sha256(repr(value).encode()).hexdigest()[:8]
