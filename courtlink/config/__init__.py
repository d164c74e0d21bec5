"""Courtlink's configuration: the embedded default, files and environment overrides.

``load_settings`` reads ``default.toml`` next to this module, then the optional file given with
``--config``, then the environment, and validates the result into a typed ``Settings``.
"""

from courtlink.config.settings import ConfigError, Settings, load_settings

__all__ = ["ConfigError", "Settings", "load_settings"]
