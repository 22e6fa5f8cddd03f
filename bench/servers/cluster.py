"""Contender `cluster`: one node of `RedisSessionWSRegistry`; the bench starts three."""

from __future__ import annotations

import argparse
from collections.abc import AsyncIterator

from aiohttp import web
from common import parse_args, serve
from redis.asyncio import Redis
from session_ws_app import make_app

from aiohttp_session_ws.redis import RedisSessionWSRegistry


def _options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--node-id", required=True)
    parser.add_argument("--channel", default="bench")


def main() -> None:
    args = parse_args(_options)
    redis = Redis.from_url(args.redis_url)  # connects lazily, inside serve()'s loop

    async def close_redis(app: web.Application) -> AsyncIterator[None]:
        yield
        await redis.aclose()

    app = make_app(RedisSessionWSRegistry(redis, channel=args.channel, node_id=args.node_id))
    app.cleanup_ctx.insert(0, close_redis)  # runs last on cleanup, after the registry stops
    serve(app, args.port)


if __name__ == "__main__":
    main()
