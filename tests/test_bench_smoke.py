"""Smoke test for bench/: the smallest fan-out and churn runs complete and report numbers.

Behaviour only (the runner finishes, servers start and stop, a figure comes out);
timings are the benchmark's business, not the test suite's.
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import pytest

from bench.report import markdown, write
from bench.runner import Mode, Progress
from bench.scenarios import churn, fanout
from tests.conftest import require


async def test_fanout_and_churn_smallest_runs(tmp_path: Path) -> None:
    fan = Mode(
        quick=True,
        out=tmp_path,
        baseline_python=None,
        overrides={"ns": [1], "rounds": 3, "contenders": ["ours", "floor"]},
    )
    result = await fanout.run(fan, Progress("smoke"))
    summary = result.raw["summary"]
    assert summary["ours"][1]["min_closed"] == 1
    assert math.isfinite(summary["ours"][1]["median_ms"])
    assert "| 1 | ours |" in markdown(result)
    assert write(result, tmp_path) == tmp_path / "fanout.png"

    small = Mode(quick=True, out=tmp_path, baseline_python=None, overrides={"cycles": 200})
    result = await churn.run(small, Progress("smoke"))
    assert result.raw["raw"]["cycles"] == 200
    assert result.raw["raw"]["registry"]["sockets"] == 0


@pytest.mark.redis
async def test_recovery_smallest_run(tmp_path: Path) -> None:
    """One kill round: Redis is killed during the logouts and the sockets close after."""
    from bench.scenarios import recovery

    require(shutil.which("redis-server") is not None, "redis-server")
    mode = Mode(
        quick=True,
        out=tmp_path,
        baseline_python=None,
        overrides={"faults": ["kill"], "rounds": 1, "sessions": 2},
    )
    result = await recovery.run(mode, Progress("smoke"))
    (round_,) = result.raw["kill"]
    assert round_["closed"] == round_["sockets"] == 4
    assert math.isfinite(round_["recovery"])
