"""Hostile input: bad cookies, bad handshakes, foreign origins, forged ids, bad options."""

from __future__ import annotations

import pytest

from aiohttp_session_ws import SessionWSRegistry

@pytest.mark.parametrize(
    ("message", "error", "words"),
    [
        ("x" * 10_000, ValueError, "at most 123 bytes"),
        (b"x" * 124, ValueError, "at most 123 bytes"),
        (b"\xc3\x28", ValueError, "UTF-8"),
        ("bad \udcff surrogate", ValueError, "UTF-8"),
        (None, TypeError, "str or bytes"),
    ],
)
def test_unusable_close_reasons_fail_at_construction(
    message: object, error: type[Exception], words: str
) -> None:
    with pytest.raises(error, match=words):
        SessionWSRegistry(close_message=message)  # type: ignore[arg-type]


@pytest.mark.parametrize("option", ["close_timeout", "revocation_ttl"])
@pytest.mark.parametrize("value", [0, -1, float("nan"), float("inf")])
def test_unusable_timeouts_fail_at_construction(option: str, value: float) -> None:
    with pytest.raises(ValueError, match=option.split("_")[0]):
        SessionWSRegistry(**{option: value})
