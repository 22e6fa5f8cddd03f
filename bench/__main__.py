"""`python -m bench [scenario ...] [--quick]`: run scenarios, print and write the results."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path

from .baseline import ensure_baseline
from .procs import raise_fd_limit
from .report import Result, markdown, write
from .runner import Mode, Progress
from .scenarios import SCENARIOS

RESULTS = Path(__file__).parent / "results"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("scenario", nargs="*", choices=[[], *SCENARIOS], help="default: all")
    parser.add_argument("--quick", action="store_true", help="small sizes (< 5 min in all)")
    parser.add_argument("--no-baseline", action="store_true", help="skip aiohttp-session-ws 1.1.1")
    parser.add_argument("--out", type=Path, help="results directory")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=JSON",
        help="override a size or the contenders, e.g. --set rounds=3 --set 'ns=[1,100]'",
    )
    return parser.parse_args(argv)


async def run_all(mode: Mode, names: list[str]) -> list[Result]:
    results = []
    for name in names:
        progress = Progress(name)
        result = await SCENARIOS[name](mode, progress)
        progress.done()
        write(result, mode.out)
        print(markdown(result), flush=True)
        results.append(result)
    return results


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    names = args.scenario or list(SCENARIOS)
    out = args.out or (RESULTS / "raw" / "quick" if args.quick else RESULTS)
    raise_fd_limit()
    baseline = None if args.no_baseline else ensure_baseline()
    overrides = {k: json.loads(v) for k, _, v in (item.partition("=") for item in args.set)}
    mode = Mode(quick=args.quick, out=out, baseline_python=baseline, overrides=overrides)
    start = time.monotonic()
    results = asyncio.run(run_all(mode, names))
    if len(names) == len(SCENARIOS):
        (out / "latest.md").write_text("\n".join(markdown(r) for r in results))
    print(
        f"bench: {len(results)} scenario(s) in {time.monotonic() - start:.0f}s; results in {out}",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
