"""Run `python -m demo_auth` in a real process on a free port, and always stop it."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from tests.support.redis_server import free_port

ROOT = Path(__file__).resolve().parents[2]
TEST_SECRET = base64.urlsafe_b64encode(b"demo-auth-test-key".ljust(32, b".")).decode()


class DemoProcess:
    """One `python -m demo_auth` process; `stop()` terminates it (then kills it).

    Subclasses serve another module: set `module` and a `ready_path` answering 200.
    """

    module = "demo_auth"
    ready_path = "/api/me"

    module = "demo_auth"
    ready_path = "/api/me"

    def __init__(self, *args: str, port: int | None = None, secret: str | None = TEST_SECRET):
        self.port = port or free_port()
        self.secret = secret
        self.args = ["--port", str(self.port), *args]
        self.proc: subprocess.Popen[bytes] | None = None
        # a file, not a pipe: a full pipe would block the process; closed by close()
        self.log = tempfile.TemporaryFile()  # noqa: SIM115

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 15.0) -> None:
        self.launch()
        self.wait_ready(timeout)

    def launch(self) -> None:
        """Start the process; `wait_ready` waits until it serves."""
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        env.pop("DEMO_AUTH_SECRET", None)
        if self.secret is not None:
            env["DEMO_AUTH_SECRET"] = self.secret
        self.proc = subprocess.Popen(
            [sys.executable, "-m", self.module, *self.args],
            cwd=ROOT,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def wait_ready(self, timeout: float = 15.0) -> None:
        assert self.proc is not None, "launch() first"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                code, self.proc = self.proc.returncode, None
                raise RuntimeError(f"{self.module} exited with {code}:\n{self.output()}")
            try:
                with urllib.request.urlopen(self.url + self.ready_path, timeout=1) as resp:
                    if resp.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                time.sleep(0.05)
        self.stop()
        raise TimeoutError(f"{self.module} did not answer on port {self.port} within {timeout}s")

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read().decode("utf-8", "replace")

    def stop(self) -> int | None:
        """Terminate (SIGTERM: a clean shutdown), kill after 5 s; return the exit code."""
        if self.proc is None:
            return None
        proc, self.proc = self.proc, None
        if proc.poll() is None:
            proc.terminate()
        try:
            return proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            return proc.wait()

    def close(self) -> None:
        self.stop()
        self.log.close()
