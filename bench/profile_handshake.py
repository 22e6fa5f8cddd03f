"""Instructions per websocket connect, ours vs bare, counted by valgrind's callgrind.

`python -m bench.profile_handshake [--connects N] [--repeat R] [--keep DIR]`

Each contender's server (`bench/servers/session_ws_app.py` for `ours`,
`bench/servers/bare.py` for `bare`, as the handshake scenario starts them) runs
under `valgrind --tool=callgrind --instr-atstart=no`. The client (this process,
aiohttp's client as in the bench) logs in and warms the server up with connects
that are not counted, then `callgrind_control -i on` starts the count, N
connect+close cycles run (the handshake scenario's `load.connect_close`, one at a
time by default, so the server's work per connect does not depend on how the
machine schedules the two processes), and `callgrind_control -i off` stops it. The
server is then stopped and the count (the `totals:` Ir of the callgrind
output) is divided by N. Instruction counts do not depend on the other load on the
machine; they repeat within about 0.1-0.5% (the cyclic GC and aiohttp's timers are
the noise). Run it from the project's venv; it needs `valgrind` (with
`callgrind_control`) on PATH.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from yarl import URL

from . import load
from .procs import SERVERS

CONTENDERS = {"ours": "session_ws_app.py", "bare": "bare.py"}
SERVER_ENV = {
    # Fixed string hashes: set and dict layouts repeat from run to run.
    "PYTHONHASHSEED": "0",
    # Blocks from 4 KiB up are mmapped, so a growing one (the regex engine's stack,
    # about 20 per connect) is mremapped, not copied: whether glibc can grow it in
    # place depends on the heap's layout, which any code change shifts, and the
    # copies swing the count by about 12,000 instructions per connect.
    "GLIBC_TUNABLES": "glibc.malloc.mmap_threshold=4096",
}
SETTLE = 1.0
"""Seconds to wait after the cycles, before counting stops (under callgrind the
server runs about 50 times slower than the client)."""


class CallgrindServer:
    """A bench server script run under callgrind, with collection off until `count()`."""

    def __init__(self, script: str, out_file: Path) -> None:
        self.out_file = out_file
        self.proc = subprocess.Popen(
            [
                "valgrind",
                "--tool=callgrind",
                "--instr-atstart=no",
                f"--callgrind-out-file={out_file}",
                sys.executable,
                "-s",
                str(SERVERS / script),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            cwd=SERVERS,
            env={**os.environ, **SERVER_ENV},
        )
        assert self.proc.stdout is not None
        line = ""
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if line.startswith("PORT "):
                self.url = URL.build(scheme="http", host="127.0.0.1", port=int(line.split()[1]))
                return
            if not line and self.proc.poll() is not None:
                break
        self.proc.kill()
        raise RuntimeError(f"{script} under callgrind did not start (last output: {line!r})")

    def collect(self, on: bool) -> None:
        """Switch instrumentation (and so counting) on or off, through callgrind_control."""
        subprocess.run(
            ["callgrind_control", "-i", "on" if on else "off", str(self.proc.pid)],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=120,
        )

    def stop(self) -> int:
        """Stop the server (SIGTERM); return the instructions counted."""
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(300)
        text = self.out_file.read_text()
        found = re.search(r"^totals:\s+(\d+)", text, re.MULTILINE)
        if found is None:
            raise RuntimeError(f"no instruction total in {self.out_file}")
        return int(found.group(1))


async def cycles(base: URL, n: int, concurrency: int) -> None:
    """`n` connect+close cycles on one session, `concurrency` at a time, then a pause
    for the server to finish closing the last connections."""
    async with load.client() as http:
        cookie = await load.login(http, base)
        url = base / "ws"
        await load.bounded_gather(
            [lambda: load.connect_close(http, url, cookie)] * n, limit=concurrency
        )
    await asyncio.sleep(SETTLE)


def measure(name: str, connects: int, warmup: int, concurrency: int, out_dir: Path) -> float:
    """Instructions per connect of one contender's server (one fresh process)."""
    out_file = out_dir / f"callgrind.{name}.{os.getpid()}.{time.monotonic_ns()}"
    server = CallgrindServer(CONTENDERS[name], out_file)
    try:
        asyncio.run(cycles(server.url, warmup, concurrency))
        server.collect(True)
        asyncio.run(cycles(server.url, connects, concurrency))
        server.collect(False)
    except BaseException:
        server.proc.kill()
        raise
    return server.stop() / connects


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile_handshake", description=__doc__)
    parser.add_argument("--connects", type=int, default=300, help="counted cycles (300)")
    parser.add_argument("--warmup", type=int, default=50, help="uncounted cycles first (50)")
    parser.add_argument("--concurrency", type=int, default=1, help="cycles in flight (1)")
    parser.add_argument("--repeat", type=int, default=1, help="fresh servers per contender (1)")
    parser.add_argument(
        "--contenders", nargs="+", default=list(CONTENDERS), choices=list(CONTENDERS)
    )
    parser.add_argument(
        "--keep", type=Path, help="keep the callgrind files here (for callgrind_annotate)"
    )
    args = parser.parse_args(argv)
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        parser.error("needs valgrind and callgrind_control on PATH")
    with tempfile.TemporaryDirectory() as tmp:
        out_dir = args.keep or Path(tmp)
        out_dir.mkdir(parents=True, exist_ok=True)
        results: dict[str, list[float]] = {name: [] for name in args.contenders}
        for _ in range(args.repeat):
            for name in args.contenders:  # alternate, as the bench does
                per = measure(name, args.connects, args.warmup, args.concurrency, out_dir)
                results[name].append(per)
                print(f"{name}: {per:,.0f} instructions/connect", file=sys.stderr, flush=True)
    print(
        f"{args.connects} counted connects after {args.warmup} warm-up, "
        f"{args.concurrency} in flight"
    )
    best = {name: min(values) for name, values in results.items()}
    for name, values in results.items():
        runs = ", ".join(f"{v / 1e6:.4f}" for v in values)
        print(f"{name:5} {best[name] / 1e6:.4f} M instructions/connect (runs: {runs})")
    if "ours" in best and "bare" in best:
        ours, bare = best["ours"], best["bare"]
        print(f"ours/bare {ours / bare:.3f}  bare/ours {bare / ours:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
