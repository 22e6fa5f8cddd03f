"""The six scenarios of issue 6, in the order `python -m bench` runs them."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from ..report import Result
from ..runner import Mode, Progress
from . import fanout, handshake, memory, sessions

Scenario = Callable[[Mode, Progress], Awaitable[Result]]

SCENARIOS: dict[str, Scenario] = {
    "handshake": handshake.run,
    "fanout": fanout.run,
    "memory": memory.run,
    "sessions": sessions.run,
}
