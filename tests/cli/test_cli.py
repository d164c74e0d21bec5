"""The ``courtlink`` command, run as a user runs it: a subprocess with its own data directory."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import stat
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

from courtlink.config import Settings
from courtlink.court.hashing import SecretHasher
from courtlink.court.seats import AccountRole
from courtlink.web.keys import CLERK
from courtlink.web.services import open_services
from tests.conftest import LiveServer, make_settings, start_server
from tests.web.support import assert_problem, login, new_client, path_of

Clients = Callable[..., aiohttp.ClientSession]
COURTLINK = Path(sys.executable).with_name("courtlink")
TIMEOUT = 30


@dataclass
class Result:
    status: int
    out: str
    err: str

    def one_error_line(self) -> str:
        """stderr is exactly one line, ``courtlink: error: ...``, and no traceback."""
        lines = self.err.splitlines()
        assert len(lines) == 1, self.err
        assert lines[0].startswith("courtlink: error: "), self.err
        assert "Traceback" not in self.err + self.out
        return lines[0]


def cli_env(data_dir: Path, **extra: str) -> dict[str, str]:
    """The environment without any COURTLINK_ setting of the caller's, plus the data dir."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("COURTLINK")}
    env["COURTLINK_DATA_DIR"] = str(data_dir)
    env.update(extra)
    return env


async def courtlink(*args: str, env: dict[str, str], stdin: str = "", cwd: Path) -> Result:
    if not COURTLINK.exists():
        pytest.fail(f"{COURTLINK} is missing: install the project (pip install -e .)")
    process = await asyncio.create_subprocess_exec(
        str(COURTLINK),
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
        cwd=cwd,
    )
    out, err = await asyncio.wait_for(process.communicate(stdin.encode()), TIMEOUT)
    assert process.returncode is not None
    return Result(process.returncode, out.decode(), err.decode())


# demo, db, audit ----------------------------------------------------------------------------


async def test_demo_json_is_idempotent_and_the_audit_chain_verifies(
    tmp_path: Path, fast_hasher: SecretHasher
) -> None:
    data = tmp_path / "var"
    env = cli_env(data, COURTLINK_PUBLIC_URL="https://court.example/")
    first = await courtlink("demo", "--json", env=env, cwd=tmp_path)
    assert first.status == 0, first.err
    assert len(first.out.splitlines()) == 1, first.out
    made = json.loads(first.out)
    assert set(made) == {"session", "invites"}
    assert set(made["invites"]) == {"judge", "officer", "debtor", "creditor"}
    for url in made["invites"].values():
        assert url.startswith("https://court.example/i/ey"), url
    assert len(set(made["invites"].values())) == 4

    second = await courtlink("demo", "--json", env=env, cwd=tmp_path)
    assert second.status == 0, second.err
    assert json.loads(second.out) == made

    verify = await courtlink("audit", "verify", env=env, cwd=tmp_path)
    assert verify.status == 0, verify.out + verify.err
    assert "ok" in verify.out

    # The links work on a server over the same data directory.
    live = await start_server(make_settings(data), fast_hasher)
    try:
        async with new_client(live.url) as client:
            async with client.get(path_of(made["invites"]["creditor"]), allow_redirects=False) as r:
                assert r.status == 303
                assert r.headers["Location"] == f"/join/{made['session']}"
            async with client.get("/api/me") as r:
                me = await r.json()
            assert me["seats"] == ["creditor"]
    finally:
        await live.close()


async def test_db_upgrade(tmp_path: Path) -> None:
    env = cli_env(tmp_path / "var")
    first = await courtlink("db", "upgrade", env=env, cwd=tmp_path)
    assert first.status == 0, first.err
    assert first.out.startswith("database at revision ")
    assert (tmp_path / "var" / "courtlink.db").is_file()


# Accounts and terminals -------------------------------------------------------------------


