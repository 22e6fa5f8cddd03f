"""The README's Python snippets run as shown and pass `mypy --strict` (issue #14).

Every ```python block is a complete module, except one preceded by
``<!-- snippet: continues NAME -->``, which is checked appended to the block
named by ``<!-- snippet: NAME -->``. The quick start, the push-only example and
the security app are also driven over real sockets.
"""

from __future__ import annotations

import asyncio
import os
import re
import runpy
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import CookieJar, WSMsgType, web

from aiohttp_session_ws import REGISTRY_KEY, SESSION_ENDED_CODE

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
SECRET = "x" * 43 + "="  # 32 bytes of URL-safe base64, for the examples' SESSION_SECRET

# Runs a snippet as a script, with web.run_app made a no-op (it would serve forever).
RUNNER = """
import runpy, sys, warnings
from aiohttp import web
warnings.filterwarnings("ignore", category=web.NotAppKeyWarning)
web.run_app = lambda app, **kwargs: None
runpy.run_path(sys.argv[1], run_name="__main__")
"""


@dataclass
class Snippet:
    line: int
    code: str
    name: str | None = None
    continues: str | None = None


def snippets() -> list[Snippet]:
    found: list[Snippet] = []
    lines = README.read_text(encoding="utf-8").splitlines()
    marker = ""
    index = 0
    while index < len(lines):
        line = lines[index]
        if line.strip() == "```python":
            end = lines.index("```", index + 1)
            snippet = Snippet(index + 1, "\n".join(lines[index + 1 : end]) + "\n")
            match = re.fullmatch(r"<!-- snippet: (continues )?([\w-]+) -->", marker)
            if match:
                if match.group(1):
                    snippet.continues = match.group(2)
                else:
                    snippet.name = match.group(2)
            found.append(snippet)
            index = end
        elif line.strip():
            marker = line.strip()
        index += 1
    return found


def modules() -> dict[str, str]:
    """Each snippet as the module it is checked as, by README line."""
    named = {s.name: s.code for s in snippets() if s.name}
    result = {}
    for snippet in snippets():
        code = snippet.code
        if snippet.continues:
            assert snippet.continues in named, f"README line {snippet.line}: unknown snippet"
            code = named[snippet.continues] + "\n" + code
        result[f"readme_line_{snippet.line}"] = code
    return result


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("readme")
    for name, code in modules().items():
        (folder / f"{name}.py").write_text(code, encoding="utf-8")
    return folder


def test_the_readme_has_the_snippets_this_file_drives() -> None:
    codes = [s.code for s in snippets()]
    assert len(codes) >= 10
    assert any("async def handle_feed" in code for code in codes)
    assert any("treat_as_secure_origin" in code for code in codes)


def test_snippets_pass_mypy_strict(written: Path) -> None:
    (written / "mypy.ini").write_text("[mypy]\nstrict = True\npython_version = 3.10\n")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--config-file",
            "mypy.ini",
            "--cache-dir",
            str(ROOT / ".mypy_cache" / "readme"),
            *sorted(p.name for p in written.glob("readme_line_*.py")),
        ],
        cwd=written,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("name", sorted(modules()))
