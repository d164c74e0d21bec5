"""``courtlink serve``: the server's options (address, port, demo, a self-signed certificate).

The server itself (cli/server.py) is imported only once the command runs.
"""

from __future__ import annotations

from typing import Any

import click

from courtlink.cli.common import run, settings_of

__all__ = ["serve"]


@click.command()
@click.option("--host", help="Address to bind (default from config: 127.0.0.1).")
@click.option("--port", type=int, help="Port to bind (default from config: 8080).")
@click.option(
    "--demo/--no-demo", default=None, help="Create the demo on first start (default from config)."
)
@click.option(
    "--tls-self-signed",
    is_flag=True,
    help="Serve HTTPS with a self-signed certificate made in the data directory (LAN trials).",
)
@click.pass_context
def serve(
    ctx: click.Context, host: str | None, port: int | None, demo: bool | None, tls_self_signed: bool
) -> None:
    """Run the server."""
    from courtlink.cli.server import serve as run_server
    from courtlink.cli.server import use_uvloop

    settings = settings_of(ctx)
    updates: dict[str, Any] = {}
    if host is not None:
        updates["host"] = host
    if port is not None:
        updates["port"] = port
    if tls_self_signed:
        from courtlink.web.tls import self_signed

        cert, key = self_signed(
            settings.data_dir / "tls", updates.get("host", settings.server.host)
        )
        updates.update({"tls_cert": str(cert), "tls_key": str(key)})
    if updates:
        settings = settings.model_copy(
            update={"server": settings.server.model_copy(update=updates)}
        )
    use_uvloop()
    run(run_server(settings, demo=settings.demo.enabled if demo is None else demo))
