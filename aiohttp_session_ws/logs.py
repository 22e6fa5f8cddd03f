"""Logging that cannot flood the log or leak a secret: rate limits, and errors by type."""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Callable


class RateLimitedLog:
    """Logs at most one warning per `interval` seconds, counting the ones it held back.

    For messages a client can trigger at will (a hostile cookie, a malformed message
    on the Redis channel): each costs a counter, not a log line.
    """

    def __init__(
        self,
        logger: logging.Logger,
        interval: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.logger = logger
        self.interval = interval
        self._clock = clock
        self._last = -interval
        self._suppressed = 0

    def warning(self, msg: str, *args: object) -> None:
        now = self._clock()
        if now - self._last < self.interval:
            self._suppressed += 1
            return
        if self._suppressed:
            msg += " (%d similar message(s) suppressed)"
            args = (*args, self._suppressed)
        self._last = now
        self._suppressed = 0
        self.logger.warning(msg, *args)


def error_trace(exc: BaseException) -> str:
    """The error's type and where it was raised, without its message or arguments.

    An exception's message may carry what was being looked up (`KeyError(identity)`)
    or a command's arguments (redis-py puts key names in pipeline errors); the stack
    of file names, lines and source code does not.
    """
    frames = "".join(traceback.format_tb(exc.__traceback__)) if exc.__traceback__ else ""
    return f"{type(exc).__name__} (message withheld)\n{frames}".rstrip()
