"""`python -m demo_auth` as a user runs it: the banner, the key warning, clear errors."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from demo_auth.settings import decode_secret_key, encode_secret_key, new_secret_key
from tests.support.demo_process import ROOT, DemoProcess
from tests.support.redis_server import free_port

pytestmark = pytest.mark.timeout(60)


def run_demo(*args: str, secret: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run the demo expecting it to refuse to start."""
    env = {k: v for k, v in os.environ.items() if k != "DEMO_AUTH_SECRET"}
    if secret is not None:
        env["DEMO_AUTH_SECRET"] = secret
    return subprocess.run(
        [sys.executable, "-m", "demo_auth", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_banner_without_a_secret_warns_and_prints_url_and_accounts() -> None:
    demo = DemoProcess(secret=None)
    try:
        demo.start()
        assert demo.stop() == 0
        output = demo.output()
    finally:
        demo.close()
    assert f"login demo on http://127.0.0.1:{demo.port}/" in output
    assert f"websockets accepted from: http://127.0.0.1:{demo.port}, " in output
    assert "alice / wonderland" in output and "bob / builder" in output
    assert "WARNING: DEMO_AUTH_SECRET is not set" in output
    suggested = output.split("export DEMO_AUTH_SECRET=")[1].split()[0]
    assert len(decode_secret_key(suggested)) == 32


@pytest.mark.parametrize(
    ("args", "secret", "message"),
    [
        ((), "too-short", "DEMO_AUTH_SECRET must be 32 random bytes in URL-safe base64"),
        ((), "!" * 44, "DEMO_AUTH_SECRET must be 32 random bytes in URL-safe base64"),
        (("--port", "0"), None, "port must be between 1 and 65535"),
        (("--port", "70000"), None, "port must be between 1 and 65535"),
        (("--origin", "not an origin"), None, "is not an origin"),
        (("--redis", "http://127.0.0.1:1/0"), None, "cannot use Redis at http://127.0.0.1:1/0"),
        (("--redis", f"redis://127.0.0.1:{free_port()}/0"), None, "cannot use Redis at redis://"),
    ],
)
def test_bad_input_is_a_clear_error(
    args: tuple[str, ...], secret: str | None, message: str
) -> None:
    result = run_demo(*args, secret=secret)
    assert result.returncode != 0
    assert message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    assert "login demo on" not in result.stdout  # it did not start


def test_secret_key_round_trip() -> None:
    key = new_secret_key()
    assert decode_secret_key(encode_secret_key(key)) == key
    assert decode_secret_key(" " + encode_secret_key(key) + "\n") == key
    with pytest.raises(ValueError, match="44 characters"):
        decode_secret_key(encode_secret_key(key[:16]))
