"""The scenarios, in the order `python -m bench` runs them (issue 6's six, then recovery)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from ..report import Result
from ..runner import Mode, Progress
from . import churn, crossnode, fanout, handshake, memory, recovery, sessions

Scenario = Callable[[Mode, Progress], Awaitable[Result]]

SCENARIOS: dict[str, Scenario] = {
    "handshake": handshake.run,
    "fanout": fanout.run,
    "crossnode": crossnode.run,
    "memory": memory.run,
    "churn": churn.run,
    "sessions": sessions.run,
    "recovery": recovery.run,
}
