"""The core never imports aiohttp_security, and works without it installed."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_core_does_not_import_aiohttp_security() -> None:
    result = run(
        """
        import sys
        import aiohttp_session_ws, aiohttp_session_ws.registry, aiohttp_session_ws.context
        print(sorted(m for m in sys.modules if m.startswith("aiohttp_security")))
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_core_works_without_aiohttp_security_installed() -> None:
    result = run(
        """
        import sys
        sys.modules["aiohttp_security"] = None  # as if not installed: importing it fails
        import aiohttp_session_ws
        from aiohttp import web
        app = web.Application()
        aiohttp_session_ws.setup(app, aiohttp_session_ws.SessionWSRegistry())
        try:
            import aiohttp_session_ws.security
        except ImportError as exc:
            print("security:", exc)
        """
    )
    assert result.returncode == 0, result.stderr
    assert "pip install 'aiohttp-session-ws[security]'" in result.stdout
