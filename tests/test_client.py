"""Serving the browser client: `add_client_route`, and the module inside the wheel."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from aiohttp_session_ws import CLIENT_PATH, add_client_route
from tests.support.demo_process import ROOT


async def test_add_client_route_serves_the_module_under_a_versioned_url(
    aiohttp_client: Any,
) -> None:
    app = web.Application()
    url = add_client_route(app)
    path, _, version = url.partition("?v=")
    assert path == "/aiohttp_session_ws/session_ws.js" and len(version) >= 8
    client = await aiohttp_client(app)
    async with client.get(url) as resp:
        assert resp.status == 200
        assert resp.content_type in {"text/javascript", "application/javascript"}
        assert await resp.read() == CLIENT_PATH.read_bytes()
    async with client.get("/aiohttp_session_ws/") as resp:
        assert resp.status in {403, 404}  # no directory listing


async def test_add_client_route_with_another_prefix(aiohttp_client: Any) -> None:
    app = web.Application()
    assert add_client_route(app, "/js", name="client").startswith("/js/session_ws.js?v=")
    with pytest.raises(ValueError):
        add_client_route(app, "/js2", name="client")  # the name is taken


def test_the_module_is_an_es_module_without_imports() -> None:
    source = CLIENT_PATH.read_text()
    assert "export class SessionSocket" in source
    assert "\nimport " not in source and "require(" not in source  # dependency-free


@pytest.mark.timeout(300)
def test_the_module_is_in_the_wheel(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(ROOT)],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("aiohttp_session_ws-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        assert archive.read("aiohttp_session_ws/static/session_ws.js") == CLIENT_PATH.read_bytes()
