"""`python -m demo_auth [--host H] [--port P] [--redis URL] [--origin O]`: run the login demo."""

from __future__ import annotations

import argparse
import logging
import socket
import sys

import redis
from aiohttp import web

from .app import make_app
from .passwords import DEMO_ACCOUNTS
from .settings import (
    SECRET_ENV,
    Settings,
    encode_secret_key,
    new_secret_key,
    redact_url,
    secret_key_from_env,
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m demo_auth", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=8080, help="port to listen on")
    parser.add_argument(
        "--redis",
        metavar="URL",
        help="share sessions and websocket closes through Redis (e.g. redis://127.0.0.1:6379/0)",
    )
    parser.add_argument(
        "--origin",
        action="append",
        default=[],
        metavar="ORIGIN",
        help="another origin allowed to open websockets, e.g. a proxy's https://demo.example.com",
    )
    return parser.parse_args(argv)


def check_redis(url: str) -> str | None:
    """None if Redis answers at `url`, else why not (credentials redacted)."""
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
        try:
            client.ping()
        finally:
            client.close()
    except (ValueError, redis.RedisError) as exc:
        why = str(exc).replace(url, redact_url(url))
        return f"cannot use Redis at {redact_url(url)}: {why}"
    return None


def listen(host: str, port: int) -> socket.socket:
    """A listening socket on host:port; OSError (port in use, unknown host) if impossible."""
    family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
    return socket.create_server((host, port), family=family, backlog=128)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    try:
        key = secret_key_from_env()
        generated = key is None
        settings = Settings(
            host=args.host,
            port=args.port,
            redis_url=args.redis,
            secret_key=key or new_secret_key(),
            extra_origins=tuple(args.origin),
            restart_logs_out=not args.redis,
        )
        problem = check_redis(args.redis) if args.redis else None
        if problem:
            raise ValueError(problem)
        app = make_app(settings)
        sock = listen(args.host, args.port)  # before the banner: a busy port is one clear line
    except (ValueError, TypeError) as exc:
        sys.exit(f"python -m demo_auth: error: {exc}")
    except OSError as exc:
        why = exc.strerror or str(exc)
        sys.exit(
            f"python -m demo_auth: error: cannot listen on {args.host}:{args.port}: {why} "
            "(another server on that port? pick another with --port)"
        )
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if generated and not args.redis:
        print(
            f"WARNING: {SECRET_ENV} is not set; using a random cookie key, so a restart logs "
            "everyone out. To keep sessions across restarts: "
            f"export {SECRET_ENV}={encode_secret_key(new_secret_key())}",
            file=sys.stderr,
        )
    print(f"login demo on {settings.url} (Ctrl-C to stop)")
    if args.redis:
        shown = redact_url(args.redis)  # never print a password
        print(f"sessions, closes and login throttling shared through Redis at {shown}")
    if not settings.local:
        print(
            "the session cookie is Secure: serve the demo over HTTPS (plain http: localhost only)"
        )
    print("websockets accepted from: " + ", ".join(settings.allowed_origins()))
    print("accounts: " + ", ".join(f"{u} / {p}" for u, p in DEMO_ACCOUNTS.items()), flush=True)
    web.run_app(app, sock=sock, print=None, shutdown_timeout=5)


if __name__ == "__main__":
    main()
