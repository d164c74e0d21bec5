"""Hashing of passwords, PINs and device credentials with Argon2id (argon2-cffi)."""

from __future__ import annotations

import hashlib
import hmac
import secrets as _secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

__all__ = ["SecretHasher", "constant_time_equal", "fingerprint", "new_credential"]


class SecretHasher:
    """Argon2id with argon2-cffi's recommended parameters; injectable for faster tests."""

    def __init__(self, hasher: PasswordHasher | None = None) -> None:
        self._hasher = hasher or PasswordHasher()

    def hash(self, secret: str) -> str:
        return self._hasher.hash(secret)

    def verify(self, stored: str | None, secret: str) -> bool:
        """True when ``secret`` matches ``stored``; a missing hash never matches."""
        if not stored:
            # Spend the same time as a real check so a missing account is not told apart.
            self._hasher.hash(secret)
            return False
        try:
            return self._hasher.verify(stored, secret)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False


def new_credential() -> str:
    """A device credential for a terminal: 256 bits, shown once, stored only as a hash."""
    return _secrets.token_urlsafe(32)


def fingerprint(value: str) -> str:
    """A short non-reversible tag for logs (never log the value itself)."""
    return hashlib.sha256(value.encode()).hexdigest()[:12]


def constant_time_equal(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())
