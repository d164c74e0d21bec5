"""SDP rewriting the server needs: announcing a public address behind 1:1 NAT."""

from __future__ import annotations

import re

__all__ = ["announce"]

_CANDIDATE = re.compile(r"^(a=candidate:\S+ \d+ udp \d+ )(\S+)( \d+ typ host.*)$", re.IGNORECASE)
_CONNECTION = re.compile(r"^c=IN IP4 \S+$")


def announce(sdp: str, address: str) -> str:
    """Replace the host candidates' address (and the c= lines) with ``address``.

    aioice binds to the private address; the browser must be told the public one that the NAT
    forwards, port for port, to it (docs/operations.md).
    """
    lines = []
    for line in sdp.splitlines():
        match = _CANDIDATE.match(line)
        if match:
            line = f"{match.group(1)}{address}{match.group(3)}"
        elif _CONNECTION.match(line):
            line = f"c=IN IP4 {address}"
        lines.append(line)
    return "\r\n".join(lines) + "\r\n"
