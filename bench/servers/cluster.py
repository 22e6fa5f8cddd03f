"""Contender `cluster`: one node of `RedisSessionWSRegistry`; the bench starts three.

With `--sentinel host:port,...` the node's client comes from
`redis.asyncio.sentinel.Sentinel(...).master_for(--service)` (the recovery bench).
"""

from __future__ import annotations

import argparse
from collections.abc import AsyncIterator

from aiohttp import web
from common import parse_args, serve
from redis.asyncio import Redis
from redis.asyncio.sentinel import Sentinel
from session_ws_app import make_app

from aiohttp_session_ws.redis import RedisSessionWSRegistry


def _options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--redis-url", help="a standalone Redis")
    parser.add_argument("--sentinel", help="or Sentinel addresses: host:port,host:port,...")
    parser.add_argument("--service", default="asws", help="the Sentinel service name")
    parser.add_argument("--node-id", required=True)
    parser.add_argument("--channel", default="bench")


def client(args: argparse.Namespace) -> tuple[Redis, list[Redis]]:
    """The node's client, and the Sentinel's own clients to close after it."""
    if not args.sentinel:
        return Redis.from_url(args.redis_url), []
    hosts = [(h, int(p)) for h, _, p in (a.rpartition(":") for a in args.sentinel.split(","))]
    manager = Sentinel(hosts, socket_timeout=1.0)
    return manager.master_for(args.service, socket_connect_timeout=1.0), list(manager.sentinels)


def main() -> None:
    args = parse_args(_options)
    redis, sentinels = client(args)  # connects lazily, inside serve()'s loop

    async def close_redis(app: web.Application) -> AsyncIterator[None]:
        yield
        await redis.aclose()
        for sentinel in sentinels:
            await sentinel.aclose()

    app = make_app(RedisSessionWSRegistry(redis, channel=args.channel, node_id=args.node_id))
    app.cleanup_ctx.insert(0, close_redis)  # runs last on cleanup, after the registry stops
    serve(app, args.port)


if __name__ == "__main__":
    main()
