"""Units with no server: close codes, reasons, revocation memory, origins."""

from __future__ import annotations

import pytest

from aiohttp_session_ws import SessionWSRegistry
from aiohttp_session_ws.codes import encode_reason
from aiohttp_session_ws.lineage import Ended, Link, SessionLineage
from aiohttp_session_ws.origin import normalize_origin
from aiohttp_session_ws.revocation import RevokedIds


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_revoked_ids_expire_after_ttl() -> None:
    clock = FakeClock()
    revoked = RevokedIds(ttl=10, max_size=100, clock=clock)
    revoked.add("a")
    clock.now = 9.9
    assert "a" in revoked
    clock.now = 10.0
    assert "a" not in revoked
    assert len(revoked) == 0


def test_revoked_ids_are_capped_oldest_first() -> None:
    clock = FakeClock()
    revoked = RevokedIds(ttl=1000, max_size=3, clock=clock)
    for key in "abcd":
        revoked.add(key)
        clock.now += 1
    assert len(revoked) == 3
    assert "a" not in revoked and all(k in revoked for k in "bcd")
    revoked.add("b")  # re-revoking refreshes: now "c" is the oldest
    revoked.add("e")
    assert "c" not in revoked and "b" in revoked


def test_revoked_ids_memory_stays_bounded_under_churn() -> None:
    clock = FakeClock()
    revoked = RevokedIds(ttl=5, max_size=1000, clock=clock)
    for i in range(50_000):
        revoked.add(i)
        clock.now += 0.001
    assert len(revoked) == 1000


@pytest.mark.parametrize(
    ("options", "error", "words"),
    [
        ({"close_code": 1000}, ValueError, "4000-4499"),
        ({"close_code": 4500}, ValueError, "4000-4499"),
        ({"close_code": "4001"}, TypeError, "int"),
        ({"close_message": "x" * 124}, ValueError, "at most 123 bytes"),
        ({"close_message": "é" * 62}, ValueError, "at most 123 bytes"),
        ({"close_message": b"\xff\xfe"}, ValueError, "UTF-8"),
        ({"close_message": 42}, TypeError, "str or bytes"),
        ({"close_timeout": 0}, ValueError, "positive"),
        ({"revocation_ttl": 0}, ValueError, "positive"),
        ({"close_timeout": -1}, ValueError, "close_timeout must be a positive, finite .* got -1"),
        ({"close_timeout": float("nan")}, ValueError, "positive, finite"),
        ({"revocation_ttl": float("inf")}, ValueError, "revocation_ttl .* positive, finite"),
        ({"close_timeout": True}, TypeError, "close_timeout must be a number of seconds"),
        ({"close_timeout": "2"}, TypeError, "number of seconds .* got str"),
        ({"revocation_max_size": 0}, ValueError, "at least 1"),
        ({"allowed_origins": "https://a.example"}, TypeError, "list of origins"),
        ({"allowed_origins": ["a.example"]}, ValueError, "is not an origin"),
    ],
)
def test_bad_registry_options_fail_at_construction(
    options: dict[str, object], error: type[Exception], words: str
) -> None:
    with pytest.raises(error, match=words):
        SessionWSRegistry(**options)  # type: ignore[arg-type]


def test_reason_limits() -> None:
    assert encode_reason("x" * 123) == b"x" * 123
    assert encode_reason("session ended") == b"session ended"


@pytest.mark.parametrize(
    ("raw", "normal"),
    [
        ("HTTP://Example.COM:80", "http://example.com"),
        ("https://example.com:8443/path", "https://example.com:8443"),
        ("http://[::1]:8080", "http://[::1]:8080"),
    ],
)
def test_origin_normalization(raw: str, normal: str) -> None:
    assert normalize_origin(raw) == normal


class _FakeSocket:
    """The three members `close_sockets` uses; `close` behaves as given."""

    def __init__(self, outcome: object, *, closed: bool = False) -> None:
        self.outcome = outcome
        self.closed = closed
        self.prepared = True
        self.calls = 0

    async def close(self, *, code: int, message: bytes) -> bool:
        self.calls += 1
        if isinstance(self.outcome, BaseException):
            self.closed = True
            raise self.outcome
        self.closed = True
        return bool(self.outcome)


async def test_close_sockets_counts_only_the_closes_it_made() -> None:
    """True: closed here; False: a racing caller closed it first (not counted);
    an error or a cancellation after the close started: closed here, logged, and
    the rest of the fan-out goes on."""
    import asyncio
    from typing import Any

    from aiohttp_session_ws.closing import close_sockets

    sockets: list[Any] = [
        _FakeSocket(True),
        _FakeSocket(False),
        _FakeSocket(True, closed=True),
        _FakeSocket(ConnectionResetError()),
        _FakeSocket(asyncio.CancelledError()),
        _FakeSocket(True),
    ]
    count = await close_sockets(sockets, code=4001, message=b"", timeout=1.0)
    assert count == 4
    assert [ws.calls for ws in sockets] == [1, 1, 0, 1, 1, 1]


def test_lineage_keeps_the_latest_successor_until_it_expires() -> None:
    now = [0.0]
    lineage = SessionLineage(ttl=10, max_size=100, clock=lambda: now[0])
    assert lineage.swap("a", Link("b", 1.0)) is None
    # a second response replaced "a": it learns of "b"
    assert lineage.swap("a", Link("c", 2.0)) == Link("b", 1.0)
    assert lineage.get("a") == Link("c", 2.0)
    assert lineage.get("b") is None
    now[0] = 9.9
    assert lineage.get("a") == Link("c", 2.0)
    now[0] = 10.0
    assert lineage.get("a") is None
    assert len(lineage) == 0


def test_lineage_forgets_its_oldest_entry_when_full() -> None:
    lineage = SessionLineage(ttl=1000, max_size=3, clock=lambda: 0.0)
    for retired in "abcd":
        lineage.swap(retired, Ended(0.0))
    assert lineage.get("a") is None
    assert [lineage.get(r) for r in "bcd"] == [Ended(0.0)] * 3
    assert len(lineage) == 3


def test_lineage_options_are_checked() -> None:
    with pytest.raises(ValueError, match="revocation_ttl"):
        SessionLineage(ttl=0)
    with pytest.raises((TypeError, ValueError), match="revocation_max_size"):
        SessionLineage(max_size=0)
