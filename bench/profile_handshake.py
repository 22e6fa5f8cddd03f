"""Instructions per websocket connect, ours vs bare, counted by valgrind's callgrind.

`python -m bench.profile_handshake [--connects N] [--messages M] [--repeat R] [--keep DIR]`

Each contender's server (`bench/servers/session_ws_app.py` for `ours`,
`bench/servers/bare.py` for `bare`, as the handshake scenario starts them) runs
under `valgrind --tool=callgrind --instr-atstart=no` with PYTHONHASHSEED=0. The
client (this process, aiohttp's client as in the bench) logs in and warms the
server up with connects that are not counted, then `callgrind_control -i on`
starts the count, N connect+close cycles run (the handshake scenario's
`load.connect_close`, one at a time by default, so the server's work per connect
does not depend on how the machine schedules the two processes), and
`callgrind_control -i off` stops it. The server is then stopped and the count (the
`totals:` Ir of the callgrind output) is divided by N, once in all and once without
the instructions spent in libc's realloc (see `REALLOC_LINE`). The second figure is
the one to compare builds with: it does not depend on the other load on the machine
and repeats within about 0.1% for the same build. Run it from the project's venv;
it needs `valgrind` (with `callgrind_control` and `callgrind_annotate`) on PATH.

With `--messages M`, what is counted is M text messages echoed on one open socket
(send one, wait for the echo), after `--warmup` uncounted ones on that socket: the
instructions per message a handler reading with `async for` costs.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from yarl import URL

from . import load
from .procs import SERVERS

CONTENDERS = {"ours": "session_ws_app.py", "bare": "bare.py"}
SERVER_ENV = {"PYTHONHASHSEED": "0"}
"""Fixed string hashes: set and dict layouts repeat from run to run."""
REALLOC_LINE = re.compile(r"^\s*([\d,]+) \([^)]*\)\s+\S*malloc\.c:realloc ", re.MULTILINE)
"""libc's realloc in `callgrind_annotate --inclusive=yes`: not counted in the second
figure. The regex engine grows its stacks with it (about 20 per connect, in code
ours and bare share); whether a block grows in place or is copied depends on the
heap's layout, which any code change shifts, and those copies alone moved the count
by about 12,000 instructions per connect between builds."""
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
                # Not counted: libc's realloc. The regex engine grows its stacks with
                # it (about 20 per connect, in code ours and bare share); whether a
                # block grows in place or is copied depends on the heap's layout,
                # which any code change shifts, and the copies alone swung the count
                # by about 12,000 instructions per connect between builds.
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

    def stop(self) -> tuple[int, int]:
        """Stop the server (SIGTERM); return the instructions counted, and those
        spent in libc's `realloc` (callers included)."""
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(300)
        text = self.out_file.read_text()
        found = re.search(r"^totals:\s+(\d+)", text, re.MULTILINE)
        if found is None:
            raise RuntimeError(f"no instruction total in {self.out_file}")
        annotated = subprocess.run(
            ["callgrind_annotate", "--inclusive=yes", "--threshold=100", str(self.out_file)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        in_realloc = sum(
            int(match.group(1).replace(",", "")) for match in REALLOC_LINE.finditer(annotated)
        )
        return int(found.group(1)), in_realloc


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


async def echoes(server: CallgrindServer, n: int, warmup: int) -> None:
    """On one socket, `warmup` echoed messages, then `n` counted ones."""
    async with load.client() as http:
        cookie = await load.login(http, server.url)
        ws = await http.ws_connect(server.url / "ws", headers={"Cookie": cookie})

        async def echo(count: int) -> None:
            for _ in range(count):
                await ws.send_str("x")
                await ws.receive()

        await echo(warmup)
        await asyncio.to_thread(server.collect, True)
        await echo(n)
        await asyncio.sleep(SETTLE)  # the handler back in its read
        await asyncio.to_thread(server.collect, False)
        await ws.close()


def measure(
    name: str, connects: int, warmup: int, concurrency: int, out_dir: Path, messages: int = 0
) -> tuple[float, float]:
    """Instructions per connect (per message, with `messages`) of one contender's
    server (one fresh process): all of them, and all but those in libc's realloc."""
    out_file = out_dir / f"callgrind.{name}.{os.getpid()}.{time.monotonic_ns()}"
    server = CallgrindServer(CONTENDERS[name], out_file)
    try:
        if messages:
            asyncio.run(echoes(server, messages, warmup))
        else:
            asyncio.run(cycles(server.url, warmup, concurrency))
            server.collect(True)
            asyncio.run(cycles(server.url, connects, concurrency))
            server.collect(False)
    except BaseException:
        server.proc.kill()
        raise
    total, in_realloc = server.stop()
    units = messages or connects
    return total / units, (total - in_realloc) / units


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile_handshake", description=__doc__)
    parser.add_argument("--connects", type=int, default=300, help="counted cycles (300)")
    parser.add_argument("--warmup", type=int, default=50, help="uncounted cycles first (50)")
    parser.add_argument(
        "--messages", type=int, default=0, help="count echoed messages instead of connects"
    )
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
    runs: dict[str, list[tuple[float, float]]] = {name: [] for name in args.contenders}
    with tempfile.TemporaryDirectory() as tmp:
        out_dir = args.keep or Path(tmp)
        out_dir.mkdir(parents=True, exist_ok=True)
        for _ in range(args.repeat):
            for name in args.contenders:  # alternate, as the bench does
                run = measure(
                    name, args.connects, args.warmup, args.concurrency, out_dir, args.messages
                )
                runs[name].append(run)
                print(f"{name}: {run[0]:,.0f} ({run[1]:,.0f} w/o realloc)", file=sys.stderr)
    if args.messages:
        print(
            f"{args.messages} counted messages echoed on one socket after {args.warmup} "
            f"warm-up; M instructions per message, mean of {args.repeat}"
        )
    else:
        print(
            f"{args.connects} counted connects after {args.warmup} warm-up, "
            f"{args.concurrency} in flight; M instructions per connect, mean of {args.repeat}"
        )
    means = {}
    for name, values in runs.items():
        total = statistics.fmean(v[0] for v in values)
        net = statistics.fmean(v[1] for v in values)
        means[name] = (total, net)
        each = ", ".join(f"{v[1] / 1e6:.4f}" for v in values)
        print(
            f"{name:5} {total / 1e6:.4f} in all, {net / 1e6:.4f} without libc realloc "
            f"(runs: {each})"
        )
    if "ours" in means and "bare" in means:
        ours, bare = means["ours"], means["bare"]
        print(
            f"bare/ours {bare[0] / ours[0]:.3f} in all, {bare[1] / ours[1]:.3f} without "
            f"realloc (ours/bare {ours[1] / bare[1]:.3f})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