async def test_account_add_then_log_in(
    settings: Settings, server: LiveServer, clients: Clients, tmp_path: Path
) -> None:
    env = cli_env(settings.data_dir)
    judge = await courtlink(
        "account",
        "add",
        "--username",
        "zhang",
        "--name",
        "张法官",
        "--role",
        "judge",
        "--court",
        "盐城市盐都区人民法院",
        "--password-stdin",
        env=env,
        stdin="a long enough password\n",
        cwd=tmp_path,
    )
    assert judge.status == 0, judge.err
    assert judge.out.strip() == "account zhang (judge) created"
    officer = await courtlink(
        "account",
        "add",
        "--username",
        "chen",
        "--name",
        "陈警官",
        "--role",
        "officer",
        "--center",
        "盐城市拘留所",
        "--password-stdin",
        env=env,
        stdin="135790\nofficer password 1\n",
        cwd=tmp_path,
    )
    assert officer.status == 0, officer.err
    assert "chen (officer)" in officer.out
    assert "135790" not in officer.out + officer.err

    client = clients()
    await login(client, "zhang", "a long enough password")
    async with client.get("/api/me") as r:
        me = (await r.json())["account"]
    assert me["role"] == "judge"
    assert me["display_name"] == "张法官"
    assert me["court"] == "盐城市盐都区人民法院"
    await login(clients(), "chen", "officer password 1")
    # The officer's PIN is theirs to confirm consent with.
    officer_id = await server.app[CLERK].officer_by_pin("chen", "135790")
    async with server.app[CLERK].store.read() as tx:
        account = await tx.account_by_username("chen")
    assert account is not None
    assert account.id == officer_id
    assert account.role is AccountRole.OFFICER

    duplicate = await courtlink(
        "account",
        "add",
        "--username",
        "zhang",
        "--name",
        "又一个",
        "--role",
        "approver",
        "--password-stdin",
        env=env,
        stdin="another password\n",
        cwd=tmp_path,
    )
    assert duplicate.status == 1
    assert "already exists" in duplicate.one_error_line()


async def test_account_add_refusals_are_one_line(tmp_path: Path) -> None:
    cases = [
        (["--role", "judge"], "short\n", "8 characters"),
        (["--role", "officer", "--center", "盐城市拘留所"], "12ab\n", "PIN"),
        (["--role", "officer"], "1234\n", "detention center"),
    ]

    async def attempt(n: int, args: list[str], stdin: str) -> Result:
        full = ["account", "add", "--name", "某人", "--password-stdin", *args]
        if "--username" not in args:
            full += ["--username", "someone"]
        return await courtlink(*full, env=cli_env(tmp_path / f"var{n}"), stdin=stdin, cwd=tmp_path)

    results = await asyncio.gather(
        *(attempt(n, args, stdin) for n, (args, stdin, _) in enumerate(cases))
    )
    for (args, _, reason), result in zip(cases, results, strict=True):
        assert result.status == 1, (args, result)
        assert reason in result.one_error_line(), args


async def test_participant_refusals_are_one_line(tmp_path: Path) -> None:
    """A headless participant pointed at nothing, at a bad link, or told to record where it
    cannot write: one line naming the cause."""
    with socket.socket() as closed:  # a port nobody listens on
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    unwritable = tmp_path / "file"
    unwritable.write_text("not a directory")
    cases = [
        ([f"http://127.0.0.1:{port}/i/abc"], "cannot reach"),
        (["ftp://example/i/abc"], "--invite must be an invite link"),
        ([f"http://127.0.0.1:{port}/i/abc", "--record", str(unwritable / "out")], "--record"),
    ]
    for args, reason in cases:
        result = await courtlink(
            "participant", "--invite", *args, "--seconds", "2", env=cli_env(tmp_path), cwd=tmp_path
        )
        assert result.status == 1, (args, result)
        assert reason in result.one_error_line(), args


