"""Starting and stopping server processes (each contender in its own interpreter)."""

from __future__ import annotations

import resource
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from yarl import URL

SERVERS = Path(__file__).parent / "servers"


def raise_fd_limit() -> int:
    """Raise this process's RLIMIT_NOFILE to the hard limit; return it."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


@dataclass
class Server:
    """A server script running under `python`, listening on 127.0.0.1."""

    script: str
    python: str = sys.executable
    args: list[str] = field(default_factory=list)
    proc: subprocess.Popen[str] | None = None
    url: URL = field(default_factory=URL)

    def start(self, timeout: float = 20.0) -> Server:
        """Start the process and wait for its `PORT <n>` line."""
        # -s: no user site; the script's own directory goes first on sys.path, so
        # the baseline interpreter imports its installed 1.1.1, never this checkout.
        self.proc = subprocess.Popen(
            [self.python, "-s", str(SERVERS / self.script), *self.args],
            stdout=subprocess.PIPE,
            text=True,
            cwd=SERVERS,
        )
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        line = ""
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if line.startswith("PORT "):
                self.url = URL.build(scheme="http", host="127.0.0.1", port=int(line.split()[1]))
                return self
            if not line and self.proc.poll() is not None:
                break
        self.stop()
        raise RuntimeError(f"server {self.script} did not start (last output: {line!r})")

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 5 s."""
        if self.proc is None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
