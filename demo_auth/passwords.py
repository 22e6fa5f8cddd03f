"""The demo's accounts: argon2 hashes checked through passlib's `CryptContext`.

The two hashes below were made with this module's `PASSWORDS` context, so no
plaintext password is compared anywhere. `bob`'s hash deliberately uses older,
weaker argon2 parameters: his first login upgrades it (`verify_and_update`),
as a real application would after raising its hashing cost.
"""

from __future__ import annotations

import asyncio
import logging
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


class Users:
    """Username -> password hash, checked with constant effort for unknown users.

    The hashes live in memory (one copy per process); a real application keeps
    them in its database and writes upgraded hashes back there.
    """

    def __init__(
        self, hashes: Mapping[str, str] = DEMO_HASHES, context: CryptContext = PASSWORDS
    ) -> None:
        self.context = context
        self._hashes = dict(hashes)
        context.dummy_verify()  # pays the dummy hash's one-off cost now, not on a login

    def __contains__(self, username: object) -> bool:
        return username in self._hashes

    def hash_of(self, username: str) -> str | None:
        return self._hashes.get(username)

    def check(self, username: str, password: str) -> bool:
        """True if `password` is `username`'s; upgrades an outdated hash on success.

        Unknown users and over-long passwords cost one dummy verification, so
        the answer's timing does not tell which usernames exist.
        """
        stored = self._hashes.get(username)
        if stored is None or len(password.encode("utf-8", "surrogatepass")) > MAX_PASSWORD_BYTES:
            self.context.dummy_verify()
            return False
        ok, new_hash = self.context.verify_and_update(password, stored)
        if ok and new_hash is not None:
            self._hashes[username] = new_hash
            logger.info("upgraded the password hash of %s to the current parameters", username)
        return bool(ok)

    async def authenticate(self, username: str, password: str) -> str | None:
        """`check` in a worker thread (argon2 is CPU work); the username or None."""
        ok = await asyncio.to_thread(self.check, username, password)
        return username if ok else None
