"""`python -m demo_reset [--host H] [--port P]`: run the reset demo (`make demo`)."""

from __future__ import annotations

import argparse

from aiohttp import web

from demo_reset.app import make_app


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m demo_reset", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    args = parser.parse_args()
    print(f"reset demo on http://{args.host}:{args.port}/ (Ctrl-C to stop)")
    web.run_app(make_app(), host=args.host, port=args.port, print=None)


if __name__ == "__main__":
    main()
