"""ICE servers for browsers, with time-limited TURN credentials.

coturn's ``use-auth-secret`` scheme (the "TURN REST API"): the username is
``<expiry unix time>:<participant>`` and the password is base64(HMAC-SHA1(secret, username)).
coturn checks both without knowing Courtlink; nothing long-lived reaches the browser.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["BrowserIce", "IceServers", "ice_servers"]

# participant id -> the ICE servers (STUN, TURN with fresh credentials) for its browser
IceServers = Callable[[str], list[dict[str, Any]]]


def _no_servers(_participant: str) -> list[dict[str, Any]]:
    return []


def ice_servers(
    stun_urls: list[str],
    turn_urls: list[str],
    turn_secret: str,
    participant: str,
    *,
    ttl_seconds: int = 6 * 3600,
    now: float | None = None,
) -> list[dict[str, Any]]:
    servers: list[dict[str, Any]] = []
    if stun_urls:
        servers.append({"urls": list(stun_urls)})
    if turn_urls and turn_secret:
        expiry = int((time.time() if now is None else now) + ttl_seconds)
        username = f"{expiry}:{participant}"
        digest = hmac.new(turn_secret.encode(), username.encode(), hashlib.sha1).digest()
        servers.append(
            {
                "urls": list(turn_urls),
                "username": username,
                "credential": base64.b64encode(digest).decode(),
            }
        )
    return servers


@dataclass(frozen=True, slots=True)
class BrowserIce:
    """What every offer tells the browser about ICE: the servers (TURN credentials are made per
    participant, so that one leaked credential admits nobody else) and the transport policy
    (``relay`` forces TURN, for networks that allow nothing else)."""

    servers: IceServers = field(default=_no_servers)
    transport_policy: str = "all"

    def offer(self, offer: dict[str, Any], participant_id: str) -> dict[str, Any]:
        """The ``media.offer`` message: the SFU's offer with the ICE settings added."""
        message = dict(offer)
        message["ice_servers"] = self.servers(participant_id)
        message["ice_transport_policy"] = self.transport_policy
        return message
