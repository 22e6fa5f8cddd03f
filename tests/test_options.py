"""Every option of every registry (and of the security layer's policy) is checked for a
value that can work: one bad value per option, each failing at construction with an
error that says what to pass."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp_security import SessionIdentityPolicy

from aiohttp_session_ws import SessionWSRegistry
from aiohttp_session_ws.options import SECONDS_RANGES
from aiohttp_session_ws.security import SessionWSIdentityPolicy

# option -> (bad value, error, words the message must hold)
CORE: dict[str, tuple[object, type[Exception], str]] = {
    "id_factory": ("uuid4", TypeError, "callable"),
    "session_key": ("", ValueError, "non-empty str"),
    "close_code": (1000, ValueError, "4000-4499"),
    "close_message": ("x" * 124, ValueError, "at most 123 bytes"),
    "close_timeout": (1e16, ValueError, "close_timeout must be .* at most 3600"),
    "revocation_ttl": (1e16, ValueError, "revocation_ttl must be .* at most 31536000"),
    "revocation_max_size": (True, TypeError, "revocation_max_size must be an int"),
    "allowed_origins": (["*"], ValueError, "wildcard"),
    "allow_missing_origin": ("no", TypeError, "allow_missing_origin must be True or False"),
}

REDIS_ONLY: dict[str, tuple[object, type[Exception], str]] = {
    "channel": ("", ValueError, "channel must be a non-empty str"),
    "node_id": ("", ValueError, "node_id must be a non-empty str"),
    "heartbeat_interval": (1e16, ValueError, "heartbeat_interval must be .* at most 3600"),
    "heartbeat_ttl": (1e16, ValueError, "heartbeat_ttl must be .* at most 86400"),
    "reconnect_base": (1e16, ValueError, "reconnect_base must be .* at most 3600"),
    "reconnect_cap": (1e16, ValueError, "reconnect_cap must be .* at most 3600"),
    "redis_timeout": (1e16, ValueError, "redis_timeout must be .* at most 3600"),
    "start_timeout": (1e16, ValueError, "start_timeout must be .* at most 3600"),
}

# More bad values of the same options: the kinds the issue names.
MORE_CORE: list[tuple[str, object, type[Exception], str]] = [
    ("session_key", 42, TypeError, "session_key must be a non-empty str"),
    ("revocation_max_size", 1.5, TypeError, "revocation_max_size must be an int"),
    ("revocation_max_size", 0, ValueError, "at least 1"),
    ("revocation_ttl", 0.0001, ValueError, "at least 0.001"),
    ("close_timeout", float("nan"), ValueError, "positive, finite"),
    ("allow_missing_origin", 1, TypeError, "True or False"),
    ("allow_missing_origin", None, TypeError, "True or False"),
    ("allowed_origins", ["https://*.example.com"], ValueError, "wildcard"),
    ("allowed_origins", ["ws://app.example.com"], ValueError, "http"),
    ("allowed_origins", ["https://app .example.com"], ValueError, "not an origin"),
    ("allowed_origins", ["https://app.example.com:99999"], ValueError, "not an origin"),
    ("allowed_origins", ["http://app.example.com:0"], ValueError, "port from 1 to 65535"),
    ("allowed_origins", ["https://app.example.com%2f"], ValueError, "not an origin"),
    ("allowed_origins", [b"https://app.example.com"], TypeError, "str"),
    ("allowed_origins", "https://app.example.com", TypeError, "list of origins"),
    ("allowed_origins", ["null"], ValueError, "not an origin"),
]


@pytest.mark.parametrize(
    ("option", "value", "error", "words"),
    [(name, *bad) for name, bad in CORE.items()] + MORE_CORE,
    ids=[*CORE, *(f"{o}-{v!r}" for o, v, _, _ in MORE_CORE)],
)
def test_core_options(option: str, value: object, error: type[Exception], words: str) -> None:
    with pytest.raises(error, match=words):
        SessionWSRegistry(**{option: value})


@pytest.mark.parametrize(
    ("option", "value", "error", "words"),
    [(name, *bad) for name, bad in {**CORE, **REDIS_ONLY}.items()],
    ids=[*CORE, *REDIS_ONLY],
)
def test_redis_registry_options(
    option: str, value: object, error: type[Exception], words: str
) -> None:
    from redis.asyncio import Redis

    from aiohttp_session_ws.redis import RedisSessionWSRegistry

    client = Redis()  # never connected: construction must not touch the network
    with pytest.raises(error, match=words):
        RedisSessionWSRegistry(client, **{option: value})  # type: ignore[arg-type]


def test_redis_client_option() -> None:
    from aiohttp_session_ws.redis import RedisSessionWSRegistry

    with pytest.raises(TypeError, match=r"redis\.asyncio\.Redis"):
        RedisSessionWSRegistry("redis://localhost")  # type: ignore[arg-type]


@pytest.mark.parametrize("value", ["yes", 1, None])
def test_rotate_session_is_a_flag(value: object) -> None:
    with pytest.raises(TypeError, match="rotate_session must be True or False"):
        SessionWSIdentityPolicy(SessionIdentityPolicy(), rotate_session=value)  # type: ignore[arg-type]


def test_every_seconds_option_has_a_range() -> None:
    """The table the README's option ranges come from covers every option in seconds."""
    seconds = {"close_timeout", "revocation_ttl"} | {
        name for name in REDIS_ONLY if name not in {"channel", "node_id"}
    }
    assert seconds <= set(SECONDS_RANGES)


@pytest.mark.parametrize(
    ("options"),
    [
        {"revocation_ttl": 31_536_000, "close_timeout": 3600, "revocation_max_size": 1},
        {"revocation_ttl": 0.001, "allow_missing_origin": False},
        {"allowed_origins": ["https://app.example.com/", "chrome-extension://abcdef"]},
        {"allowed_origins": [], "session_key": "ws"},
    ],
)
def test_values_at_the_limits_are_accepted(options: dict[str, Any]) -> None:
    SessionWSRegistry(**options)


@pytest.mark.redis
async def test_the_longest_revocation_ttl_is_accepted_by_redis(redis_url: str) -> None:
    """The cap on revocation_ttl is one Redis accepts (the issue's 1e16 was not)."""
    from redis.asyncio import Redis

    from aiohttp_session_ws.redis import RedisSessionWSRegistry

    registry = RedisSessionWSRegistry(Redis.from_url(redis_url), revocation_ttl=31_536_000)
    await registry.start()
    try:
        assert await registry.close_all_session("an-id") == 0  # raised ClusterPublishError
        assert await registry.is_revoked("an-id")
        assert registry.stats()["publish_failures"] == 0
    finally:
        await registry.stop()
        await registry.redis.aclose()
