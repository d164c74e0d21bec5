"""The server's secrets and signing keys, created in the data directory on first start.

* ``secret.key``: 32 random bytes for HMAC uses (invite tokens, cookies, CSRF).
* ``keys/audit/<kid>.pem``: Ed25519 keys that sign audit checkpoints. ``current`` names the key
  that signs now; older keys stay so that older checkpoints remain verifiable after rotation.

Files are written with mode 0600 and never logged.
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from courtlink.errors import ConfigError

__all__ = ["KeyRing", "load_or_create_secret"]


def _write_private(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def load_or_create_secret(path: Path) -> bytes:
    """The server secret at ``path``; created (256 random bits, hex) when missing."""
    if not path.exists():
        _write_private(path, secrets.token_hex(32).encode() + b"\n")
    try:
        raw = path.read_text().strip()
        key = bytes.fromhex(raw)
    except (OSError, ValueError):
        raise ConfigError(f"security.secret_key_file: {path} is not a readable hex key") from None
    if len(key) < 32:
        raise ConfigError(f"security.secret_key_file: {path} holds fewer than 256 bits")
    return key


def key_id(public: Ed25519PublicKey) -> str:
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


class KeyRing:
    """Ed25519 keys by key id; one of them current. Public halves can be exported alone."""

    def __init__(
        self,
        private: dict[str, Ed25519PrivateKey],
        public: dict[str, Ed25519PublicKey],
        current: str | None,
        directory: Path | None = None,
    ) -> None:
        self._private = private
        self._public = public
        self._current = current
        self._directory = directory

    @classmethod
    def load_or_create(cls, directory: Path) -> KeyRing:
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        private: dict[str, Ed25519PrivateKey] = {}
        for pem in sorted(directory.glob("*.pem")):
            key = serialization.load_pem_private_key(pem.read_bytes(), password=None)
            if not isinstance(key, Ed25519PrivateKey):
                raise ConfigError(f"{pem}: not an Ed25519 private key")
            private[key_id(key.public_key())] = key
        current_file = directory / "current"
        current = current_file.read_text().strip() if current_file.exists() else None
        ring = cls(private, {k: v.public_key() for k, v in private.items()}, current, directory)
        if current is None or current not in private:
            ring.rotate()
        return ring

    @classmethod
    def from_public(cls, keys: dict[str, str]) -> KeyRing:
        """A verify-only ring from ``{kid: base64 raw public key}`` (for offline checks)."""
        public = {
            kid: Ed25519PublicKey.from_public_bytes(base64.b64decode(raw))
            for kid, raw in keys.items()
        }
        return cls({}, public, None)

    @property
    def current_kid(self) -> str:
        if self._current is None:
            raise ConfigError("this key ring holds no private key")
        return self._current

    def rotate(self) -> str:
        """Make a new current key; old keys stay for verification."""
        if self._directory is None:
            raise ConfigError("this key ring has no directory to write to")
        key = Ed25519PrivateKey.generate()
        kid = key_id(key.public_key())
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        _write_private(self._directory / f"{kid}.pem", pem)
        _write_private(self._directory / "current", kid.encode() + b"\n")
        self._private[kid] = key
        self._public[kid] = key.public_key()
        self._current = kid
        return kid

    def sign(self, data: bytes) -> tuple[str, str]:
        """``(kid, base64 signature)`` by the current key."""
        kid = self.current_kid
        return kid, base64.b64encode(self._private[kid].sign(data)).decode()

    def verify(self, kid: str, data: bytes, signature: str) -> bool:
        key = self._public.get(kid)
        if key is None:
            return False
        try:
            key.verify(base64.b64decode(signature), data)
        except (InvalidSignature, ValueError):
            return False
        return True

    def public_keys(self) -> dict[str, str]:
        """``{kid: base64 raw public key}``: safe to publish."""
        return {
            kid: base64.b64encode(
                key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
            ).decode()
            for kid, key in self._public.items()
        }
