"""The ``courtlink`` command line (click)."""

from courtlink.cli.main import main

__all__ = ["main"]
