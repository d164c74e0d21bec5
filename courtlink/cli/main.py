"""The ``courtlink`` command: the group, its common options, and where each command lives.

Each command sits in the module of its concern and imports what it runs only once it runs, so
``courtlink --help`` stays quick. Errors print one line, ``courtlink: error: <cause>``, and exit
with status 1 (2 for bad usage or configuration); never a traceback (cli/common.py).
"""

from __future__ import annotations

from pathlib import Path

import click

from courtlink.cli.archive import archive
from courtlink.cli.audit import audit
from courtlink.cli.bench import bench
from courtlink.cli.participant import participant
from courtlink.cli.records import account, db, demo, terminal
from courtlink.cli.serve import serve
from courtlink.cli.verify import verify

__all__ = ["main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="COURTLINK_CONFIG",
    help="A TOML file with the keys to change from config/default.toml.",
)
@click.version_option(package_name="courtlink")
@click.pass_context
def main(ctx: click.Context, config_file: Path | None) -> None:
    """Courtlink: court and detention-center coordination by video and by document."""
    ctx.ensure_object(dict)["config"] = config_file


main.add_command(serve)
main.add_command(db)
main.add_command(account)
main.add_command(terminal)
main.add_command(audit)
main.add_command(demo)
main.add_command(verify)
main.add_command(archive)
main.add_command(participant)
main.add_command(bench)
