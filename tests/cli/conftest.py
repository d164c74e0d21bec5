"""Fixtures of the CLI tests: the web tests' HTTP clients, to use what a command made (the CLI
tests moved out of tests/web/ with the CLI, and fixtures of tests/web/conftest.py reach only the
tests under it)."""

from tests.web.conftest import clients

__all__ = ["clients"]
