"""The "log out everywhere" race: a user's devices reconnect while one of them logs out everywhere.

Every device of the user has tabs reconnecting in a tight loop, each handshake
looking the user up slowly (0-50 ms, like a database call); one device's socket
dropped just before the click. With login generations on, afterwards no socket
of the user is open on any node, no device is logged in over HTTP, and every
reconnect is anonymous. Run with RedisStorage and EncryptedCookieStorage, on
one node and on two nodes sharing a real Redis.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from aiohttp import WSMsgType
from aiohttp_session.cookie_storage import EncryptedCookieStorage
from aiohttp_session.redis_storage import RedisStorage
from redis.asyncio import Redis

from aiohttp_session_ws import SessionWSRegistry
from aiohttp_session_ws.redis import RedisSessionWSRegistry
from aiohttp_session_ws.security import (
    MemoryGenerations,
    RedisGenerations,
    identity_key,
)
from tests.support.cluster import FAST, eventually
from tests.support.security_app import COOKIE_KEY, Users
from tests.support.security_nodes import Served, running
from tests.support.sizes import size

pytestmark = pytest.mark.heavy

ROUNDS = size(8, 200)
DEVICES = 7
"""Devices (own cookie jars, own sessions) logged in as the user; device 0 clicks."""
TABS = (1, 1, 1, 1, 1, 2, 3)
"""Reconnecting tabs per device. A device with one tab has no other socket whose close
revokes its session when its handshake is in flight at the click."""
LOOKUP = 0.05
"""The slowest identity lookup, in seconds (each takes a random 0 to LOOKUP)."""
SURVIVOR_GRACE = 5.0
"""Seconds a socket of the user may take to close after the click: a survivor outlives it."""
USER = "alice"


class SlowUsers(Users):
    """The test users, looked up in 0-50 ms (an identity lookup hitting a database)."""

    def __init__(self, seed: int) -> None:
        self.random = random.Random(seed)

    async def authorized_userid(self, identity: str) -> str | None:
        await asyncio.sleep(self.random.uniform(0, LOOKUP))
        return await super().authorized_userid(identity)


@dataclass
class Figures:
    """What a run saw, summed over its rounds."""

    rounds: int = 0
    sockets: int = 0
    survivors: int = 0
    rounds_with_survivors: int = 0
    logged_in_after: int = 0
    reconnected_as_user: int = 0
    dropped_reconnected_as_user: int = 0
    refused_key_closed: int = 0
    notes: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        return (
            f"{self.rounds} rounds, {self.sockets} sockets opened, {self.survivors} survivors "
            f"(in {self.rounds_with_survivors} rounds), {self.logged_in_after} devices still "
            f"logged in, {self.reconnected_as_user} reconnects after the click as the user "
            f"({self.dropped_reconnected_as_user} of the dropped device), "
            f"{self.refused_key_closed} refused as key_closed"
        )


def build_nodes(topology: str, storage: str, redis_url: str | None) -> list[Served]:
    """Unstarted nodes: one with in-memory generations, or two sharing Redis (registry
    and generations), each with its session storage and a slow identity lookup."""
    seed = random.randrange(1 << 30)

    def node(registry: SessionWSRegistry, generations: Any, n: int) -> Served:
        clients = [Redis.from_url(redis_url)] if storage == "redis" and redis_url else []
        return Served(
            registry,
            RedisStorage(clients[0]) if clients else EncryptedCookieStorage(COOKIE_KEY),
            redis_clients=clients,
            generations=generations,
            users=SlowUsers(seed + n),
        )

    if topology == "one node":
        return [node(SessionWSRegistry(), MemoryGenerations(), 0)]
    channel = f"asws-{uuid.uuid4().hex[:8]}"
    registries = [
        RedisSessionWSRegistry(
            Redis.from_url(redis_url or ""), channel=channel, node_id=name, **FAST
        )
        for name in "AB"
    ]
    return [
        node(registry, RedisGenerations(registry.redis, prefix=f"{channel}:generation:"), n)
        for n, registry in enumerate(registries)
    ]


@pytest.fixture
async def nodes(request: pytest.FixtureRequest) -> AsyncIterator[list[Served]]:
    topology, storage = request.param
    redis_url = (
        request.getfixturevalue("redis_url")
        if topology != "one node" or storage == "redis"
        else None
    )
    async with running(build_nodes(topology, storage, redis_url)) as started:
        yield started


async def login(http: aiohttp.ClientSession, node: Served, user: str) -> None:
    async with http.post(node.url / "login", json={"user": user}) as resp:
        assert resp.status == 200, await resp.text()


async def whoami(http: aiohttp.ClientSession, node: Served) -> str | None:
    async with http.get(node.url / "whoami") as resp:
        assert resp.status == 200, await resp.text()
        user: str | None = (await resp.json())["user"]
        return user


async def greeted(ws: aiohttp.ClientWebSocketResponse) -> str | None:
    """The user the server greeted the socket as (None: anonymous, or closed unheard)."""
    msg = await ws.receive(timeout=10)
    return msg.json()["user"] if msg.type is WSMsgType.TEXT else None


@dataclass
class Tab:
    """A tab's socket when the click went out, and what it was greeted as (if read)."""

    ws: aiohttp.ClientWebSocketResponse
    greeting_read: bool = False
    user: str | None = None


