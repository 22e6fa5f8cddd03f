"""Load client, run in its own process (its own file descriptors and CPU).

    python -m tests.support.load_client URL SESSIONS PER_SESSION

Makes SESSIONS sessions (GET /id), opens PER_SESSION websockets in each and
prints "open N". On a line "reset" on stdin it resets every session at once
(GET /reset), waits for every socket's next frame and prints one JSON line:
{"frames": [[type, close_code, extra, count], ...], "errors": [...]}.
"""

from __future__ import annotations

import asyncio
import json
import resource
import sys
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import aiohttp

T = TypeVar("T")


async def bounded(calls: list[Callable[[], Awaitable[T]]], limit: int = 200) -> list[T]:
    """Run `calls` concurrently, at most `limit` at a time."""
    gate = asyncio.Semaphore(limit)

    async def one(call: Callable[[], Awaitable[T]]) -> T:
        async with gate:
            return await call()

    return await asyncio.gather(*(one(call) for call in calls))


async def run(url: str, sessions: int, per_session: int) -> dict[str, Any]:
    connector = aiohttp.TCPConnector(limit=0)
    jar = aiohttp.DummyCookieJar()
    async with aiohttp.ClientSession(connector=connector, cookie_jar=jar) as http:

        async def new_session() -> str:
            async with http.get(f"{url}/id") as resp:
                assert resp.status == 200, resp.status
                return f"AIOHTTP_SESSION={resp.cookies['AIOHTTP_SESSION'].coded_value}"

        async def connect(cookie: str) -> aiohttp.ClientWebSocketResponse:
            ws = await http.ws_connect(f"{url}/ws", headers={"Cookie": cookie})
            await ws.receive_json(timeout=60)
            return ws

        async def reset(cookie: str) -> int:
            async with http.get(f"{url}/reset", headers={"Cookie": cookie}) as resp:
                return resp.status

        async def next_frame(ws: aiohttp.ClientWebSocketResponse) -> tuple[Any, ...]:
            msg = await ws.receive(timeout=120)
            return int(msg.type), ws.close_code, msg.extra

        cookies = await bounded([new_session for _ in range(sessions)])
        sockets = await bounded(
            [lambda c=c: connect(c) for c in cookies for _ in range(per_session)]  # type: ignore[misc]
        )
        print(f"open {len(sockets)}", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        frames = [asyncio.ensure_future(next_frame(ws)) for ws in sockets]
        statuses = await bounded([lambda c=c: reset(c) for c in cookies], limit=sessions)  # type: ignore[misc]
        received = Counter(await asyncio.gather(*frames))
        for ws in sockets:
            await ws.close()
    errors = [status for status in statuses if status != 200]
    return {"frames": [[*frame, n] for frame, n in received.items()], "errors": errors}


def main() -> None:
    url, sessions, per_session = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    print(json.dumps(asyncio.run(run(url, sessions, per_session))), flush=True)


if __name__ == "__main__":
    main()
