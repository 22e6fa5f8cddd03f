"""aiohttp_security authorization: an identity is authorized while its user exists.

"Log out everywhere" is handled by the library's login generations (see `app.py`):
a session logged out everywhere has no identity any more, so it never gets here.
"""

from __future__ import annotations

from typing import Any

from aiohttp_security import AbstractAuthorizationPolicy

from .passwords import Users


class DemoAuthorizationPolicy(AbstractAuthorizationPolicy):
    """The identity is the user name; it is authorized while that user exists."""

    def __init__(self, users: Users) -> None:
        self.users = users

    async def authorized_userid(self, identity: str) -> str | None:
        return identity if identity in self.users else None

    async def permits(self, identity: str | None, permission: Any, context: Any = None) -> bool:
        return identity is not None and await self.authorized_userid(identity) is not None