async def tab(
    http: aiohttp.ClientSession,
    nodes: Sequence[Served],
    first: asyncio.Event,
    clicking: asyncio.Event,
    rng: random.Random,
    figures: Figures,
) -> Tab:
    """Connect, hold 0-20 ms, drop, reconnect ... until the click is sent; return the
    socket whose handshake was in flight (or open) when the click went out."""
    n = 0
    while True:
        ws = await http.ws_connect(nodes[n % len(nodes)].url / "ws")
        figures.sockets += 1
        n += 1
        first.set()
        if clicking.is_set():
            return Tab(ws)
        user = await greeted(ws)
        if clicking.is_set():
            return Tab(ws, True, user)
        await asyncio.sleep(rng.uniform(0, 0.02))
        if clicking.is_set():
            return Tab(ws, True, user)
        await ws.close()


async def open_sockets_of_user(nodes: Sequence[Served]) -> int:
    return sum(
        1
        for node in nodes
        for ws in node.registry.sockets_for_key(identity_key(USER))
        if not ws.closed
    )


async def log_out_everywhere_round(nodes: Sequence[Served], round_: int, figures: Figures) -> None:
    rng = random.Random(round_)
    jars = [
        aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) for _ in range(DEVICES + 2)
    ]
    devices, dropped, bob = jars[:DEVICES], jars[DEVICES], jars[DEVICES + 1]
    try:
        for i, http in enumerate([*devices, dropped]):
            await login(http, nodes[(round_ + i) % len(nodes)], USER)
        await login(bob, nodes[0], "bob")
        bob_ws = await bob.ws_connect(nodes[-1].url / "ws")
        assert await greeted(bob_ws) == "bob"
        # The dropped device had a socket as the user; it dropped just before the click.
        gone = await dropped.ws_connect(nodes[round_ % len(nodes)].url / "ws")
        assert await greeted(gone) == USER
        await gone.close()

        clicking = asyncio.Event()
        owners = [device for device, n in zip(devices, TABS, strict=True) for _ in range(n)]
        firsts = [asyncio.Event() for _ in owners]
        tabs = [
            asyncio.ensure_future(tab(owner, nodes, first, clicking, rng, figures))
            for owner, first in zip(owners, firsts, strict=True)
        ]
        await asyncio.wait_for(asyncio.gather(*(e.wait() for e in firsts)), 30)
        await asyncio.sleep(rng.uniform(0, 0.03))
        clicking.set()
        clicker = nodes[(round_ + 1) % len(nodes)]
        async with devices[0].post(clicker.url / "logout-everywhere") as resp:
            assert resp.status == 200
            assert (await resp.json())["user"] == USER
        last = await asyncio.wait_for(asyncio.gather(*tabs), 30)

        # Reconnects after the click (the dropped device among them) are anonymous.
        for i, http in enumerate([dropped, *devices]):
            late = await http.ws_connect(nodes[(round_ + i) % len(nodes)].url / "ws")
            figures.sockets += 1
            as_user = await greeted(late) == USER
            figures.reconnected_as_user += as_user
            figures.dropped_reconnected_as_user += as_user and http is dropped
            await late.close()

        # No socket of the user outlives the close, on any node.
        try:
            await eventually(
                lambda: (
                    not any(
                        not ws.closed
                        for node in nodes
                        for ws in node.registry.sockets_for_key(identity_key(USER))
                    )
                ),
                timeout=SURVIVOR_GRACE,
            )
        except AssertionError:
            left = await open_sockets_of_user(nodes)
            figures.survivors += left
            figures.rounds_with_survivors += 1
            figures.notes.append(f"round {round_}: {left} socket(s) of the user still open")
        for tab_ in last:
            # Each tab's last socket was greeted as the user and then closed with 4001,
            # or refused with 4001 before any greeting (or greeted anonymous).
            user = tab_.user
            if not tab_.greeting_read:
                msg = await tab_.ws.receive(timeout=SURVIVOR_GRACE)
                if msg.type is WSMsgType.TEXT:
                    user = msg.json()["user"]
                elif (msg.type, msg.data) != (WSMsgType.CLOSE, 4001):
                    figures.notes.append(f"round {round_}: a tab was refused with {msg}")
            if user == USER:
                try:
                    msg = await tab_.ws.receive(timeout=SURVIVOR_GRACE)
                except asyncio.TimeoutError:
                    figures.notes.append(f"round {round_}: a tab greeted as the user stayed open")
                else:
                    if (msg.type, msg.data) != (WSMsgType.CLOSE, 4001):
                        figures.notes.append(f"round {round_}: a tab as the user saw {msg}")
            await tab_.ws.close()

        # No device is logged in over HTTP any more; the other user is untouched.
        for i, http in enumerate([*devices, dropped]):
            figures.logged_in_after += await whoami(http, nodes[i % len(nodes)]) == USER
        assert await whoami(bob, nodes[-1]) == "bob"
        await bob_ws.send_str("ping")
        assert (await bob_ws.receive(timeout=10)).data == "pong"
        await bob_ws.close()
        figures.rounds += 1
    finally:
        for http in jars:
            await http.close()


