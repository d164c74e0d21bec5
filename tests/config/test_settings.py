"""Settings: the embedded default, a --config file over it, the environment over both, and one
clear line naming the key for every bad value (from Python and from the command line)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from courtlink.config import Settings, load_settings
from courtlink.config.settings import ENV_ALIASES
from courtlink.errors import ConfigError

COURTLINK = Path(sys.executable).with_name("courtlink")


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# Defaults ---------------------------------------------------------------------------------


def test_defaults_are_one_process_with_sqlite_in_the_data_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_settings(env={})
    assert settings.server.host == "127.0.0.1"
    assert settings.server.port == 8080
    assert settings.data_dir == (tmp_path / "var").resolve()
    assert settings.database.url == ""
    assert (
        settings.database_url == f"sqlite+aiosqlite:///{(tmp_path / 'var').resolve()}/courtlink.db"
    )
    assert settings.redis.url == ""
    assert settings.public_url == "http://127.0.0.1:8080"
    assert settings.secure_cookies is False
    assert settings.secret_key_path == settings.data_dir / "secrets" / "secret.key"
    assert settings.detention.max_period_days == 15
    assert settings.detention.expiring_soon_days == 3
    assert settings.security.login_max_failures == 5
    assert settings.sessions.lobby_by_default is True
    assert settings.sessions.record_by_default is False
    assert settings.demo.enabled is True
    assert settings.log.level == "INFO"


def test_the_embedded_default_equals_the_model_defaults() -> None:
    """config/default.toml and the pydantic defaults say the same thing."""
    assert load_settings(env={}) == Settings()


def test_the_environment_is_read_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COURTLINK_PORT", "9123")
    assert load_settings().server.port == 9123


def test_settings_are_immutable() -> None:
    settings = load_settings(env={})
    with pytest.raises(ValueError, match="frozen"):
        settings.server.port = 1  # type: ignore[misc]


# A file over the default ------------------------------------------------------------------


def test_config_file_overrides_only_its_keys(tmp_path: Path) -> None:
    path = write(
        tmp_path / "court.toml",
        """
[server]
port = 9000
public_url = "https://court.example/"

[detention]
expiring_soon_days = 2

