"""A server for the closing-handshake tests, run in its own process.

`python -m tests.support.close_app --port N [--close-timeout S]` serves one
websocket route per handler shape a user writes under `session_ws`:

- `/ws/async-for`: reads with `async for msg in ws`;
- `/ws/ticker`: reads with `async for` while a task sends ticks (demo_auth's shape);
- `/ws/push`: only sends, never reads (the 1.1.1 README handler);
- `/ws/receive`: an explicit `await ws.receive()` loop.

Each socket first sends `{"id": <session websocket id>}`. From tests/core_app.py:
`GET /id` gives the session its id, `GET /reset` closes the session's sockets
after the response (another request, as a logout does) and rotates the id.
`GET /page` is an empty page for browser tests, `GET /stats` the registry's
`stats()`. SIGTERM shuts the server down cleanly (every socket closed with 1001).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterator

from aiohttp import WSMsgType, web

from aiohttp_session_ws import REGISTRY_KEY, get_session_ws_id, session_ws
from tests import core_app
from tests.support.demo_process import DemoProcess

SHAPES = ("async-for", "ticker", "push", "receive")
TICK_SECONDS = 0.05
ENDS = (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR)


async def hello(request: web.Request, ws: web.WebSocketResponse) -> None:
    await ws.send_json({"id": await get_session_ws_id(request)})


async def shape_async_for(request: web.Request, ws: web.WebSocketResponse) -> None:
    async for _ in ws:
        pass


async def tick(ws: web.WebSocketResponse) -> None:
    with contextlib.suppress(ConnectionError):
        while not ws.closed:
            await ws.send_str("tick")
            await asyncio.sleep(TICK_SECONDS)


async def shape_ticker(request: web.Request, ws: web.WebSocketResponse) -> None:
    ticker = asyncio.create_task(tick(ws))
    try:
        async for _ in ws:
            pass
    finally:
        ticker.cancel()


async def shape_push(request: web.Request, ws: web.WebSocketResponse) -> None:
    while True:  # as in the 1.1.1 README: the next send after a close raises
        await ws.send_str("tick")
        await asyncio.sleep(TICK_SECONDS)


async def shape_receive(request: web.Request, ws: web.WebSocketResponse) -> None:
    while True:
        msg = await ws.receive()
        if msg.type in ENDS:
            return


HANDLERS: dict[str, Callable[[web.Request, web.WebSocketResponse], Awaitable[None]]] = {
    "async-for": shape_async_for,
    "ticker": shape_ticker,
    "push": shape_push,
    "receive": shape_receive,
}


async def handle_ws(request: web.Request) -> web.WebSocketResponse:
    body = HANDLERS[request.match_info["shape"]]
    async with session_ws(request) as ws:
        if not ws.closed:  # a revoked id is closed at once
            await hello(request, ws)
            await body(request, ws)
    return ws


async def handle_page(request: web.Request) -> web.Response:
    return web.Response(text="<!doctype html><title>close</title>", content_type="text/html")


async def handle_stats(request: web.Request) -> web.Response:
    return web.json_response(request.app[REGISTRY_KEY].stats())


def make_app(close_timeout: float = 2.0) -> web.Application:
    """tests/core_app.py's app (`/id`, `/reset`, `/ws`) with this module's routes."""
    app = core_app.make_app(close_timeout=close_timeout)
    app.router.add_get("/page", handle_page)
    app.router.add_get("/stats", handle_stats)
    app.router.add_get("/ws/{shape}", handle_ws)
    return app


class CloseServer(DemoProcess):
    """This module's server in its own process (`start()`, `stop()`, `close()`)."""

    module = "tests.support.close_app"
    ready_path = "/id"


@contextlib.contextmanager
def running(*args: str) -> Iterator[CloseServer]:
    """A started CloseServer (`args` as on the command line), always stopped."""
    process = CloseServer(*args, secret=None)
    try:
        process.start()
        yield process
    finally:
        process.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--close-timeout", type=float, default=2.0)
    args = parser.parse_args()
    web.run_app(
        make_app(args.close_timeout),
        host="127.0.0.1",
        port=args.port,
        print=None,
        access_log=None,
    )


if __name__ == "__main__":
    main()
