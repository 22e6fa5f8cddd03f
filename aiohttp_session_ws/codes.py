"""Websocket close codes used by the library, and validation of user-chosen ones."""

from __future__ import annotations

from typing import Final

SESSION_ENDED_CODE: Final = 4001
"""Session ended: the client should reconnect and re-authorize."""
SESSION_ENDED_REASON: Final = "session ended"
SESSION_EXPIRED_REASON: Final = "session expired"
"""The reason sent with the session-ended code when the session (or identity) expired."""
SHUTDOWN_CODE: Final = 1001
"""GOING_AWAY: the server is shutting down; reconnect to another node or later."""
SHUTDOWN_REASON: Final = "server shutdown"
TRY_AGAIN_LATER_CODE: Final = 1013
"""RFC 6455 Try Again Later: the socket's user could not be determined (an identity
lookup raised); the client should reconnect after a backoff."""
TRY_AGAIN_LATER_REASON: Final = "try again later"

MAX_REASON_BYTES: Final = 123
"""RFC 6455 limits a close frame payload to 125 bytes, two of which hold the code."""


def validate_close_code(code: int) -> int:
    """Return `code` if it is an application close code in 4000-4499."""
    if isinstance(code, bool) or not isinstance(code, int):
        raise TypeError(f"close_code must be an int in 4000-4499, got {type(code).__name__}")
    if not 4000 <= code <= 4499:
        raise ValueError(
            f"close_code {code} is outside 4000-4499; pick an application code there "
            f"(the default is {SESSION_ENDED_CODE})"
        )
    return code


def encode_reason(reason: str | bytes) -> bytes:
    """Encode a close reason as UTF-8, refusing what a close frame cannot carry."""
    if isinstance(reason, str):
        try:
            data = reason.encode("utf-8")
        except UnicodeEncodeError:  # lone surrogates, e.g. from os.fsdecode
            raise ValueError(
                "close_message must be encodable as UTF-8 (it holds a lone surrogate)"
            ) from None
    elif isinstance(reason, bytes):
        try:
            reason.decode("utf-8")
        except UnicodeDecodeError:
            raise ValueError("close_message must be valid UTF-8 (RFC 6455 §5.5.1)") from None
        data = reason
    else:
        raise TypeError(f"close_message must be str or bytes, got {type(reason).__name__}")
    if len(data) > MAX_REASON_BYTES:
        raise ValueError(
            f"close_message is {len(data)} bytes in UTF-8; a close reason holds at most "
            f"{MAX_REASON_BYTES} bytes: shorten it"
        )
    return data
