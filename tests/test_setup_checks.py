"""Set-up mistakes fail at startup or import, with a message that says what to do."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from typing import Any

import aiohttp_session
import pytest
from aiohttp import web

from aiohttp_session_ws import SessionWSRegistry, session_ws_middleware, setup
from tests.core_app import handle_id


def _app(middlewares: list[Any], *, storage_after: bool = False) -> web.Application:
    app = web.Application(middlewares=middlewares)
    if storage_after:  # the common slip: aiohttp_session.setup appends its middleware
        aiohttp_session.setup(app, aiohttp_session.SimpleCookieStorage())
    app.router.add_get("/id", handle_id)
    setup(app, SessionWSRegistry())
    return app


async def test_session_ws_middleware_before_aiohttp_sessions_fails_at_startup(
    aiohttp_client: Any,
) -> None:
    for app in (
        _app([session_ws_middleware], storage_after=True),
        _app(
            [
                session_ws_middleware,
                aiohttp_session.session_middleware(aiohttp_session.SimpleCookieStorage()),
            ]
        ),
    ):
        with pytest.raises(RuntimeError) as caught:
            await aiohttp_client(app)
        message = str(caught.value)
        assert "place session_ws_middleware after it" in message
        assert "lists session_ws_middleware before it" in message


async def test_the_right_order_starts_and_serves(aiohttp_client: Any) -> None:
    app = web.Application()
    aiohttp_session.setup(app, aiohttp_session.SimpleCookieStorage())
    app.middlewares.append(session_ws_middleware)
    app.router.add_get("/id", handle_id)
    setup(app, SessionWSRegistry())
    client = await aiohttp_client(app)
    assert (await (await client.get("/id")).json())["id"]


def test_redis_layer_without_redis_py_names_the_extra() -> None:
    code = """
        import sys
        sys.modules["redis"] = None  # as if redis-py were not installed
        try:
            import aiohttp_session_ws.redis
        except ImportError as exc:
            print("redis:", exc)
        import aiohttp_session_ws  # the core still imports
    """
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "the 'redis' extra" in result.stdout
    assert "pip install 'redis>=5.0.1'" in result.stdout
