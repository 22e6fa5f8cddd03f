"""Typed application keys shared by the demo's modules."""

from __future__ import annotations

from aiohttp import web

from .passwords import Users
from .settings import Settings

SETTINGS_KEY = web.AppKey("demo_auth_settings", Settings)
USERS_KEY = web.AppKey("demo_auth_users", Users)
