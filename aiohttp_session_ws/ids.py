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


DEFAULT_ID_FACTORY = default_id_factory
"""The 1.1.1 name of the default `id_factory`."""


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
    if stored_id(result) != result:  # NaN != NaN too
        # Read back from the session, it would be "no id" (or another id): every such
        # session would share one registry entry and logout would close nothing.
        # The value itself is not shown: it may be a real id.
        raise ValueError(
            f"id_factory {id_factory!r} returned an unusable id (a {type(result).__name__}): "
            "an empty str, a bool, a float, a dict or set, or a tuple holding one, reads "
            "back from the session as no id; return a non-empty str, an int, or a tuple "
            "of those, such as uuid.uuid4().hex"
        )
    return result


MAX_ID_DEPTH = 16


def stored_id(value: object, _depth: int = 0) -> Hashable | None:
    """The websocket id read back from a session, or None if it cannot be one.

    JSON storages return a tuple id as a list, so lists become tuples again.
    Anything a client could have planted that no id can be (a dict, a bool, a
    float such as NaN, an empty string, a structure nested too deep) is None,
    so the request gets a fresh id instead of being indexed under garbage.
    """
    if type(value) is str:  # the common case: the default factory's hex string
        return value or None
    if isinstance(value, list | tuple):
        if _depth >= MAX_ID_DEPTH:
            return None
        items = [stored_id(item, _depth + 1) for item in value]
        return None if any(item is None for item in items) else tuple(items)
    if value is None or value == "" or isinstance(value, bool | float | dict | set):
        return None
    try:
        hash(value)
    except TypeError:
        return None
    return value


def fingerprint(value: object) -> str:
    """A short, non-reversible tag for logs: ids and identities never appear in full."""
    return hashlib.sha256(repr(value).encode()).hexdigest()[:8]
