"""`python -m bench.login_demo [--root DIR] [--samples N] [--flood-seconds S]`: the login
demo's password-check timing per user, and a login flood against a real demo process.

Not part of `python -m bench` (that benchmarks the library). `--root` picks the
checkout whose `demo_auth` is measured (e.g. an older one, for before/after).

- timing: `Users.check` with a wrong password for alice (current hash), bob (older,
  cheaper hash), an unknown user and an over-long password, interleaved, N samples
  each: median and p10/p90 in ms.
- flood: one client address (127.0.0.2) posts wrong passwords for alice with one CSRF
  token from 8 concurrent connections for S seconds, while bob logs in twice a second,
  each time from another address (127.0.0.10, .11, ...): the flood's answers per
  second by status, and bob's login latency (median/p90) during the flood and alone.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp

TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def summary(samples: list[float]) -> str:
    ms = sorted(s * 1000 for s in samples)
    p10, p90 = ms[len(ms) // 10], ms[len(ms) * 9 // 10]
    return f"median {statistics.median(ms):6.1f} ms  p10 {p10:6.1f}  p90 {p90:6.1f}  (n={len(ms)})"


def timing(root: Path, samples: int) -> None:
    sys.path.insert(0, str(root))
    from demo_auth.passwords import MAX_PASSWORD_BYTES, Users

    users = Users()
    cases = {
        "alice, wrong password": ("alice", "wrong"),
        "bob, wrong password (older hash)": ("bob", "wrong"),
        "unknown user": ("nobody", "wrong"),
        "over-long password": ("alice", "x" * (MAX_PASSWORD_BYTES + 1)),
    }
    times: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(samples):
        for name, (username, password) in cases.items():
            start = time.perf_counter()
            users.check(username, password)
            times[name].append(time.perf_counter() - start)
    print(f"password check timing ({root}):")
    for name, values in times.items():
        print(f"  {name:34} {summary(values)}")


async def login(client: aiohttp.ClientSession, username: str, password: str) -> int:
    async with client.get("/login") as resp:
        token = TOKEN.findall(await resp.text())[0]
    data = {"csrf_token": token, "username": username, "password": password}
    async with client.post("/login", data=data, allow_redirects=False) as resp:
        return resp.status


def session(url: str, address: str) -> aiohttp.ClientSession:
    connector = aiohttp.TCPConnector(local_addr=(address, 0), limit=16)
    return aiohttp.ClientSession(
        url, connector=connector, cookie_jar=aiohttp.CookieJar(unsafe=True)
    )


REAL_LOGINS = iter(range(10, 250))  # each real login from its own address: 127.0.0.N


async def real_logins(url: str, until: float) -> list[float]:
    """Bob's logins (GET the form, POST it) twice a second until `until`: their latencies."""
    latencies = []
    while time.monotonic() < until:
        async with session(url, f"127.0.0.{next(REAL_LOGINS)}") as client:
            start = time.perf_counter()
            status = await login(client, "bob", "builder")
            latencies.append(time.perf_counter() - start)
            assert status == 303, status
        await asyncio.sleep(0.5)
    return latencies


async def flood(url: str, seconds: float) -> None:
    statuses: dict[int, int] = {}
    async with session(url, "127.0.0.2") as client:
        async with client.get("/login") as resp:
            token = TOKEN.findall(await resp.text())[0]
        data = {"csrf_token": token, "username": "alice", "password": "guess"}
        alone = await real_logins(url, time.monotonic() + min(seconds, 5))
        until = time.monotonic() + seconds

        async def worker() -> None:
            while time.monotonic() < until:
                async with client.post("/login", data=data, allow_redirects=False) as resp:
                    await resp.read()
                    statuses[resp.status] = statuses.get(resp.status, 0) + 1

        start = time.monotonic()
        during, *_ = await asyncio.gather(real_logins(url, until), *(worker() for _ in range(8)))
        elapsed = time.monotonic() - start
    rates = ", ".join(f"{status}: {n / elapsed:.1f}/s" for status, n in sorted(statuses.items()))
    print(f"flood from one address for {elapsed:.0f} s, answers by status: {rates}")
    print(f"  bob's login from another address, alone:        {summary(alone)}")
    print(f"  bob's login from another address, during flood: {summary(during)}")


def run_flood(root: Path, seconds: float) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "DEMO_AUTH_SECRET"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "demo_auth", "--port", str(port)],
        cwd=root,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        print(f"login flood ({root}):")
        asyncio.run(flood(url, seconds))
    finally:
        proc.terminate()
        proc.wait(10)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.login_demo", description=__doc__)
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parents[1])
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--flood-seconds", type=float, default=10.0)
    args: Any = parser.parse_args(argv)
    timing(args.root.resolve(), args.samples)
    run_flood(args.root.resolve(), args.flood_seconds)


if __name__ == "__main__":
    main()
