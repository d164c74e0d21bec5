"""Where the server's ICE listens: one bind address and a UDP port range.

aiortc (through aioice 0.13) binds one UDP socket per peer on every interface and an ephemeral
port, with no option to change either. Firewalls and NAT rules need a known address and range, so
while the SFU runs it narrows aioice's address list and has the event loop bind aioice's sockets
inside the configured range. Both are covered by tests/media/test_aiortc_contract.py. Nothing is
changed when neither is configured.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from typing import Any

import aioice.ice

from courtlink.errors import ConfigError

__all__ = ["NetworkPolicy"]


class NetworkPolicy:
    def __init__(self, *, host_address: str = "", port_min: int = 0, port_max: int = 0) -> None:
        if (port_min or port_max) and not 1024 <= port_min <= port_max <= 65535:
            raise ConfigError("media.port_min/port_max: need 1024 <= port_min <= port_max <= 65535")
        self.host_address = host_address
        self.ports = range(port_min, port_max + 1) if port_min else None
        self._saved_addresses: Callable[..., list[str]] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._saved_endpoint: Any = None
        self._cursor = itertools.count()

    def install(self) -> None:
        if self.host_address:
            address = self.host_address
            self._saved_addresses = aioice.ice.get_host_addresses

            def only(use_ipv4: bool = True, use_ipv6: bool = False) -> list[str]:
                return [address]

            aioice.ice.get_host_addresses = only
        if self.ports is not None:
            loop = asyncio.get_running_loop()
            original = loop.create_datagram_endpoint
            ports = self.ports
            cursor = self._cursor

            async def create_datagram_endpoint(
                factory: Any, local_addr: Any = None, **kwargs: Any
            ) -> Any:
                # Only aioice's host sockets ask for port 0 from a factory defined in aioice.
                if (
                    local_addr is None
                    or local_addr[1] != 0
                    or getattr(factory, "__module__", "") != "aioice.ice"
                ):
                    return await original(factory, local_addr=local_addr, **kwargs)
                start = next(cursor)
                for i in range(len(ports)):
                    port = ports[(start + i) % len(ports)]
                    try:
                        return await original(factory, local_addr=(local_addr[0], port), **kwargs)
                    except OSError:
                        continue
                raise OSError(f"no free UDP port in {ports.start}-{ports.stop - 1}")

            self._loop = loop
            self._saved_endpoint = loop.create_datagram_endpoint
            loop.create_datagram_endpoint = create_datagram_endpoint  # type: ignore[method-assign, assignment]

    def uninstall(self) -> None:
        if self._saved_addresses is not None:
            aioice.ice.get_host_addresses = self._saved_addresses
            self._saved_addresses = None
        if self._loop is not None:
            self._loop.create_datagram_endpoint = self._saved_endpoint  # type: ignore[method-assign]
            self._loop = None