async def test_terminal_add_prints_a_working_credential(
    settings: Settings, server: LiveServer, clients: Clients, tmp_path: Path
) -> None:
    env = cli_env(settings.data_dir, COURTLINK_PUBLIC_URL="https://court.example")
    result = await courtlink(
        "terminal",
        "add",
        "--name",
        "会见室一号终端",
        "--center",
        "盐城市拘留所",
        "--json",
        env=env,
        cwd=tmp_path,
    )
    assert result.status == 0, result.err
    made = json.loads(result.out)
    assert set(made) == {"terminal", "credential", "url"}
    assert made["url"] == f"https://court.example/t/{made['credential']}"
    assert made["credential"].startswith(made["terminal"] + ".")

    kiosk = clients()
    async with kiosk.get(path_of(made["url"]), allow_redirects=False) as r:
        assert r.status == 303
        assert r.headers["Location"] == "/terminal"
    async with kiosk.get("/terminal") as r:
        assert r.status == 200
        assert "会见室一号终端" in await r.text()
    async with kiosk.get("/api/me") as r:
        assert (await r.json())["kind"] == "terminal"
    async with clients().get("/api/me", cookies={"cl_terminal": made["terminal"] + ".x"}) as r:
        await assert_problem(r, 401)


# serve ------------------------------------------------------------------------------------


def read(path: Path) -> str:
    return path.read_text(errors="replace")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _serve_once(tmp_path: Path, data: Path, port: int, log: Path) -> tuple[str, list[str]]:
    """Start ``courtlink serve``, read the demo lines, check /healthz, stop with SIGTERM.

    Returns the demo session id and the printed lines."""
    env = cli_env(data, COURTLINK_PORT=str(port))
    with log.open("ab") as err:
        process = await asyncio.create_subprocess_exec(
            str(COURTLINK),
            "serve",
            stdout=asyncio.subprocess.PIPE,
            stderr=err,
            env=env,
            cwd=tmp_path,
        )
    assert process.stdout is not None
    lines: list[str] = []
    try:
        while sum("/i/" in line for line in lines) < 4:
            raw = await asyncio.wait_for(process.stdout.readline(), TIMEOUT)
            if not raw:
                pytest.fail(f"serve ended early:\n{''.join(lines)}\n{read(log)}")
            lines.append(raw.decode().rstrip("\n"))
        async with new_client(f"http://127.0.0.1:{port}") as client:
            async with client.get("/healthz") as r:
                assert r.status == 200
                assert (await r.json())["status"] == "alive"
            async with client.get("/readyz") as r:
                assert r.status == 200
            link = next(line.split()[1] for line in lines if "/i/" in line)
            async with client.get(path_of(link), allow_redirects=False) as r:
                assert r.status == 303
        process.send_signal(signal.SIGTERM)
        status = await asyncio.wait_for(process.wait(), TIMEOUT)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    rest = (await process.stdout.read()).decode()
    assert status == 0, read(log)
    header = next(line for line in lines if line.startswith("Courtlink demo session "))
    assert header.endswith(f" at http://127.0.0.1:{port}")
    return header.split()[3], lines + rest.splitlines()


async def test_serve_prints_the_demo_links_and_stops_cleanly(tmp_path: Path) -> None:
    data, port, log = tmp_path / "var", free_port(), tmp_path / "serve.log"
    session, lines = await _serve_once(tmp_path, data, port, log)
    links = {line.split()[0]: line.split()[1] for line in lines if "/i/" in line}
    assert set(links) == {"judge", "officer", "debtor", "creditor"}
    for url in links.values():
        assert url.startswith(f"http://127.0.0.1:{port}/i/")
    assert any(line.strip().startswith("login demo-judge: ") for line in lines)
    credentials = data / "demo-credentials.txt"
    assert stat.S_IMODE(os.stat(credentials).st_mode) == 0o600
    assert "demo-judge: " in read(credentials)

    again, lines2 = await _serve_once(tmp_path, data, free_port(), log)
    assert again == session
    assert not any("login " in line for line in lines2)  # no new passwords either
    logged = read(log)
    assert "Traceback" not in logged
    # The access log shows the invite links it served, with the tokens cut out.
    assert logged.count("GET /i/[redacted] 303") == 2
    for url in links.values():
        assert url.rsplit("/", 1)[1] not in logged

    async with open_services(make_settings(data)) as services, services.store.read() as tx:
        assert [s.id for s in await tx.sessions()] == [session]
