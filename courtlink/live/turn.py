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
from typing import Any

__all__ = ["ice_servers"]


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