TOPOLOGIES = [
    pytest.param(("one node", "cookie"), id="one node-EncryptedCookieStorage"),
    pytest.param(("one node", "redis"), id="one node-RedisStorage", marks=pytest.mark.redis),
    pytest.param(
        ("two nodes", "cookie"),
        id="two redis nodes-EncryptedCookieStorage",
        marks=pytest.mark.redis,
    ),
    pytest.param(
        ("two nodes", "redis"), id="two redis nodes-RedisStorage", marks=pytest.mark.redis
    ),
]


@pytest.mark.timeout(size(120, 900))  # about 2 minutes per topology at full size
@pytest.mark.parametrize("nodes", TOPOLOGIES, indirect=True)
async def test_log_out_everywhere_against_reconnecting_devices_with_a_slow_lookup(
    nodes: list[Served],
) -> None:
    figures = Figures()
    for round_ in range(ROUNDS):
        await log_out_everywhere_round(nodes, round_, figures)
    figures.refused_key_closed = sum(
        node.registry.stats()["refused"].get("key_closed", 0) for node in nodes
    )
    print(f"\nlog out everywhere: {figures}")
    assert figures.notes == []
    assert figures.survivors == 0
    assert figures.logged_in_after == 0
    assert figures.reconnected_as_user == 0
    await eventually(  # every handler has returned
        lambda: sum(node.registry.stats()["sockets"] for node in nodes) == 0,
        what="the registries to empty",
    )
