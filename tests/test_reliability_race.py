"""The logout race: a session's sockets reconnect in a tight loop while it logs out.

Afterwards no socket may be open under the old websocket id or with the old
identity: on one node, and across three nodes sharing a real Redis.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from typing import Any

import aiohttp
import pytest
from aiohttp import WSMsgType
from redis.asyncio import Redis
from yarl import URL

from aiohttp_session_ws import SessionWSRegistry
from aiohttp_session_ws.redis import RedisSessionWSRegistry
from tests.support.busy_browser import busy_nodes, busy_round, racing_round
from tests.support.cluster import FAST, eventually
from tests.support.security_nodes import Served, redis_nodes, running
from tests.support.sizes import size

pytestmark = pytest.mark.heavy

SOCKETS = 50
ROUNDS = size(20, 100)
MAX_RECONNECTS = 400
"""Bounds each reconnecting client's loop."""


@pytest.fixture
async def one_node() -> AsyncIterator[list[Served]]:
    async with running([Served(SessionWSRegistry())]) as nodes:
        yield nodes


@pytest.fixture
async def three_nodes(redis_url: str) -> AsyncIterator[list[Served]]:
    async with running(redis_nodes(redis_url, "ABC")) as nodes:
        yield nodes


async def reconnecting(
    http: aiohttp.ClientSession,
    url: URL,
    first: asyncio.Event,
    stop: asyncio.Event,
    hold: float | None,
) -> tuple[aiohttp.ClientWebSocketResponse, str | None]:
    """Connect, read the greeting, hold the socket `hold` seconds, drop, reconnect ...
    until `stop`; keep the last socket. With `hold=None` keep the first socket until `stop`.

    Returns that socket and the user the server greeted it as (None if the server
    closed it before greeting: a refused, revoked id).
    """
    for _ in range(MAX_RECONNECTS):
        ws = await http.ws_connect(url / "ws")
        msg = await ws.receive(timeout=10)
        user = msg.json()["user"] if msg.type is WSMsgType.TEXT else None
        first.set()
        if hold is None:  # a holder: keeps its first socket through the logout
            await stop.wait()
        if stop.is_set():
            return ws, user
        if hold and not ws.closed:
            await asyncio.sleep(hold)
        await ws.close()
    raise AssertionError(f"not stopped after {MAX_RECONNECTS} reconnects")


async def logout_race(nodes: Sequence[Served], round_: int) -> None:
    """One round: log in, start the reconnecting sockets, log out, check nothing survived."""
    user = "alice"
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        login = nodes[round_ % len(nodes)]
        async with http.post(login.url / "login", json={"user": user}) as resp:
            assert resp.status == 200
        probe = await http.ws_connect(nodes[0].url / "ws")
        assert (await probe.receive_json(timeout=10))["user"] == user
        old_ids = {sid for node in nodes for sid in node.registry}
        assert len(old_ids) == 1
        await probe.close()

        stop = asyncio.Event()
        firsts = [asyncio.Event() for _ in range(SOCKETS)]
        workers = [
            asyncio.ensure_future(
                reconnecting(
                    http,
                    nodes[i % len(nodes)].url,
                    firsts[i],
                    stop,
                    None if i % 10 == 0 else 0.004 * (i % 5),
                )
            )
            for i in range(SOCKETS)
        ]
        await asyncio.wait_for(asyncio.gather(*(e.wait() for e in firsts)), 30)
        async with http.post(nodes[-1 - round_ % len(nodes)].url / "logout") as resp:
            assert resp.status == 200
        await asyncio.sleep(0.02 * (round_ % 3))  # let some reconnect with the new cookie
        stop.set()
        last = await asyncio.wait_for(asyncio.gather(*workers), 60)

        # Client side: every socket greeted as the user is closed with 4001; the others
        # (the new, anonymous session) stay open.
        for ws, greeted in last:
            if greeted == user:
                msg = await ws.receive(timeout=10)
                assert (msg.type, ws.close_code) == (WSMsgType.CLOSE, 4001), msg
        # Server side: nothing open under the old id or with the old identity, anywhere.
        await eventually(
            lambda: not any(node.open_sockets(old_ids, user) for node in nodes),
            timeout=10,
            what="the old session's sockets to close",
        )
        for ws, _ in last:
            await ws.close()


