"""CSRF tokens: a random value kept in the session, echoed by forms, compared in constant time."""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Mapping

from aiohttp_session import Session

CSRF_SESSION_KEY = "csrf_token"
CSRF_FIELD = "csrf_token"


def csrf_token(session: Session) -> str:
    """This session's token, created on first use.

    Login starts a fresh session, so the page after it gets a fresh token.
    """
    token = session.get(CSRF_SESSION_KEY)
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        session[CSRF_SESSION_KEY] = token
    return token


def csrf_ok(session: Session, form: Mapping[str, object]) -> bool:
    """Whether the form's token matches the session's (compared in constant time).

    A mismatch is usually a stale page (the session changed in another tab since
    the form was rendered), sometimes a forged cross-site POST: either way nothing
    may happen, and the page is shown again with a fresh token.
    """
    expected = session.get(CSRF_SESSION_KEY)
    given = form.get(CSRF_FIELD)
    return (
        isinstance(expected, str)
        and isinstance(given, str)
        and hmac.compare_digest(given.encode("utf-8", "surrogatepass"), expected.encode())
    )