[database]
url = "postgresql+asyncpg://courtlink@db/courtlink"
""",
    )
    settings = load_settings(path, env={})
    default = load_settings(env={})
    assert settings.server.port == 9000
    assert settings.server.host == default.server.host  # same section, key not in the file
    assert settings.public_url == "https://court.example"  # trailing slash dropped
    assert settings.secure_cookies is True  # https public URL
    assert settings.detention.expiring_soon_days == 2
    assert settings.detention.max_period_days == 15
    assert settings.database_url == "postgresql+asyncpg://courtlink@db/courtlink"
    for section in ("redis", "security", "sessions", "audit", "demo", "log"):
        assert getattr(settings, section) == getattr(default, section), section


def test_empty_config_file_changes_nothing(tmp_path: Path) -> None:
    assert load_settings(write(tmp_path / "empty.toml", ""), env={}) == load_settings(env={})


def test_secret_key_file_and_data_dir_from_a_file(tmp_path: Path) -> None:
    path = write(
        tmp_path / "c.toml",
        f'[server]\ndata_dir = "{tmp_path / "data"}"\n[security]\nsecret_key_file = "~/k"\n',
    )
    settings = load_settings(path, env={})
    assert settings.data_dir == (tmp_path / "data").resolve()
    assert settings.secret_key_path == Path("~/k").expanduser()


# The environment over both ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "value", "attribute", "expected"),
    [
        ("COURTLINK_DATA_DIR", "/srv/courtlink", "data_dir", Path("/srv/courtlink")),
        ("COURTLINK_HOST", "0.0.0.0", "host", "0.0.0.0"),
        ("COURTLINK_PORT", "8443", "port", 8443),
        ("COURTLINK_PUBLIC_URL", "https://fy.example.cn", "public_url", "https://fy.example.cn"),
        (
            "COURTLINK_DATABASE_URL",
            "postgresql+asyncpg://u@h/db",
            "database_url",
            "postgresql+asyncpg://u@h/db",
        ),
        ("COURTLINK_REDIS_URL", "redis://cache:6379/2", "redis", "redis://cache:6379/2"),
    ],
)
def test_the_six_short_environment_names(
    name: str, value: str, attribute: str, expected: object
) -> None:
    settings = load_settings(env={name: value})
    actual = {
        "data_dir": settings.data_dir,
        "host": settings.server.host,
        "port": settings.server.port,
        "public_url": settings.public_url,
        "database_url": settings.database_url,
        "redis": settings.redis.url,
    }[attribute]
    assert actual == expected


def test_the_short_names_are_exactly_six() -> None:
    assert set(ENV_ALIASES) == {
        "COURTLINK_DATA_DIR",
        "COURTLINK_HOST",
        "COURTLINK_PORT",
        "COURTLINK_PUBLIC_URL",
        "COURTLINK_DATABASE_URL",
        "COURTLINK_REDIS_URL",
    }


def test_public_url_follows_host_and_port() -> None:
    assert load_settings(env={"COURTLINK_PORT": "9000"}).public_url == "http://127.0.0.1:9000"
    wildcard = load_settings(env={"COURTLINK_HOST": "0.0.0.0"})
    assert wildcard.public_url == "http://127.0.0.1:8080"  # a browser cannot open 0.0.0.0
    named = load_settings(env={"COURTLINK_HOST": "court.lan"})
    assert named.public_url == "http://court.lan:8080"


def test_any_key_as_section_and_key(tmp_path: Path) -> None:
    env = {
        "COURTLINK__DETENTION__MAX_PERIOD_DAYS": "10",
        "COURTLINK__DEMO__ENABLED": "false",
        "COURTLINK__SECURITY__SECURE_COOKIES": "always",
        "COURTLINK__SECURITY__INVITE_TTL_HOURS": "1.5",
        "COURTLINK__LOG__FORMAT": "json",
        "COURTLINK__SERVER__PORT": "9001",
    }
    settings = load_settings(env=env)
    assert settings.detention.max_period_days == 10
    assert settings.demo.enabled is False
    assert settings.secure_cookies is True
    assert settings.security.invite_ttl_hours == 1.5
    assert settings.log.format == "json"
    assert settings.server.port == 9001


def test_environment_wins_over_the_file(tmp_path: Path) -> None:
    path = write(tmp_path / "c.toml", '[server]\nport = 9000\nhost = "10.0.0.1"\n')
    settings = load_settings(path, env={"COURTLINK_PORT": "9100"})
    assert settings.server.port == 9100
    assert settings.server.host == "10.0.0.1"


def test_unrelated_environment_is_ignored() -> None:
    env = {"COURTLINK_CONFIG": "x.toml", "COURTLINK_TEST_REDIS": "redis://x", "PORT": "1"}
    assert load_settings(env=env) == load_settings(env={})


# Bad values: ConfigError naming the key ---------------------------------------------------


@pytest.mark.parametrize(
    ("toml", "key"),
    [
        ("[server]\nport = 70000\n", "server.port"),
        ("[server]\nport = -1\n", "server.port"),
        ('[server]\nport = "eighty"\n', "server.port"),
        ("[detention]\nmax_period_days = 16\n", "detention.max_period_days"),
        ("[detention]\nmax_period_days = 0\n", "detention.max_period_days"),
        ('[database]\nurl = "mysql://u@h/db"\n', "database.url"),
        ('[redis]\nurl = "http://cache"\n', "redis.url"),
        ('[server]\npublic_url = "court.example"\n', "server.public_url"),
        ("[server]\nprot = 8080\n", "server.prot"),
        ("[surprise]\nx = 1\n", "surprise"),
        ("port = 8080\n", "port"),
        ('[security]\nsecure_cookies = "sometimes"\n', "security.secure_cookies"),
        ('[log]\nlevel = "LOUD"\n', "log.level"),
        ("[security]\ninvite_ttl_hours = 0\n", "security.invite_ttl_hours"),
        ("[server.extra]\nx = 1\n", "server.extra"),
    ],
)
def test_bad_file_values_name_the_key(tmp_path: Path, toml: str, key: str) -> None:
    path = write(tmp_path / "bad.toml", toml)
    with pytest.raises(ConfigError) as caught:
        load_settings(path, env={})
    message = caught.value.message
    assert message.startswith(key + ":"), message
    assert "\n" not in message
    assert caught.value.code == "config_invalid"


def test_unknown_key_says_so(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^server\.prot: unknown key$"):
        load_settings(write(tmp_path / "bad.toml", "[server]\nprot = 1\n"), env={})


@pytest.mark.parametrize(
    ("env", "key"),
    [
        ({"COURTLINK_PORT": "70000"}, "server.port"),
        ({"COURTLINK_PORT": "http"}, "server.port"),
        ({"COURTLINK_DATABASE_URL": "mysql://u@h/db"}, "database.url"),
        ({"COURTLINK_REDIS_URL": "localhost:6379"}, "redis.url"),
        ({"COURTLINK__DETENTION__MAX_PERIOD_DAYS": "16"}, "detention.max_period_days"),
        ({"COURTLINK__DEMO__ENABLED": "perhaps"}, "demo.enabled"),
        ({"COURTLINK__SERVER__NOPE": "1"}, "server.nope"),
        ({"COURTLINK__NOPE__X": "1"}, "nope"),
        ({"COURTLINK__SERVER": "1"}, "COURTLINK__SERVER"),
        ({"COURTLINK__A__B__C": "1"}, "COURTLINK__A__B__C"),
    ],
)
def test_bad_environment_values_name_the_key(env: dict[str, str], key: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(env=env)
    assert caught.value.message.startswith(key + ":"), caught.value.message


def test_bad_toml_names_the_file(tmp_path: Path) -> None:
    path = write(tmp_path / "broken.toml", "[server\nport = 1\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(path, env={})
    assert caught.value.message.startswith(f"{path}: not valid TOML")
    assert "line 1" in caught.value.message


@pytest.mark.parametrize("kind", ["missing", "directory", "below a file", "not utf-8"])
def test_unreadable_file_names_the_file(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "court.toml"
    if kind == "directory":
        path.mkdir()
    elif kind == "below a file":
        path = write(path, "[server]\n") / "other.toml"
    elif kind == "not utf-8":
        path.write_bytes(b'[server]\nhost = "\xff\xfe"\n')
    with pytest.raises(ConfigError) as caught:
        load_settings(path, env={})
    assert str(path) in caught.value.message
    assert "\n" not in caught.value.message


# The command line -------------------------------------------------------------------------


def start_cli(*args: str, cwd: Path, **env: str) -> subprocess.Popen[str]:
    """``courtlink`` with only these COURTLINK_ variables and its data in ``cwd``/var."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("COURTLINK")}
    clean["COURTLINK_DATA_DIR"] = str(cwd / "var")
    return subprocess.Popen(
        [str(COURTLINK), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**clean, **env},
        cwd=cwd,
    )


