"""The HTTP routes: login form, login, logout, log out everywhere, home page, /api/me."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import aiohttp_jinja2
import aiohttp_security
import aiohttp_session
from aiohttp import web

from aiohttp_session_ws.security import schedule_close_all_identity_ws

from .csrf import csrf_ok, csrf_token
from .keys import CLIENT_URL_KEY, SETTINGS_KEY, THROTTLE_KEY, USERS_KEY

MAX_USERNAME_CHARS = 64
LOGIN_FAILED = "Wrong username or password."
STALE_FORM = (
    "This page was out of date: your session changed in another tab or on another device "
    "since it was shown, so nothing was done (its security token, the CSRF token, no longer "
    "matches). This is the current page: try again."
)
TOO_MANY = "Too many login attempts. Try again in {seconds} s."


async def current_user(request: web.Request) -> str | None:
    """The logged-in user's name, or None."""
    return await aiohttp_security.authorized_userid(request)


async def render(
    template: str, request: web.Request, context: dict[str, Any], *, status: int = 200
) -> web.Response:
    """Render `template` with the session's CSRF token; never cached (it holds the token)."""
    session = await aiohttp_session.get_session(request)
    context = {
        "csrf_token": csrf_token(session),
        "client_url": request.app[CLIENT_URL_KEY],
        "restart_logs_out": request.app[SETTINGS_KEY].restart_logs_out,
        **context,
    }
    response = aiohttp_jinja2.render_template(template, request, context, status=status)
    response.headers["Cache-Control"] = "no-store"
    return response


async def checked_form(request: web.Request, template: str) -> Mapping[str, object]:
    """The POSTed form, once its CSRF token has been checked.

    A stale or missing token raises 403 with `template` rendered again (the current
    state, a fresh token and a message saying nothing was done), never a bare error.
    """
    try:
        form = await request.post()
    except ValueError as exc:  # e.g. a body that is not valid UTF-8
        raise web.HTTPBadRequest(text=f"Could not read the form: {exc}") from exc
    if not csrf_ok(await aiohttp_session.get_session(request), form):
        context = {"user": await current_user(request), "error": STALE_FORM}
        page = await render(template, request, context, status=403)
        raise web.HTTPForbidden(
            text=page.text, content_type="text/html", headers={"Cache-Control": "no-store"}
        )
    return form


def text_field(form: Mapping[str, object], name: str) -> str:
    value = form.get(name, "")
    return value if isinstance(value, str) else ""


async def login_form(request: web.Request) -> web.Response:
    """GET /login: the form."""
    return await render("login.html", request, {"user": await current_user(request)})


async def login(request: web.Request) -> web.Response:
    """POST /login: check the password; on success start a fresh session and go home.

    Throttled per client address and per account (429 with Retry-After, before any
    password is hashed); see `throttle.py`.
    """
    form = await checked_form(request, "login.html")
    username = text_field(form, "username")[:MAX_USERNAME_CHARS]
    throttle = request.app[THROTTLE_KEY]
    wait = await throttle.attempt(request.remote or "unknown", username)
    if wait is not None:
        context = {
            "user": await current_user(request),
            "error": TOO_MANY.format(seconds=wait),
            "username": username,
        }
        page = await render("login.html", request, context, status=429)
        page.headers["Retry-After"] = str(wait)
        return page
    user = await request.app[USERS_KEY].authenticate(username, text_field(form, "password"))
    if user is None:
        await throttle.failed(username)
        context = {"user": await current_user(request), "error": LOGIN_FAILED, "username": username}
        return await render("login.html", request, context, status=401)
    redirect = web.HTTPSeeOther("/")
    # The wrapped identity policy closes this session's sockets after the redirect
    # is delivered, rotates the session and its websocket id, and records the
    # user's login generation in the session.
    await aiohttp_security.remember(request, redirect, user)
    raise redirect


async def logout(request: web.Request) -> web.Response:
    """POST /logout: end this session (its sockets close once the redirect is delivered)."""
    await checked_form(request, "home.html")
    redirect = web.HTTPSeeOther("/login")
    await aiohttp_security.forget(request, redirect)
    raise redirect


async def logout_everywhere(request: web.Request) -> web.Response:
    """POST /logout-everywhere: close the user's sockets in every session, then log out.

    With login generations on, this also logs the other sessions out over HTTP.
    """
    await checked_form(request, "home.html")
    redirect = web.HTTPSeeOther("/login")
    await schedule_close_all_identity_ws(request, redirect)  # before forget
    await aiohttp_security.forget(request, redirect)
    raise redirect


async def home(request: web.Request) -> web.Response:
    """GET /: the live websocket panel, and the logout forms for a logged-in user."""
    return await render("home.html", request, {"user": await current_user(request)})


async def api_me(request: web.Request) -> web.Response:
    """GET /api/me: {"user": name or null}."""
    return web.json_response({"user": await current_user(request)})
