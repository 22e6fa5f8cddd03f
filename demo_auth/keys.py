"""Typed application keys shared by the demo's modules."""

from __future__ import annotations

from aiohttp import web

from .passwords import Users
from .settings import Settings
from .throttle import LoginThrottle

SETTINGS_KEY = web.AppKey("demo_auth_settings", Settings)
USERS_KEY = web.AppKey("demo_auth_users", Users)
THROTTLE_KEY = web.AppKey("demo_auth_throttle", LoginThrottle)
CLIENT_URL_KEY = web.AppKey("demo_auth_client_url", str)
"""The URL path of the library's browser client (`add_client_route`)."""