def test_cli_reports_bad_configuration_in_one_line(tmp_path: Path) -> None:
    """``courtlink ... db upgrade`` with a bad file or environment: exit 2, one line, no trace.

    The cases run at once (each its own directory): every start of the CLI takes a second."""
    cases: list[tuple[bytes | None, dict[str, str], str]] = [
        (b"[server]\nport = 70000\n", {}, "server.port"),
        (b"[detention]\nmax_period_days = 16\n", {}, "detention.max_period_days"),
        (b"[server\n", {}, "bad.toml"),
        (b'[server]\nhost = "\xff"\n', {}, "bad.toml"),  # not UTF-8
        (None, {"COURTLINK_DATABASE_URL": "mysql://x"}, "database.url"),
        # The file named by COURTLINK_CONFIG instead of --config.
        (b"[server]\nport = 70000\n", {"COURTLINK_CONFIG": "bad.toml"}, "server.port"),
    ]
    running = []
    for n, (content, env, _) in enumerate(cases):
        where = tmp_path / str(n)
        where.mkdir()
        args = ["db", "upgrade"]
        if content is not None:
            (where / "bad.toml").write_bytes(content)
            if "COURTLINK_CONFIG" not in env:
                args = ["--config", "bad.toml", *args]
        running.append((where, start_cli(*args, cwd=where, **env)))
    for (where, process), (_, _, key) in zip(running, cases, strict=True):
        out, err = process.communicate(timeout=60)
        assert process.returncode == 2, (key, err)
        lines = err.splitlines()
        assert len(lines) == 1, err
        assert lines[0].startswith("courtlink: error: "), lines
        assert key in lines[0], lines
        assert "Traceback" not in err
        assert out == ""
        assert not (where / "var").exists()  # nothing was created
