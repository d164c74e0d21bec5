"""Detention-center terminals: shared kiosks that hold a device credential."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

__all__ = ["Terminal"]


@dataclass(frozen=True, slots=True)
class Terminal:
    id: str
    name: str
    center: str
    credential_hash: str
    created_at: datetime
    disabled: bool = False

    @property
    def actor(self) -> str:
        return f"terminal:{self.id}"
