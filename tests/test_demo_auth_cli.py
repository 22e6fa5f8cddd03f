"""`python -m demo_auth` as a user runs it: the banner, the key warning, clear errors."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import aiohttp
import pytest
import redis

from demo_auth.settings import decode_secret_key, encode_secret_key, new_secret_key, redact_url
from tests.support.demo_auth_client import DemoUser
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


def test_a_busy_port_is_one_clear_line_and_a_non_zero_exit() -> None:
    """Item 5: no banner, no traceback."""
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        result = run_demo("--port", str(port))
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert f"cannot listen on 127.0.0.1:{port}" in lines[0] and "--port" in lines[0]
    assert "Traceback" not in result.stderr and "login demo on" not in result.stdout


@pytest.mark.parametrize(
    "url",
    [
        "redis://:s3cret-pw@127.0.0.1:{port}/0",
        "redis://admin:s3cret-pw@127.0.0.1:{port}/0",
        "redis://127.0.0.1:{port}/0?password=s3cret-pw",
    ],
)
def test_start_up_errors_never_print_redis_credentials(url: str) -> None:
    """Item 8."""
    result = run_demo("--redis", url.format(port=free_port()))
    assert result.returncode != 0
    assert "cannot use Redis at redis://" in result.stderr and "***" in result.stderr
    assert "s3cret-pw" not in result.stderr + result.stdout
    assert "admin" not in result.stderr


@pytest.mark.redis
async def test_banner_redacts_the_redis_password_and_logs_name_no_user(redis_url: str) -> None:
    """Item 8: a password-protected Redis; bob's login upgrades his hash (an INFO line)."""
    admin = redis.Redis.from_url(redis_url)
    admin.config_set("requirepass", "s3cret-pw")
    url = redis_url.replace("redis://", "redis://:s3cret-pw@")
    demo = DemoProcess("--redis", url)
    try:
        demo.start()
        jar = aiohttp.CookieJar(unsafe=True)  # cookies for 127.0.0.1
        async with aiohttp.ClientSession(demo.url, cookie_jar=jar) as client:
            bob = DemoUser(client)
            assert await bob.login("bob", "wrong") == 401
            assert await bob.login("bob", "builder") == 303
            assert await bob.me() == "bob"
        assert demo.stop() == 0
        output = demo.output()
    finally:
        demo.close()
        authed = redis.Redis.from_url(url)
        authed.config_set("requirepass", "")
        authed.close()
        admin.close()
    assert "s3cret-pw" not in output
    assert "shared through Redis at redis://***@127.0.0.1:" in output
    _banner, _, logs = output.partition("accounts: alice / wonderland, bob / builder")
    assert "upgraded a password hash to the current parameters" in logs
    assert "bob" not in logs and "alice" not in logs, logs


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://:pw@host/0", "redis://***@host/0"),
        ("rediss://user:pw@host:6380/1", "rediss://***@host:6380/1"),
        ("redis://host/0?password=pw&db=1", "redis://host/0?password=***&db=1"),
        ("redis://host/0", "redis://host/0"),
        ("unix:///run/redis.sock?password=pw", "unix:/run/redis.sock?password=***"),
    ],
)
def test_redact_url(url: str, shown: str) -> None:
    assert redact_url(url) == shown
