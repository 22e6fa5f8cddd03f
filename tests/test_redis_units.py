"""Units of the Redis registry that need no Redis: wire format, backoff, logging, options."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from aiohttp.test_utils import make_mocked_request
from redis.asyncio import Redis

from aiohttp_session_ws.redis import ClusterCloseResult, RedisSessionWSRegistry, wire
from aiohttp_session_ws.redis.health import Backoff, Health, RateLimitedLog
from tests.support.redis_server import free_port


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(
    "value",
    ["abc", "", "ünïcode", 0, -5, 2**80, ("identity", "alice"), ("a", (1, ("b",))), ()],
)
def test_targets_round_trip_exactly(value: Any) -> None:
    target = wire.to_json_target(value)
    sent = wire.encode_close("key", target, "A", None)
    message = wire.decode(sent)
    assert isinstance(message, wire.CloseMessage)
    assert message.target == value and type(message.target) is type(value)


def test_lists_arrive_as_tuples() -> None:
    target = wire.to_json_target(["identity", ["x", 1]])
    assert wire.from_json_target(json.loads(json.dumps(target))) == ("identity", ("x", 1))


@pytest.mark.parametrize("value", [1.5, True, None, {"a": 1}, {"a"}, b"bytes", ("ok", 2.0)])
def test_unsendable_ids_get_a_clear_type_error(value: Any) -> None:
    with pytest.raises(TypeError, match=r"str, an int, or a tuple of those"):
        wire.to_json_target(value)


def test_redis_key_names_do_not_show_the_id() -> None:
    digest = wire.digest(wire.to_json_target("secret-session-id"))
    assert "secret" not in digest and len(digest) == 64


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"nope",
        b"\xff",
        b"null",
        b'{"kind": "other", "v": 1}',
        b'{"kind": "aiohttp_session_ws", "v": 2, "type": "close"}',
        b'{"kind": "aiohttp_session_ws", "v": 1, "type": "wat"}',
        b'{"kind": "aiohttp_session_ws", "v": 1, "type": "close", "scope": "key", '
        b'"target": {"a": 1}, "origin": "A"}',
        b'{"kind": "aiohttp_session_ws", "v": 1, "type": "close", "scope": "key", '
        b'"target": "x", "origin": ""}',
        b'{"kind": "aiohttp_session_ws", "v": 1, "type": "close", "scope": "key", '
        b'"target": "x", "origin": "A", "req": 5}',
        b'{"kind": "aiohttp_session_ws", "v": 1, "type": "ack", "req": "r", "node": "B", '
        b'"closed": -1}',
        b'{"kind": "aiohttp_session_ws", "v": 1, "type": "ack", "req": "r", "node": "B", '
        b'"closed": true}',
        b"[" * 50_000,
        b'"' + b"x" * (wire.MAX_MESSAGE_BYTES + 1) + b'"',
    ],
)
def test_malformed_messages_are_refused(payload: bytes) -> None:
    with pytest.raises(wire.MessageError):
        wire.decode(payload)


def test_ack_round_trip() -> None:
    message = wire.decode(wire.encode_ack("req1", "B", 4).decode())  # str payloads too
    assert message == wire.AckMessage(request="req1", node="B", closed=4)


def test_backoff_doubles_up_to_the_cap_with_jitter() -> None:
    upper = Backoff(0.1, 1.0, rand=lambda low, high: high)
    assert [round(upper.next(), 3) for _ in range(6)] == [0.1, 0.2, 0.4, 0.8, 1.0, 1.0]
    lower = Backoff(0.1, 1.0, rand=lambda low, high: low)
    assert [round(lower.next(), 3) for _ in range(5)] == [0.05, 0.1, 0.2, 0.4, 0.5]
    lower.reset()
    assert round(lower.next(), 3) == 0.05
    real = Backoff(0.1, 1.0)
    delays = [real.next() for _ in range(200)]
    assert all(0.05 <= d <= 1.0 for d in delays) and len(set(delays)) > 100
    with pytest.raises(ValueError):
        Backoff(2.0, 1.0)


def test_outage_logged_once_and_recovery_once(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    health = Health("A", clock=clock)
    with caplog.at_level(logging.WARNING, logger="aiohttp_session_ws"):
        for _ in range(100):
            health.failed(ConnectionError("refused"), "publishing a close")
        clock.now += 3
        health.succeeded()
        health.succeeded()
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2
    assert "unreachable" in messages[0] and "after 3.0s" in messages[1]
    assert health.up and health.outages == 1


def test_rate_limited_log_counts_what_it_held_back(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    log = RateLimitedLog(60, clock=clock)
    with caplog.at_level(logging.WARNING, logger="aiohttp_session_ws"):
        for _ in range(10):
            log.warning("bad %s", "message")
        clock.now += 61
        log.warning("bad %s", "message")
    assert [r.getMessage() for r in caplog.records] == [
        "bad message",
        "bad message (9 similar message(s) suppressed)",
    ]


def test_result_counts() -> None:
    full = ClusterCloseResult(closed=6, local=1, nodes_answered=3, nodes_expected=3)
    partial = ClusterCloseResult(closed=1, local=1, nodes_answered=1, nodes_expected=3)
    assert full.complete and not partial.complete and int(full) == 6


def unused_redis() -> Redis:
    return Redis(host="127.0.0.1", port=free_port(), socket_connect_timeout=0.2)


async def test_bad_options_are_refused() -> None:
    redis = unused_redis()
    with pytest.raises(TypeError, match=r"redis\.asyncio\.Redis"):
        RedisSessionWSRegistry(object())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="channel"):
        RedisSessionWSRegistry(redis, channel="")
    with pytest.raises(ValueError, match="heartbeat_ttl"):
        RedisSessionWSRegistry(redis, heartbeat_interval=1, heartbeat_ttl=1)
    with pytest.raises(ValueError, match="reconnect"):
        RedisSessionWSRegistry(redis, reconnect_base=5, reconnect_cap=1)
    with pytest.raises(ValueError, match="node_id"):
        RedisSessionWSRegistry(redis, node_id="x" * 129)
    with pytest.raises(ValueError, match="close_code"):  # core options pass through
        RedisSessionWSRegistry(redis, close_code=1000)
    await redis.aclose()


async def test_bad_close_arguments_lose_nothing() -> None:
    redis = unused_redis()
    registry = RedisSessionWSRegistry(redis)
    with pytest.raises(TypeError, match="tuple of those"):
        await registry.close_all_session(1.5)
    with pytest.raises(TypeError, match="tuple of those"):
        await registry.close_all_key(("identity", None))
    with pytest.raises(ValueError, match="wait"):
        await registry.close_all_session("abc", wait=0)
    assert 1.5 not in registry.revoked and "abc" not in registry.revoked
    assert registry.stats()["publish_failures"] == 0
    await redis.aclose()


@pytest.mark.parametrize("method", ["close_all_session", "close_all_key"])
@pytest.mark.parametrize(
    ("wait", "error", "words"),
    [
        (float("inf"), ValueError, r"wait must be a positive, finite number of seconds"),
        (float("nan"), ValueError, r"wait must be .* at most 3600 \(1 hour\); got nan"),
        (-1.0, ValueError, r"wait must be .* at most 3600"),
        (0, ValueError, r"wait must be .* at most 3600"),
        (1e16, ValueError, r"wait must be .* at most 3600"),
        (True, TypeError, r"wait must be a number of seconds"),
        ("1", TypeError, r"wait must be a number of seconds"),
    ],
    ids=["inf", "nan", "negative", "zero", "huge", "bool", "str"],
)
async def test_wait_is_checked_as_the_seconds_options_are(
    method: str, wait: object, error: type[Exception], words: str
) -> None:
    """`wait=` follows `SECONDS_RANGES` (an infinite wait waited forever for a node
    that never answers), fails before anything is done, and says what to pass."""
    redis = unused_redis()
    registry = RedisSessionWSRegistry(redis)
    with pytest.raises(error, match=words):
        await getattr(registry, method)("abc", wait=wait)
    assert "abc" not in registry.revoked
    assert registry.stats()["publish_failures"] == 0 and registry.stats()["outbox"] == 0
    assert registry.stats()["key_closes"] == 0
    await redis.aclose()


@pytest.mark.parametrize(
    ("made", "error"),
    [
        (b"bytes-id", TypeError),  # a usable id in the core, but not sendable as JSON
        (0.5, ValueError),  # no id at all (the core's rule, checked first)
    ],
)
async def test_id_factory_must_make_sendable_ids(made: object, error: type[Exception]) -> None:
    redis = unused_redis()
    registry = RedisSessionWSRegistry(redis, id_factory=lambda request: made)
    with pytest.raises(error, match="id_factory"):
        await registry.generate_id(make_mocked_request("GET", "/"))
    await redis.aclose()


async def test_without_redis_closes_stay_local_and_say_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from aiohttp_session_ws.redis import ClusterPublishError

    redis = unused_redis()
    registry = RedisSessionWSRegistry(redis, redis_timeout=0.2)
    with caplog.at_level(logging.WARNING, logger="aiohttp_session_ws"):
        assert await registry.is_revoked("abc") is False
        for _ in range(3):
            with pytest.raises(ClusterPublishError, match="other nodes were not told"):
                await registry.close_all_session("abc")
        assert await registry.is_revoked("abc") is True  # this node remembers
    stats = registry.stats()
    assert stats["publish_failures"] == 3 and stats["redis_up"] is False
    assert sum("unreachable" in r.getMessage() for r in caplog.records) == 1
    assert "abc" not in repr(stats)
    await redis.aclose()


@pytest.mark.parametrize(("pool_size", "slots"), [(100, 49), (6, 2), (3, 1), (1, 1), (10_000, 64)])
def test_registry_uses_at_most_half_the_client_pool(pool_size: int, slots: int) -> None:
    from aiohttp_session_ws.redis.registry import call_slots

    assert call_slots(Redis(max_connections=pool_size)) == slots


def test_an_exhausted_pool_is_told_apart_from_a_failed_connection() -> None:
    from redis.exceptions import ConnectionError, MaxConnectionsError

    from aiohttp_session_ws.redis.registry import pool_exhausted

    assert pool_exhausted(MaxConnectionsError("Too many connections"))
    assert pool_exhausted(ConnectionError("Too many connections"))  # redis-py 5.0
    assert not pool_exhausted(ConnectionError("Connection refused"))


def test_outbox_keeps_order_drops_the_oldest_when_full_and_counts_it() -> None:
    from aiohttp_session_ws.redis.outbox import Outbox
    from aiohttp_session_ws.redis.transport import Mark

    clock = Clock()
    outbox = Outbox(3, clock=clock)
    for i in range(5):
        outbox.add("session", f"s{i}", [Mark(f"revoked:{i}", 600.0)])
    assert [e.target for e in outbox.due()] == ["s2", "s3", "s4"]
    assert (outbox.unsent, outbox.dropped) == (3, 2)
    clock.now += 10
    due = outbox.due()
    assert [round(m.ttl) for m in due[0].live_marks(clock.now)] == [590]  # what is left
    for entry in due:
        outbox.sent(entry, keep=False)
    assert (len(outbox), outbox.unsent) == (0, 0)
    with pytest.raises(ValueError, match="outbox_size"):
        Outbox(0)


def test_outbox_keeps_sent_closes_to_check_until_their_marks_expire() -> None:
    from aiohttp_session_ws.redis.outbox import Outbox
    from aiohttp_session_ws.redis.transport import Mark

    clock = Clock()
    outbox = Outbox(100, clock=clock)
    outbox.add("session", "old", [Mark("revoked:old", 100.0)], sent=True)
    clock.now += 60  # long after any outage window: still kept
    outbox.add("session", "recent", [Mark("revoked:recent", 600.0)], sent=True)
    outbox.add("session", "unmarked", [], sent=True)  # nothing to check it by: not kept
    outbox.add("session", "queued", [Mark("revoked:queued", 600.0)])
    assert [e.target for e in outbox.kept()] == ["old", "recent"]
    assert [e.target for e in outbox.due()] == ["queued"]
    clock.now += 50  # old's mark expired: nothing left to check
    assert [e.target for e in outbox.kept()] == ["recent"]
    (queued,) = outbox.due()
    outbox.sent(queued, keep=True)
    assert [e.target for e in outbox.kept()] == ["recent", "queued"]
    assert outbox.unsent == 0
    clock.now += 600  # every mark expired
    assert outbox.kept() == outbox.due() == []
    assert len(outbox) == 0


def test_close_messages_carry_when_they_were_issued() -> None:
    sent = wire.encode_close("session", "abc", "A", None, 1_700_000_000.1234)
    message = wire.decode(sent)
    assert isinstance(message, wire.CloseMessage) and message.at == 1_700_000_000.123
    assert wire.decode(wire.encode_close("session", "abc", "A", None)).at is None  # type: ignore[union-attr]
    for bad in ("soon", True, -1, 1e300):
        body = json.loads(sent)
        body["at"] = bad
        with pytest.raises(wire.MessageError, match="'at'"):
            wire.decode(json.dumps(body).encode())


def test_lineage_records_cross_nodes_as_json() -> None:
    from aiohttp_session_ws.lineage import Ended, Link
    from aiohttp_session_ws.redis.lineage import decode, encode
    from aiohttp_session_ws.redis.wire import MessageError

    records = (Link("0af3", 1.5), Link(7, 2), Link(("u", 7), 3.0), Ended(1.7e9), Ended(2.0, "b"))
    for record in records:
        assert decode(encode(record)) == record
    foreign = (b"not json", b'{"ended": "soon"}', b'{"ended": true}', b"1.5", b'{"id": "x"}')
    for value in foreign:
        with pytest.raises(MessageError):
            decode(value)
