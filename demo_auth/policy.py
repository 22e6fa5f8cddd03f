"""aiohttp_security authorization: identities are `user:generation`, checked on every request."""

from __future__ import annotations

from typing import Any

from aiohttp_security import AbstractAuthorizationPolicy

from .generations import Generations
from .passwords import Users


def make_identity(user: str, generation: int) -> str:
    """The identity `remember` stores in the session."""
    return f"{user}:{generation}"


class DemoAuthorizationPolicy(AbstractAuthorizationPolicy):
    """An identity is authorized while its user exists and its generation is current."""

    def __init__(self, users: Users, generations: Generations) -> None:
        self.users = users
        self.generations = generations

    async def authorized_userid(self, identity: str) -> str | None:
        user, _, generation = identity.rpartition(":")
        if user not in self.users or not (generation.isascii() and generation.isdigit()):
            return None
        if int(generation) != await self.generations.current(user):
            return None  # logged out everywhere since this session logged in
        return user

    async def permits(self, identity: str | None, permission: Any, context: Any = None) -> bool:
        return identity is not None and await self.authorized_userid(identity) is not None
