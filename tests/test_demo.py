"""The reset demo over a real server."""

from __future__ import annotations

from typing import Any

from aiohttp import WSMsgType

from aiohttp_session_ws import SESSION_ENDED_CODE
from demo.app import make_app


async def test_reset_demo(aiohttp_client: Any) -> None:
    client = await aiohttp_client(make_app())
    page = await client.get("/")
    assert page.status == 200 and "Reset session" in await page.text()
    ws = await client.ws_connect("/ws")
    first = await ws.receive_json(timeout=5)
    assert first["seconds"] == 0
    assert (await client.get("/reset")).status == 405  # POST only
    assert (await client.post("/reset")).status == 200
    msg = await ws.receive(timeout=5)
    while msg.type is WSMsgType.TEXT:
        msg = await ws.receive(timeout=5)
    assert msg.type is WSMsgType.CLOSE and msg.data == SESSION_ENDED_CODE
    ws2 = await client.ws_connect("/ws")
    assert (await ws2.receive_json(timeout=5))["session"] != first["session"]
    await ws2.close()
