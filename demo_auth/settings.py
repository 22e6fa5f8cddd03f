"""Command-line settings: where to listen, the cookie key, which origins may open sockets."""

from __future__ import annotations

import base64
import binascii
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field

from yarl import URL

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
REDACTED = "***"
SECRET_QUERY_KEYS = frozenset({"password", "username", "user"})
SECRET_ENV = "DEMO_AUTH_SECRET"
KEY_BYTES = 32


def new_secret_key() -> bytes:
    """A random 32-byte EncryptedCookieStorage key."""
    return secrets.token_bytes(KEY_BYTES)


def encode_secret_key(key: bytes) -> str:
    """The key as DEMO_AUTH_SECRET wants it: URL-safe base64."""
    return base64.urlsafe_b64encode(key).decode("ascii")


def decode_secret_key(value: str) -> bytes:
    """Decode DEMO_AUTH_SECRET; raise ValueError saying what a valid key looks like."""
    try:
        key = base64.urlsafe_b64decode(value.strip().encode("ascii"))
    except (binascii.Error, UnicodeEncodeError, ValueError):
        key = b""
    if len(key) != KEY_BYTES:
        raise ValueError(
            f"{SECRET_ENV} must be {KEY_BYTES} random bytes in URL-safe base64 (44 characters); "
            'make one with: python -c "import base64, os; '
            'print(base64.urlsafe_b64encode(os.urandom(32)).decode())"'
        )
    return key


def secret_key_from_env(environ: Mapping[str, str] = os.environ) -> bytes | None:
    """The key from DEMO_AUTH_SECRET, or None when it is unset or empty."""
    value = environ.get(SECRET_ENV, "")
    return decode_secret_key(value) if value else None


def redact_url(url: str) -> str:
    """`url` fit to print: user, password and credential query values replaced by ***.

    A URL that cannot be parsed is replaced whole (it might be a password itself).
    """
    try:
        parsed = URL(url)
        if parsed.user is not None or parsed.password is not None:
            parsed = parsed.with_user(REDACTED).with_password(None)
        if any(key.lower() in SECRET_QUERY_KEYS for key in parsed.query):
            query = [
                (key, REDACTED if key.lower() in SECRET_QUERY_KEYS else value)
                for key, value in parsed.query.items()
            ]
            parsed = parsed.with_query(query)
        return str(parsed)
    except (ValueError, TypeError):
        return "(an unreadable URL)"


def url_host(host: str) -> str:
    """`host` as it appears in a URL (IPv6 literals in brackets)."""
    return f"[{host}]" if ":" in host else host


@dataclass(frozen=True)
class Settings:
    """How one demo process runs."""

    host: str = "127.0.0.1"
    port: int = 8080
    redis_url: str | None = None
    secret_key: bytes = field(default_factory=new_secret_key, repr=False)
    extra_origins: tuple[str, ...] = ()
    restart_logs_out: bool = False
    """True when a restart logs everyone out (no `--redis`: the login generations live in
    this process's memory, and without DEMO_AUTH_SECRET the cookie key too); the page
    then names the restart as the cause when its session is gone."""
    login_attempts_per_address: str = "10/minute"
    """Login POSTs allowed per client address (a `limits` rate string)."""
    login_failures_per_account: str = "5/minute"
    """Failed logins allowed per submitted username, from any address."""

    def __post_init__(self) -> None:
        if not 0 < self.port < 65536:
            raise ValueError(f"port must be between 1 and 65535, got {self.port}")
        if len(self.secret_key) != KEY_BYTES:
            raise ValueError(f"secret_key must be {KEY_BYTES} bytes")

    @property
    def local(self) -> bool:
        """True on a loopback host: the only place a plain-http cookie is acceptable."""
        return self.host in LOOPBACK_HOSTS

    @property
    def url(self) -> str:
        return str(URL(f"http://{url_host(self.host)}:{self.port}/"))

    def allowed_origins(self) -> list[str]:
        """This node's own origin(s) plus `extra_origins` (e.g. a proxy's public origin).

        On a loopback host every loopback name counts as this node's own.
        """
        hosts = LOOPBACK_HOSTS if self.local else (self.host,)
        own = [f"http://{url_host(host)}:{self.port}" for host in hosts]
        return [*own, *self.extra_origins]
