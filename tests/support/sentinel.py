"""Redis Sentinel with real processes: a master, a replica and three sentinels (quorum 2).

Everything on free loopback ports with generated configs, nothing persisted.
The helpers block (they poll the processes), so async tests call them through
`asyncio.to_thread`.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import redis
from redis.asyncio import Redis
from redis.asyncio.sentinel import Sentinel

from tests.support.redis_server import RedisServer, free_port

SERVICE = "asws"
DOWN_AFTER_MS = 500
FAILOVER_TIMEOUT_MS = 2000
FAST_SYNC = ("--repl-diskless-sync-delay", "0")
"""Replicas sync at once (Redis 7 waits 5 s by default for more replicas to join)."""


class SentinelSet:
    """A monitored master/replica pair; `kill_master` starts a real failover."""

    def __init__(self) -> None:
        self.servers = [RedisServer(), RedisServer()]
        self.sentinel_ports = [free_port() for _ in range(3)]
        self.dir = Path(tempfile.mkdtemp(prefix="asws-sentinel-"))
        self.sentinels: list[subprocess.Popen[bytes]] = []

    @property
    def addresses(self) -> list[tuple[str, int]]:
        """The sentinels, for `redis.asyncio.sentinel.Sentinel(...)`."""
        return [("127.0.0.1", port) for port in self.sentinel_ports]

    def start(self, timeout: float = 30.0) -> None:
        master, replica = self.servers
        master.args = list(FAST_SYNC)
        master.start()
        replica.args = [*FAST_SYNC, "--replicaof", "127.0.0.1", str(master.port)]
        replica.start()
        for i, port in enumerate(self.sentinel_ports):
            conf = self.dir / f"sentinel-{i}.conf"
            conf.write_text(
                f"port {port}\nbind 127.0.0.1\ndaemonize no\ndir {self.dir}\n"
                f"sentinel monitor {SERVICE} 127.0.0.1 {master.port} 2\n"
                f"sentinel down-after-milliseconds {SERVICE} {DOWN_AFTER_MS}\n"
                f"sentinel failover-timeout {SERVICE} {FAILOVER_TIMEOUT_MS}\n"
                f"sentinel parallel-syncs {SERVICE} 1\n"
            )
            self.sentinels.append(
                subprocess.Popen(
                    [master.binary, str(conf), "--sentinel", "--loglevel", "warning"],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        self.wait_ready(timeout)

    def _client(self, port: int) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=port, socket_timeout=1, decode_responses=True)

    def master_port(self) -> int:
        """The master's port, as the sentinels report it."""
        errors = []
        for port in self.sentinel_ports:
            with self._client(port) as client:
                try:
                    _, master_port = client.sentinel_get_master_addr_by_name(SERVICE)
                    return int(master_port)
                except (redis.RedisError, TypeError) as exc:
                    errors.append(exc)
        raise RuntimeError(f"no sentinel answered: {errors}")

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Until every sentinel sees the master up, both other sentinels and a replica
        it can promote, and that replica is in sync with the master."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                if self._replica_synced() and all(self._ready(p) for p in self.sentinel_ports):
                    return
            except (redis.RedisError, RuntimeError):  # not up yet
                pass
            if time.monotonic() > deadline:
                raise TimeoutError("the sentinels did not settle")
            time.sleep(0.05)

    def _replica_synced(self) -> bool:
        master = self.master_port()
        for server in self.servers:
            if server.proc is None or server.port == master:
                continue
            with self._client(server.port) as client:
                info = client.info("replication")
            if info.get("master_link_status") == "up" and info.get("master_port") == master:
                return True
        return False

    def _ready(self, port: int) -> bool:
        with self._client(port) as client:
            master = client.sentinel_master(SERVICE)
            replicas = client.sentinel_slaves(SERVICE)
        usable = [r for r in replicas if not r["is_sdown"] and not r["is_disconnected"]]
        return (
            master["flags"] == "master" and master["num-other-sentinels"] == 2 and len(usable) >= 1
        )

    def server_on(self, port: int) -> RedisServer:
        return next(s for s in self.servers if s.port == port)

    def kill_master(self) -> RedisServer:
        """SIGKILL the current master; return it (dead)."""
        master = self.server_on(self.master_port())
        master.kill()
        return master

    def wait_failover(self, old_port: int, timeout: float = 30.0) -> int:
        """Until the sentinels name a new master; return its port."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                port = self.master_port()
                if port != old_port:
                    return port
            except RuntimeError:
                pass
            time.sleep(0.05)
        raise TimeoutError("no failover")

    def force_failover(self) -> int:
        """`SENTINEL FAILOVER`: promote the replica although the master is up; return the
        old master's port. The old master stays a writable master (the sentinels demote
        it about 10 s later, once it has reported that role for a while)."""
        old = self.master_port()
        with self._client(self.sentinel_ports[0]) as client:
            client.execute_command("SENTINEL", "FAILOVER", SERVICE)
        return old

    def wait_named_by_all(self, port: int, timeout: float = 30.0) -> None:
        """Until every sentinel names `port` as the master."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            named = set()
            for sentinel in self.sentinel_ports:
                with self._client(sentinel) as client, contextlib.suppress(redis.RedisError):
                    named.add(int(client.sentinel_get_master_addr_by_name(SERVICE)[1]))
            if named == {port}:
                return
            time.sleep(0.05)
        raise TimeoutError(f"the sentinels do not all name {port}")

    def wait_role(self, port: int, role: str, timeout: float = 60.0) -> None:
        """Until the server on `port` reports `role` ("master" or "slave")."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._client(port) as client, contextlib.suppress(redis.RedisError):
                if client.execute_command("ROLE")[0] == role:
                    return
            time.sleep(0.05)
        raise TimeoutError(f"the server on {port} is not a {role}")

    def rejoin(self, server: RedisServer, timeout: float = 30.0) -> None:
        """Restart a killed server as a replica of the current master; wait until settled."""
        server.args = [*FAST_SYNC, "--replicaof", "127.0.0.1", str(self.master_port())]
        server.start()
        self.wait_ready(timeout)

    def stop(self) -> None:
        for proc in self.sentinels:
            proc.terminate()
        for proc in self.sentinels:
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for server in self.servers:
            server.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


class SentinelClients:
    """Clients from `Sentinel(...).master_for`, one Sentinel each, as nodes would have.

    Each client is its owner's to close; `aclose` closes the Sentinels' own clients.
    """

    def __init__(self, sentinels: SentinelSet) -> None:
        self.addresses = sentinels.addresses
        self.managers: list[Sentinel] = []

    def master(self) -> Redis:
        manager = Sentinel(self.addresses, socket_timeout=1.0)
        self.managers.append(manager)
        return manager.master_for(SERVICE, socket_connect_timeout=0.5)

    async def aclose(self) -> None:
        for manager in self.managers:
            for client in manager.sentinels:
                await client.aclose()