async def test_logout_race_on_one_node(one_node: list[Served]) -> None:
    for round_ in range(ROUNDS):
        await logout_race(one_node, round_)
    stats = one_node[0].registry.stats()
    assert stats["sockets"] == 0
    # Both sides of the race were exercised: sockets open at the close were closed,
    # and reconnects presenting the revoked id were refused.
    assert stats["closed"]["session_ended"] > 0
    assert stats["refused"]["revoked"] > 0


@pytest.mark.redis
async def test_logout_race_across_three_redis_nodes(three_nodes: list[Served]) -> None:
    for round_ in range(ROUNDS):
        await logout_race(three_nodes, round_)
    stats = [node.registry.stats() for node in three_nodes]
    assert sum(s["sockets"] for s in stats) == 0
    assert all(s["closed"]["session_ended"] > 0 and s["refused"]["revoked"] > 0 for s in stats)


class SlowRevocationAnswer:
    """A registry whose registration check (`refuses`: revocations, key closes)
    answers late, as one over a slow Redis does.

    The answer is computed, then held until the test opens `gate`: a close may
    run in between, as it can while a Redis reply is in flight.
    """

    def setup_gate(self) -> None:
        self.gate = asyncio.Event()
        self.checked = asyncio.Event()

    async def refuses(self, *args: Any, **kwargs: Any) -> str | None:
        answer: str | None = await super().refuses(*args, **kwargs)  # type: ignore[misc]
        self.checked.set()
        await self.gate.wait()
        return answer


class SlowCoreRegistry(SlowRevocationAnswer, SessionWSRegistry):
    pass


class SlowRedisRegistry(SlowRevocationAnswer, RedisSessionWSRegistry):
    pass


async def first_close(ws: aiohttp.ClientWebSocketResponse) -> Any:
    """The first message after any TEXT (the greeting)."""
    msg = await ws.receive(timeout=10)
    while msg.type is WSMsgType.TEXT:
        msg = await ws.receive(timeout=10)
    return msg


@pytest.mark.redis
@pytest.mark.parametrize("kind", ["core", "redis"])
async def test_a_close_while_the_revocation_answer_is_in_flight_still_closes(
    kind: str, redis_url: str
) -> None:
    client = Redis.from_url(redis_url)
    registry: SlowCoreRegistry | SlowRedisRegistry = (
        SlowCoreRegistry()
        if kind == "core"
        else SlowRedisRegistry(client, channel=f"asws-{uuid.uuid4().hex[:8]}", **FAST)
    )
    registry.setup_gate()
    registry.gate.set()
    node = Served(registry)
    await node.start()
    try:
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
            async with http.post(node.url / "login", json={"user": "alice"}) as resp:
                assert resp.status == 200
            registry.gate.clear()
            registry.checked.clear()
            connecting = asyncio.ensure_future(http.ws_connect(node.url / "ws"))
            await asyncio.wait_for(registry.checked.wait(), 10)  # answered "not revoked"
            ws = await asyncio.wait_for(connecting, 10)  # the 101 precedes the check
            reading = asyncio.ensure_future(first_close(ws))  # a client reads all along
            async with http.post(node.url / "logout") as resp:  # revokes, closes after
                assert resp.status == 200
            await eventually(lambda: registry.stats()["pending_closes"] == 0, what="the close")
            registry.gate.set()  # the stale answer arrives
            msg = await reading  # greeted or not, it must still be closed at once
            assert (msg.type, ws.close_code) == (WSMsgType.CLOSE, 4001), msg
            await eventually(lambda: registry.stats()["sockets"] == 0, what="unregistered")
    finally:
        registry.gate.set()
        await node.runner.cleanup()
        await client.aclose()


# -- a busy browser: one device, many tabs, stale requests and in-flight writes ---------

BUSY_ROUNDS = size(3, 200)
BUSY_TOPOLOGIES = [
    pytest.param("cookie", 1, id="cookie-one-node"),
    pytest.param("redis", 1, id="redis-one-node", marks=pytest.mark.redis),
    pytest.param("cookie", 2, id="cookie-two-redis-nodes", marks=pytest.mark.redis),
    pytest.param("redis", 2, id="redis-two-redis-nodes", marks=pytest.mark.redis),
]


