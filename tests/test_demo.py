"""The reset demo over a real server."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from typing import Any

from aiohttp import WSMsgType

from aiohttp_session_ws import SESSION_ENDED_CODE
from demo_reset.app import make_app


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
    assert msg.type is WSMsgType.CLOSE and ws.close_code == SESSION_ENDED_CODE
    ws2 = await client.ws_connect("/ws")
    assert (await ws2.receive_json(timeout=5))["session"] != first["session"]
    await ws2.close()


def test_python_m_demo_reset_is_ours_even_beside_aiohttp_securitys_demo() -> None:
    """aiohttp-security installs a top-level `demo` package; ours has its own name."""
    root = Path(__file__).resolve().parent.parent
    result = subprocess.run(
        [sys.executable, "-m", "demo_reset", "--help"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "python -m demo_reset" in result.stdout and "reset demo" in result.stdout
    spec = importlib.util.find_spec("demo_reset")
    assert spec is not None and spec.origin is not None
    assert Path(spec.origin).resolve().parent == root / "demo_reset"
