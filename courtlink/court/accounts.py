"""Accounts of people who log in: judges, approvers and detention-center officers."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from courtlink.court.seats import AccountRole
from courtlink.errors import InvalidInput

__all__ = ["Account", "check_password", "check_pin", "check_username"]

_USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,39}$")
_PIN = re.compile(r"^\d{4,8}$")


def check_username(value: str) -> str:
    value = value.strip().lower()
    if not _USERNAME.match(value):
        raise InvalidInput("username must be 2-40 characters: a-z, 0-9, dot, dash, underscore")
    return value


def check_password(value: str) -> str:
    if len(value) < 8:
        raise InvalidInput("password must have at least 8 characters")
    if len(value) > 256:
        raise InvalidInput("password must have at most 256 characters")
    return value


def check_pin(value: str) -> str:
    if not _PIN.match(value):
        raise InvalidInput("PIN must be 4 to 8 digits")
    return value


@dataclass(frozen=True, slots=True)
class Account:
    """A person with a login. Officers also hold a personal PIN, so that what they do at a
    shared terminal is recorded under their own name."""

    id: str
    username: str
    display_name: str
    role: AccountRole
    court: str
    center: str
    is_admin: bool
    password_hash: str | None
    pin_hash: str | None
    created_at: datetime
    disabled: bool = False

    @property
    def actor(self) -> str:
        """How this account appears in the audit chain."""
        return f"account:{self.username}"
