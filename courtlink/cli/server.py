"""The server process: run the app until SIGINT/SIGTERM, print the demo links on first start.

``courtlink serve`` (cli/serve.py) runs it with the product's media path; the benchmark's own
server entry (courtlink/bench/server.py) runs it with the transcoding baseline through
``media_factory``. Imported only when a server starts: it pulls in the whole app.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
from typing import Any

from aiohttp import web

from courtlink.config import Settings
from courtlink.court.demo import ensure_demo
from courtlink.web.app import MediaFactory, create_app, sfu_factory
from courtlink.web.keys import CLERK, GATE
from courtlink.web.logs import RedactingAccessLogger, configure_logging
from courtlink.web.tls import server_context

__all__ = ["serve", "use_uvloop"]

log = logging.getLogger("courtlink.serve")


# Linux 6.15+: the longest wait between TCP retransmissions, per socket (default 120 s).
TCP_RTO_MAX_MS = getattr(socket, "TCP_RTO_MAX_MS", 44)
SIGNALING_RTO_MAX_MS = 2000


def cap_retransmission_backoff(sockets: Any) -> bool:
    """Retransmit at least every 2 s on connections accepted from ``sockets`` (Linux 6.15+).

    After a participant's network drops for ten seconds, TCP's doubling backoff holds what the
    server sends next (the new offer after a media restart) for up to several seconds more once
    the network is back. Two seconds keep TCP's own give-up time (tcp_retries2) near 27 s,
    about when engine.io gives up on a silent client anyway (10 s ping interval + 20 s timeout);
    one second would cut a connection after 15 s of outage.
    Returns whether the kernel took it; older kernels keep their default.
    """
    applied = False
    for sock in sockets or ():
        if sock.family in (socket.AF_INET, socket.AF_INET6) and sys.platform == "linux":
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, TCP_RTO_MAX_MS, SIGNALING_RTO_MAX_MS)
                applied = True
    return applied


def use_uvloop() -> None:
    """uvloop when installed: a faster event loop for signaling and media."""
    with contextlib.suppress(ImportError):
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


async def serve(
    settings: Settings,
    *,
    demo: bool = True,
    ready: asyncio.Event | None = None,
    media_factory: MediaFactory = sfu_factory,
) -> None:
    """Serve ``settings`` until SIGINT or SIGTERM; with ``demo``, create the demo and print its
    links first. ``ready`` is set once the server listens; ``media_factory`` builds the media
    server (the SFU unless the benchmark says otherwise)."""
    configure_logging(settings.log.level, settings.log.format)
    app = create_app(settings, media_factory=media_factory)
    runner = web.AppRunner(app, access_log_class=RedactingAccessLogger, handle_signals=False)
    await runner.setup()
    context = None
    if settings.server.tls_cert:
        context = server_context(settings.server.tls_cert, settings.server.tls_key)
    site = web.TCPSite(
        runner, settings.server.host, settings.server.port, reuse_address=True, ssl_context=context
    )
    await site.start()
    server = getattr(site, "_server", None)  # aiohttp keeps the asyncio server private
    if not cap_retransmission_backoff(getattr(server, "sockets", None)):
        log.info("TCP retransmission backoff left at the kernel's default (needs Linux 6.15+)")
    log.info("listening on %s (data in %s)", settings.public_url, settings.data_dir)
    if demo:
        made = await ensure_demo(app[CLERK], app[GATE])
        lines = [f"Courtlink demo session {made.session_id} at {settings.public_url}"]
        for seat, url in made.links(settings.public_url).items():
            lines.append(f"  {seat:9} {url}")
        for username, secret in made.new_credentials.items():
            lines.append(f"  login {username}: {secret}")
        if made.new_credentials:
            # Shown once on the console; kept for the operator in a file only they can read.
            creds = settings.data_dir / "demo-credentials.txt"
            fd = os.open(creds, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as handle:
                for username, secret in made.new_credentials.items():
                    handle.write(f"{username}: {secret}\n")
            lines.append(f"  (these logins are also in {creds})")
        print("\n".join(lines), file=sys.stdout, flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    if ready is not None:
        ready.set()
    try:
        await stop.wait()
    finally:
        log.info("stopping")
        await runner.cleanup()
