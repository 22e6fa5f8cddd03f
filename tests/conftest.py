from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest

from tests.support.redis_server import RedisServer

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def require(available: bool, what: str, install: str = "") -> None:
    """Skip locally, fail under CI=true, when a real dependency is missing.

    `install` is the command that provides it; the skip reason names it.
    """
    if available:
        return
    if IN_CI:
        pytest.fail(f"{what} is required under CI=true (.ci/run installs it)", pytrace=False)
    pytest.skip(f"{what} is not installed" + (f"; install it with: {install}" if install else ""))


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """One private redis-server per test run (never the shared one on 6379)."""
    require(
        shutil.which("redis-server") is not None, "redis-server", "apt-get install redis-server"
    )
    server = RedisServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> Iterator[str]:
    """The private server's URL, flushed after each test."""
    yield redis_server.url
    if redis_server.proc is None:  # a test killed it and did not restart it
        redis_server.start()
    import redis

    client = redis.Redis.from_url(redis_server.url)
    try:
        client.flushall()
    finally:
        client.close()