@pytest.mark.timeout(size(120, 3600))
@pytest.mark.parametrize(("storage", "nodes"), BUSY_TOPOLOGIES)
async def test_busy_browser_login_then_logout_leaves_no_survivors(
    storage: str, nodes: int, request: pytest.FixtureRequest
) -> None:
    """Issue #11: 20 tabs reconnecting in tight loops plus 10 churning tabs (sockets,
    reads, CSRF writes, slow session writes) of one device; log in, replay requests
    that left before the login, log out with session writes in flight. 0.7 s after
    the logout no socket serves the user, and afterwards the browser is logged out."""
    redis_url = request.getfixturevalue("redis_url") if storage == "redis" or nodes > 1 else None
    redis = Redis.from_url(redis_url) if storage == "redis" and redis_url else None
    try:
        async with busy_nodes(storage, nodes, redis_url) as served:
            results = [await busy_round(served, round_, redis) for round_ in range(BUSY_ROUNDS)]
            refused = Counter[str]()
            for node in served:
                refused.update(node.registry.stats()["refused"])
    finally:
        if redis is not None:
            await redis.aclose()
    survived = [i for i, result in enumerate(results) if result.survived]
    print(
        f"\nbusy browser {storage}/{nodes} node(s): {len(results)} rounds, "
        f"{sum(r.sockets_opened for r in results)} sockets opened "
        f"({sum(r.user_sockets_opened for r in results)} as the user), "
        f"rounds with survivors: {len(survived)}, "
        f"sockets serving the user 0.7 s after logout: "
        f"{sum(r.server_survivors for r in results)} server-side / "
        f"{sum(r.client_survivors for r in results)} client-side, "
        f"logged in after logout: {sum(r.logged_in_after for r in results)}, "
        f"records revived: {sum(r.record_revived for r in results)}, refused: {dict(refused)}"
    )
    assert [r.stale_set_cookies for r in results] == [[]] * len(results)
    assert survived == [], [results[i] for i in survived]
    # Both sides of the race ran: the user's sockets opened and were closed, and
    # stale reconnects (revoked ids, retired sessions) were refused.
    assert all(r.user_sockets_opened > 0 for r in results)
    assert refused["revoked"] + refused["stale_session"] > 0


# -- logins racing logouts in one browser (stale tabs carrying an older cookie) -------

RACING_ROUNDS = size(5, 200)


@pytest.mark.timeout(size(180, 3600))
@pytest.mark.parametrize(("storage", "nodes"), BUSY_TOPOLOGIES)
async def test_logins_racing_stale_logouts_leave_no_socket_of_a_user_the_browser_is_not(
    storage: str, nodes: int, request: pytest.FixtureRequest
) -> None:
    """alice's browser, 10 tabs reconnecting: a tab logs in as bob while stale tabs
    still carrying alice's cookie log out and/or log in as carol, in random order and
    timing. Whichever response the jar keeps, 0.7 s later no socket serves a user
    the browser no longer is."""
    redis_url = request.getfixturevalue("redis_url") if storage == "redis" or nodes > 1 else None
    async with busy_nodes(storage, nodes, redis_url) as served:
        results = [await racing_round(served, round_) for round_ in range(RACING_ROUNDS)]
        superseded = sum(node.registry.stats()["superseded"] for node in served)
    survived = [i for i, result in enumerate(results) if result.survived]
    holders = Counter(str(r.holder) for r in results)
    print(
        f"\nlogins racing stale logouts {storage}/{nodes} node(s): {len(results)} rounds, "
        f"{sum(r.sockets_opened for r in results)} sockets opened, browser ended as "
        f"{dict(holders)}, rounds with survivors: {len(survived)} "
        f"({sum(r.server_survivors for r in results)} server-side / "
        f"{sum(r.client_survivors for r in results)} client-side), sessions superseded: "
        f"{superseded}, rounds whose own session was ended too (fail closed): "
        f"{sum(r.locked_out for r in results)}"
    )
    assert survived == [], [results[i] for i in survived]
    assert superseded > 0  # the race reached the lineage
