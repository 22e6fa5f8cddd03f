"""The messages nodes exchange on the Redis channel: versioned JSON, validated on receipt.

Ids and index keys travel as JSON: a str, an int, or a tuple (or list) of those,
nested as deep as you like up to `MAX_DEPTH`. JSON arrays come back as tuples, so a
tuple id such as ``("identity", "alice")`` round-trips exactly.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Final, Literal, TypeAlias

KIND: Final = "aiohttp_session_ws"
"""Every message carries this, so foreign publishers on the channel are told apart."""
VERSION: Final = 1
MAX_MESSAGE_BYTES: Final = 64 * 1024
MAX_DEPTH: Final = 16
MAX_NAME: Final = 128
"""Longest node id or request id a message may carry."""

Scope = Literal["session", "key"]

JSONTarget: TypeAlias = "str | int | list[JSONTarget]"


class MessageError(ValueError):
    """A message on the channel that is not ours or is malformed (it is ignored)."""


def to_json_target(value: object, what: str = "id", _depth: int = 0) -> JSONTarget:
    """Convert an id or key to its JSON form, or raise a `TypeError` saying what fits."""
    if isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    if isinstance(value, tuple | list) and _depth < MAX_DEPTH:
        return [to_json_target(item, what, _depth + 1) for item in value]
    raise TypeError(
        f"RedisSessionWSRegistry sends each {what} to other nodes as JSON, so it must be a "
        f"str, an int, or a tuple of those (nested at most {MAX_DEPTH} deep); got a "
        f"{type(value).__name__}. Use an id_factory returning e.g. uuid.uuid4().hex, and "
        "key providers returning tuples such as ('identity', user_id)."
    )


def from_json_target(value: object, _depth: int = 0) -> Hashable:
    """Turn a received JSON target back into an id or key (arrays become tuples)."""
    if isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    if isinstance(value, list) and _depth < MAX_DEPTH:
        return tuple(from_json_target(item, _depth + 1) for item in value)
    raise MessageError(f"target holds a {type(value).__name__}, not a str, int or array")


def canonical(target: JSONTarget) -> str:
    """The one JSON spelling of a target (used for Redis key names)."""
    return json.dumps(target, separators=(",", ":"), ensure_ascii=False)


def digest(target: JSONTarget) -> str:
    """A SHA-256 of the target, so Redis key names never show ids in clear."""
    return hashlib.sha256(canonical(target).encode()).hexdigest()


@dataclass(frozen=True)
class CloseMessage:
    """Close `target` (a session id or an index key) on every node but `origin`."""

    scope: Scope
    target: Hashable
    origin: str
    request: str | None = None
    """Set when the publisher waits for acknowledgements on its ack channel."""
    at: float | None = None
    """When the issuing node issued the close (its wall clock, seconds since the epoch);
    a close re-sent after an outage carries its original time."""


@dataclass(frozen=True)
class AckMessage:
    """Node `node` closed `closed` sockets for the close request `request`."""

    request: str
    node: str
    closed: int


def encode_close(
    scope: Scope,
    target: JSONTarget,
    origin: str,
    request: str | None,
    at: float | None = None,
) -> bytes:
    body: dict[str, object] = {
        "kind": KIND,
        "v": VERSION,
        "type": "close",
        "scope": scope,
        "target": target,
        "origin": origin,
        "req": request,
    }
    if at is not None:
        body["at"] = round(at, 3)
    return json.dumps(body, separators=(",", ":")).encode()


def encode_ack(request: str, node: str, closed: int) -> bytes:
    body = {
        "kind": KIND,
        "v": VERSION,
        "type": "ack",
        "req": request,
        "node": node,
        "closed": closed,
    }
    return json.dumps(body, separators=(",", ":")).encode()


def decode(data: object) -> CloseMessage | AckMessage:
    """Parse and validate one message, raising `MessageError` for anything else."""
    if isinstance(data, str):
        data = data.encode()
    if not isinstance(data, bytes):
        raise MessageError(f"payload is a {type(data).__name__}")
    if len(data) > MAX_MESSAGE_BYTES:
        raise MessageError(f"payload of {len(data)} bytes exceeds {MAX_MESSAGE_BYTES}")
    try:
        body = json.loads(data)
    except (ValueError, RecursionError):
        raise MessageError("payload is not JSON") from None
    if not isinstance(body, dict) or body.get("kind") != KIND:
        raise MessageError("foreign message (no kind=aiohttp_session_ws)")
    if body.get("v") != VERSION:
        version = repr(body.get("v"))[:20]
        raise MessageError(f"unsupported version {version} (this node speaks {VERSION})")
    kind = body.get("type")
    if kind == "close":
        scope = body.get("scope")
        if scope not in ("session", "key"):
            raise MessageError("close message with an unknown scope")
        return CloseMessage(
            scope=scope,
            target=from_json_target(body.get("target")),
            origin=_string(body, "origin"),
            request=None if body.get("req") is None else _string(body, "req"),
            at=_time(body),
        )
    if kind == "ack":
        closed = body.get("closed")
        if isinstance(closed, bool) or not isinstance(closed, int) or closed < 0:
            raise MessageError("ack message without a valid count")
        return AckMessage(request=_string(body, "req"), node=_string(body, "node"), closed=closed)
    raise MessageError("unknown message type")


def _time(body: dict[str, object]) -> float | None:
    value = body.get("at")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < 1e11:
        raise MessageError("field 'at' is not a time")
    return float(value)


def _string(body: dict[str, object], field: str) -> str:
    value = body.get(field)
    if not isinstance(value, str) or not 0 < len(value) <= MAX_NAME:
        raise MessageError(f"field {field!r} is not a short string")
    return value
