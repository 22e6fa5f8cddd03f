"""CSRF tokens: a random value kept in the session, echoed by forms, compared in constant time."""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Mapping

from aiohttp import web
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


def check_csrf(session: Session, form: Mapping[str, object]) -> None:
    """Raise 403 unless the form's token matches the session's."""
    expected = session.get(CSRF_SESSION_KEY)
    given = form.get(CSRF_FIELD)
    if (
        not isinstance(expected, str)
        or not isinstance(given, str)
        or not hmac.compare_digest(given.encode("utf-8", "surrogatepass"), expected.encode())
    ):
        raise web.HTTPForbidden(
            text="Missing or invalid CSRF token: reload the page and submit the form again."
        )
