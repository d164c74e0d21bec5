"""The benchmark's server process: ``python -m courtlink.bench.server [--baseline transcode]``.

The same server as ``courtlink serve`` (cli/server.py), configured the same way (the defaults,
``COURTLINK_CONFIG``, the environment), without the demo. With ``--baseline transcode`` its
media server is the transcoding baseline (courtlink/bench/transcode.py) instead of the SFU:
the choice lives here, so the product has neither a setting nor an import for a path it never
runs. Errors are one line, as the CLI's.
"""

from __future__ import annotations

import os
from pathlib import Path

import click

from courtlink.cli.common import fail, run
from courtlink.config import load_settings
from courtlink.errors import ConfigError

__all__ = ["main"]


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--baseline",
    type=click.Choice(["transcode"]),
    help="aiortc's decode, relay, re-encode path instead of the SFU.",
)
def main(baseline: str | None) -> None:
    """Serve until SIGTERM, for courtlink bench sfu."""
    # Imported once the options are read: the server pulls in the whole app.
    from courtlink.bench.transcode import transcoding_factory
    from courtlink.cli.server import serve, use_uvloop
    from courtlink.web.app import sfu_factory

    config = os.environ.get("COURTLINK_CONFIG")
    try:
        settings = load_settings(Path(config) if config else None)
    except ConfigError as exc:
        fail(exc.message, 2)
    factory = transcoding_factory if baseline == "transcode" else sfu_factory
    use_uvloop()
    run(serve(settings, demo=False, media_factory=factory))


if __name__ == "__main__":
    main(prog_name="python -m courtlink.bench.server")
