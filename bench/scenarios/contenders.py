"""Which server process serves which contender."""

from __future__ import annotations

import sys
from contextlib import ExitStack

from ..procs import Server
from ..runner import Mode

LEGACY = "1.1.1"
"""The baseline contender's name in tables."""


def server(contender: str, mode: Mode, args: list[str] | None = None) -> Server:
    """An unstarted server for `ours` (or `ours-direct`), `bare`/`floor` or `1.1.1`."""
    if contender == LEGACY:
        assert mode.baseline_python is not None
        return Server("session_ws_app.py", mode.baseline_python, args or [])
    if contender in ("bare", "floor"):
        return Server("bare.py", sys.executable, args or [])
    return Server("session_ws_app.py", sys.executable, args or [])


def reset_path(contender: str) -> str:
    """The reset route. `ours-direct` (a diagnostic) closes in the handler, as the floor does."""
    return "reset-direct" if contender == "ours-direct" else "reset"


def ws_path(contender: str) -> str:
    """The websocket route: the floor tracks its sockets, bare does not."""
    return "ws-tracked" if contender == "floor" else "ws"


def with_legacy(mode: Mode, *names: str) -> list[str]:
    """`names` plus the baseline when its venv is available."""
    return [*names, LEGACY] if mode.baseline_python else list(names)


def start_all(stack: ExitStack, mode: Mode, contenders: list[str]) -> dict[str, Server]:
    """Start one server per contender; `stack` stops them."""
    return {name: stack.enter_context(server(name, mode)) for name in contenders}
