"""Typed settings and the loader that layers default, file and environment.

Why pydantic: every key is validated once at start-up so that a bad value stops the server with
one line naming the key, instead of failing later in the middle of a call.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from courtlink.errors import ConfigError

__all__ = ["ConfigError", "Settings", "load_settings"]

ENV_PREFIX = "COURTLINK_"

# The short, documented environment names and the key each one sets.
ENV_ALIASES: dict[str, tuple[str, str]] = {
    "COURTLINK_DATA_DIR": ("server", "data_dir"),
    "COURTLINK_HOST": ("server", "host"),
    "COURTLINK_PORT": ("server", "port"),
    "COURTLINK_PUBLIC_URL": ("server", "public_url"),
    "COURTLINK_DATABASE_URL": ("database", "url"),
    "COURTLINK_REDIS_URL": ("redis", "url"),
}


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ServerSettings(_Section):
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    public_url: str = ""
    data_dir: Path = Path("./var")
    node_modules: str = ""
    # HTTPS: a PEM certificate (chain) and its key. Browsers open cameras only on https or
    # localhost. `courtlink serve --tls-self-signed` makes a certificate for LAN trials.
    tls_cert: str = ""
    tls_key: str = ""

    @model_validator(mode="after")
    def _tls(self) -> ServerSettings:
        if bool(self.tls_cert) != bool(self.tls_key):
            raise ValueError("tls_cert and tls_key: give both or neither")
        return self

    @field_validator("public_url")
    @classmethod
    def _url(cls, value: str) -> str:
        if value and not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")


class DatabaseSettings(_Section):
    url: str = ""
    echo: bool = False

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        if value and not value.startswith(("sqlite", "postgresql")):
            raise ValueError("must be a sqlite+aiosqlite:// or postgresql+asyncpg:// URL")
        return value


class RedisSettings(_Section):
    url: str = ""

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        if value and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must be a redis://, rediss:// or unix:// URL")
        return value


class SecuritySettings(_Section):
    secret_key_file: str = ""
    invite_ttl_hours: float = Field(72, gt=0, le=24 * 90)
    account_session_hours: float = Field(12, gt=0, le=24 * 30)
    login_max_failures: int = Field(5, ge=1)
    login_window_seconds: int = Field(300, ge=1)
    secure_cookies: Literal["auto", "always", "never"] = "auto"


class DetentionSettings(_Section):
    max_period_days: int = Field(15, ge=1, le=15)
    expiring_soon_days: int = Field(3, ge=0)


class SessionSettings(_Section):
    record_by_default: bool = False
    lobby_by_default: bool = True


class MediaSettings(_Section):
    # The server's ICE: bind address ("" = every interface), announced public address behind 1:1
    # NAT, and the UDP port range (0, 0 = any port). One port per participant.
    host_address: str = ""
    announced_address: str = ""
    port_min: int = Field(0, ge=0, le=65535)
    port_max: int = Field(0, ge=0, le=65535)
    ice_timeout_seconds: float = Field(20, gt=0, le=300)
    # What browsers are told: STUN and TURN servers (TURN credentials are minted per participant
    # from the shared secret, coturn's use-auth-secret), and "relay" to force TURN.
    stun_urls: list[str] = []
    turn_urls: list[str] = []
    turn_secret: str = ""
    ice_transport_policy: Literal["all", "relay"] = "all"
    # Per-viewer video (media/layers.py): browsers publish VP8 in three temporal layers and each
    # viewer gets what its own link carries (fewer layers, or audio only); false relays the
    # lowest estimate to every publisher, as before. Publishers never send more than this.
    adapt_video: bool = True
    max_video_kbps: int = Field(600, ge=100, le=10_000)
    # A weak viewer whose last picture does not fit may ask that seat's publisher for this
    # little, and no less, before the picture is paused.
    min_video_kbps: int = Field(150, ge=30, le=10_000)

    @model_validator(mode="after")
    def _video_range(self) -> MediaSettings:
        if self.min_video_kbps > self.max_video_kbps:
            raise ValueError(
                f"min_video_kbps ({self.min_video_kbps}) is above max_video_kbps"
                f" ({self.max_video_kbps})"
            )
        return self

    @field_validator("stun_urls", "turn_urls", mode="before")
    @classmethod
    def _urls(cls, value: object) -> object:
        # From the environment a list arrives as one string: comma-separated URLs.
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @model_validator(mode="after")
    def _ports(self) -> MediaSettings:
        if (self.port_min or self.port_max) and not 1024 <= self.port_min <= self.port_max:
            raise ValueError("port_min and port_max: need 1024 <= port_min <= port_max")
        if self.turn_urls and not self.turn_secret:
            raise ValueError("turn_urls need turn_secret")
        return self


class DocumentSettings(_Section):
    # The court named in the seal's certificate (and on documents of cases without one).
    court_name: str = "人民法院"
    max_upload_mb: int = Field(20, ge=1, le=200)
    # An order delivered to the detention center and not acknowledged in this time: the judge
    # is told.
    ack_timeout_minutes: float = Field(15, gt=0)
    overdue_check_seconds: float = Field(30, gt=0)


class RecordingSettings(_Section):
    # Where recorded sessions are written, one directory per session ("" = <data_dir>/recordings).
    directory: str = ""
    # Recordings older than this many days are deleted, each deletion audited; 0 keeps them.
    retention_days: int = Field(0, ge=0, le=36500)
    # Below this much free space on the recordings' disk a recording stops (what is written
    # stays whole) and the judge is alerted.
    min_free_mb: int = Field(200, ge=0)


class AuditSettings(_Section):
    checkpoint_every: int = Field(50, ge=1)
    checkpoint_seconds: float = Field(60, gt=0)


class DemoSettings(_Section):
    enabled: bool = True


class LogSettings(_Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    format: Literal["json", "text"] = "text"


class Settings(_Section):
    """The whole configuration. Immutable; build a new one with ``model_copy`` in tests."""

    server: ServerSettings = ServerSettings()
    database: DatabaseSettings = DatabaseSettings()
    redis: RedisSettings = RedisSettings()
    security: SecuritySettings = SecuritySettings()
    detention: DetentionSettings = DetentionSettings()
    sessions: SessionSettings = SessionSettings()
    media: MediaSettings = MediaSettings()
    documents: DocumentSettings = DocumentSettings()
    recording: RecordingSettings = RecordingSettings()
    audit: AuditSettings = AuditSettings()
    demo: DemoSettings = DemoSettings()
    log: LogSettings = LogSettings()

    @property
    def data_dir(self) -> Path:
        return self.server.data_dir.expanduser().resolve()

    @property
    def recordings_dir(self) -> Path:
        if self.recording.directory:
            return Path(self.recording.directory).expanduser().resolve()
        return self.data_dir / "recordings"

    @property
    def database_url(self) -> str:
        if self.database.url:
            return self.database.url
        return f"sqlite+aiosqlite:///{self.data_dir / 'courtlink.db'}"

    @property
    def public_url(self) -> str:
        if self.server.public_url:
            return self.server.public_url
        host = "127.0.0.1" if self.server.host in ("0.0.0.0", "::", "") else self.server.host  # noqa: S104
        scheme = "https" if self.server.tls_cert else "http"
        return f"{scheme}://{host}:{self.server.port}"

    @property
    def secure_cookies(self) -> bool:
        if self.security.secure_cookies == "auto":
            return self.public_url.startswith("https://")
        return self.security.secure_cookies == "always"

    @property
    def secret_key_path(self) -> Path:
        if self.security.secret_key_file:
            return Path(self.security.secret_key_file).expanduser()
        return self.data_dir / "secrets" / "secret.key"


def _read_toml(text: str, origin: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{origin}: not valid TOML: {exc}") from None


def _merge(base: dict[str, Any], over: Mapping[str, Any], origin: str) -> None:
    for section, values in over.items():
        if not isinstance(values, Mapping):
            raise ConfigError(f"{section}: must be a table, set in {origin}")
        base.setdefault(section, {}).update(values)


def _env_layer(env: Mapping[str, str]) -> dict[str, dict[str, str]]:
    layer: dict[str, dict[str, str]] = {}
    for name, (section, key) in ENV_ALIASES.items():
        if name in env:
            layer.setdefault(section, {})[key] = env[name]
    for name, value in env.items():
        if name.startswith(ENV_PREFIX + "_"):
            parts = name[len(ENV_PREFIX) + 1 :].lower().split("__")
            if len(parts) != 2 or not all(parts):
                raise ConfigError(f"{name}: use COURTLINK__<SECTION>__<KEY>")
            layer.setdefault(parts[0], {})[parts[1]] = value
    return layer


def load_settings(path: Path | None = None, env: Mapping[str, str] | None = None) -> Settings:
    """Load the default, then ``path`` (if any), then ``env`` (default: ``os.environ``).

    Raises ``ConfigError`` with one line naming the key and the reason.
    """
    env = os.environ if env is None else env
    default = (
        resources.files("courtlink.config").joinpath("default.toml").read_text(encoding="utf-8")
    )
    data = _read_toml(default, "config/default.toml")
    if path is not None:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"--config {path}: cannot read: {exc.strerror}") from None
        except UnicodeDecodeError:
            raise ConfigError(f"--config {path}: not UTF-8 text") from None
        _merge(data, _read_toml(text, str(path)), str(path))
    _merge(data, _env_layer(env), "the environment")
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        key = ".".join(str(part) for part in first["loc"])
        reason = first["msg"]
        if first["type"] == "extra_forbidden":
            reason = "unknown key"
        raise ConfigError(f"{key}: {reason}") from None