def test_snippet_runs_as_shown(written: Path, name: str) -> None:
    code = (written / f"{name}.py").read_text(encoding="utf-8")
    if "def test_" in code:  # a test module: run it with pytest, as a user would
        command = [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-o",
            "asyncio_mode=auto",
            "-W",
            "ignore::aiohttp.web_exceptions.NotAppKeyWarning",
            f"{name}.py",
        ]
    else:
        command = [sys.executable, "-c", RUNNER, f"{name}.py"]
    result = subprocess.run(
        command,
        cwd=written,
        env={**os.environ, "SESSION_SECRET": SECRET},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _app_of(code: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> web.Application:
    """Run a snippet in this process and return the app it made (or would serve)."""
    served: list[web.Application] = []
    monkeypatch.setattr(web, "run_app", lambda app, **kwargs: served.append(app))
    monkeypatch.setenv("SESSION_SECRET", SECRET)
    path = tmp_path / "snippet.py"
    path.write_text(code, encoding="utf-8")
    namespace = runpy.run_path(str(path), run_name="__main__")
    app = served[0] if served else namespace["app"]
    assert isinstance(app, web.Application)
    return app


def _snippet_with(text: str) -> str:
    (code,) = [code for code in modules().values() if text in code]
    return code


async def test_quick_start_app(
    aiohttp_client: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = _app_of(_snippet_with("async def handle_reset"), tmp_path, monkeypatch)
    client = await aiohttp_client(app)
    ws = await client.ws_connect("/ws")
    await ws.send_str("hello")
    assert await ws.receive_str(timeout=5) == "heard hello"
    assert (await client.post("/reset")).status == 200
    msg = await ws.receive(timeout=5)
    assert msg.type is WSMsgType.CLOSE and msg.data == SESSION_ENDED_CODE


async def test_push_only_example(
    aiohttp_client: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = _app_of(_snippet_with("async def handle_feed"), tmp_path, monkeypatch)
    client = await aiohttp_client(app)
    ws = await client.ws_connect("/feed")
    assert "time" in await ws.receive_json(timeout=5)
    assert "time" in await ws.receive_json(timeout=5)
    await ws.close()  # answered, because the handler reads
    assert ws.close_code == aiohttp.WSCloseCode.OK
    registry = app[REGISTRY_KEY]
    for _ in range(100):
        if len(registry) == 0:
            break
        await asyncio.sleep(0.02)
    assert len(registry) == 0


async def test_security_app_one_call_setup(
    aiohttp_server: Any, aiohttp_client: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    code = _snippet_with("aiohttp_session_ws.security.setup(app, SessionIdentityPolicy()")
    app = _app_of(code, tmp_path, monkeypatch)
    server = await aiohttp_server(app)
    # The example's cookies are Secure: the README's testing advice, applied.
    jar = CookieJar(unsafe=True, treat_as_secure_origin=[server.make_url("/")])
    client = await aiohttp_client(server, cookie_jar=jar)
    login = await client.post("/login", data={"login": "alice"}, allow_redirects=False)
    assert login.status == 302
    ws = await client.ws_connect("/ws")
    assert await ws.receive_json(timeout=5) == {"user": "alice"}
    assert (await client.post("/logout", allow_redirects=False)).status == 302
    msg = await ws.receive(timeout=5)
    assert msg.type is WSMsgType.CLOSE and msg.data == SESSION_ENDED_CODE
    again = await client.ws_connect("/ws")
    assert await again.receive_json(timeout=5) == {"user": None}
    await again.close()


def test_readme_links_are_absolute_and_point_at_the_project_url() -> None:
    """Relative links break on the package index page."""
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    (repository,) = re.findall(r'^Repository = "([^"]+)"', pyproject, re.M)
    text = README.read_text(encoding="utf-8")
    targets = re.findall(r"\]\(([^)\s]+)\)", text) + re.findall(r"^\[[^\]]+\]: (\S+)", text, re.M)
    relative = [t for t in targets if not t.startswith(("https://", "http://", "#"))]
    assert relative == []
    github = [t for t in targets if t.startswith("https://github.com/") and "aio-libs" not in t]
    assert github and all(t.startswith(repository + "/") for t in github), github


def test_every_install_line_pins_version_2() -> None:
    """An index install must fail loudly (only 1.1.1 is there) rather than give 1.1.1."""
    lines = [
        line
        for line in README.read_text(encoding="utf-8").splitlines()
        if "pip install" in line and "aiohttp-session-ws" in line
    ]
    assert lines
    for line in lines:
        by_name = re.findall(r"aiohttp-session-ws(\[[\w,]+\])?(\S*)", line)
        for _, rest in by_name:
            assert rest.startswith((">=2", " @")) or " @ git+" in line, line
