"""The demo's accounts: argon2 hashes checked through passlib's `CryptContext`.

The two hashes below were made with this module's `PASSWORDS` context, so no
plaintext password is compared anywhere. `bob`'s hash deliberately uses older,
weaker argon2 parameters: his first login upgrades it (`verify_and_update`),
as a real application would after raising its hashing cost. Until then every
check also verifies against a dummy hash with those older parameters, so a
check costs the same for every user (see `Users`).
"""

from __future__ import annotations

import asyncio
import base64
import logging
import secrets
from collections.abc import Mapping
from typing import Final

from passlib.context import CryptContext

logger = logging.getLogger("demo_auth")

MAX_PASSWORD_BYTES: Final = 1024
"""Longer passwords are refused as wrong (argon2 would hash them; we do not invite the work)."""

# argon2id with OWASP's minimum parameters (19 MiB, 2 passes, 1 lane): about 30 ms a check.
PASSWORDS: Final = CryptContext(
    schemes=["argon2"],
    argon2__type="ID",
    argon2__memory_cost=19456,
    argon2__time_cost=2,
    argon2__parallelism=1,
)

DEMO_ACCOUNTS: Final = {"alice": "wonderland", "bob": "builder"}
"""For the start-up banner and the README only; never used to check a password."""

DEMO_HASHES: Final = {
    "alice": "$argon2id$v=19$m=19456,t=2,p=1$8B6jFCKE0Np7b02Jcc5Ziw$"
    "Bw5ZC2o9V7LkqhX7l5lPXXNN+/qbD8J7ofQFCvZuVBg",
    # outdated parameters (8 MiB, 1 pass): upgraded on bob's first login
    "bob": "$argon2id$v=19$m=8192,t=1,p=1$PYewNiak1PrfuxfCuBfiHA$"
    "TeQ9SzS4ZjfpWznMJSuRKL+DWhpQ+8dImbMLf+xZwzc",
}


def cost_class(stored: str) -> str:
    """What a verification against `stored` costs: its scheme and parameters.

    `$argon2id$v=19$m=19456,t=2,p=1$salt$digest` -> `$argon2id$v=19$m=19456,t=2,p=1`.
    """
    return stored.rsplit("$", 2)[0]


def dummy_like(stored: str) -> str:
    """A hash with `stored`'s scheme and parameters (so it costs as much to verify), but a
    random salt and digest: no password matches it."""
    prefix, salt, digest = stored.rsplit("$", 2)
    return "$".join([prefix, random_b64(len(salt)), random_b64(len(digest))])


def random_b64(length: int) -> str:
    """Random bytes as unpadded base64 of `length` characters (as long as a field it replaces)."""
    return base64.b64encode(secrets.token_bytes(length * 3 // 4)).decode("ascii").rstrip("=")


class Users:
    """Username -> password hash; every check costs the same, whoever it is for.

    Each check verifies once per cost class in use (the current parameters, and
    each older set a stored hash still uses): against the user's own hash in its
    class, against a dummy hash in the others. So a user whose hash has older,
    cheaper parameters (bob, until he logs in), a user with a current hash (alice),
    an unknown user and an over-long password all cost the same work, and the
    answer's timing does not tell which usernames exist.

    The hashes live in memory (one copy per process); a real application keeps
    them in its database and writes upgraded hashes back there.
    """

    def __init__(
        self, hashes: Mapping[str, str] = DEMO_HASHES, context: CryptContext = PASSWORDS
    ) -> None:
        self.context = context
        self._hashes = dict(hashes)
        current = context.hash(secrets.token_urlsafe(16))
        self._dummies = {cost_class(current): current}
        for stored in self._hashes.values():
            self._dummies.setdefault(cost_class(stored), dummy_like(stored))

    def __contains__(self, username: object) -> bool:
        return username in self._hashes

    def hash_of(self, username: str) -> str | None:
        return self._hashes.get(username)

    def cost_classes(self) -> list[str]:
        """The cost classes every check verifies against, in order."""
        return list(self._dummies)

    def check(self, username: str, password: str) -> bool:
        """True if `password` is `username`'s; upgrades an outdated hash on success.

        Passwords over MAX_PASSWORD_BYTES are wrong (and cost the same as any other).
        """
        stored = self._hashes.get(username)
        if len(password.encode("utf-8", "surrogatepass")) > MAX_PASSWORD_BYTES:
            stored, password = None, ""
        own = cost_class(stored) if stored is not None else None
        ok, new_hash = False, None
        for cost, dummy in self._dummies.items():
            if cost == own:
                ok, new_hash = self.context.verify_and_update(password, stored)
            else:
                self.context.verify(password, dummy)
        if ok and new_hash is not None:
            self._hashes[username] = new_hash
            logger.info("upgraded a password hash to the current parameters")  # no username
        return bool(ok)

    async def authenticate(self, username: str, password: str) -> str | None:
        """`check` in a worker thread (argon2 is CPU work); the username or None."""
        ok = await asyncio.to_thread(self.check, username, password)
        return username if ok else None
