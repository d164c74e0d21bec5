"""``python -m courtlink.cli``: the ``courtlink`` command without its console script (the bench
runs it so with its own interpreter)."""

from courtlink.cli.main import main

main(prog_name="courtlink")
