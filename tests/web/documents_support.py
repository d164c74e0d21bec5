"""Helpers of the documents tests: logged-in clients for each role, terminals, files to upload
(valid, truncated, mislabelled), signatures, PDF inspection with poppler, a Socket.IO listener.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import io
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import socketio
from PIL import Image

from courtlink.court.accounts import Account
from courtlink.court.audit import AuditEvent
from courtlink.court.seats import AccountRole
from courtlink.papers.printer import render_pdf
from courtlink.web.services import Services
from tests.conftest import LiveServer, missing
from tests.helpers import PASSWORD, PIN, World
from tests.web.support import assert_problem, login, parse_html

__all__ = [
    "CENTER",
    "COURTLINK",
    "FAR_CENTER",
    "Desk",
    "Listener",
    "Ran",
    "Served",
    "audit_events",
    "call",
    "courtlink",
    "download",
    "jpeg_bytes",
    "noise_png",
    "open_desk",
    "parse_html_result",
    "pdf_images",
    "pdf_text",
    "sha256",
    "signature",
    "small_pdf",
]

CENTER = "盐城市拘留所"
FAR_CENTER = "南京市拘留所"
Clients = Callable[..., aiohttp.ClientSession]


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# Files -----------------------------------------------------------------------------------------


def signature(width: int = 240, height: int = 90, colour: tuple[int, int, int] = (0, 0, 0)) -> str:
    """A drawn signature: a white PNG of this size with a stroke, base64 (the API's form)."""
    image = Image.new("RGB", (width, height), (255, 255, 255))
    for x in range(10, width - 10):
        y = height // 2 + int((height // 4) * ((x % 40) - 20) / 20)
        for dy in range(3):
            image.putpixel((x, min(height - 1, y + dy)), colour)
    out = io.BytesIO()
    image.save(out, "PNG")
    return base64.b64encode(out.getvalue()).decode()


def noise_png(size: int, seed: int = 7) -> bytes:
    """A valid PNG of about ``size`` bytes (random pixels do not compress)."""
    side = max(8, int((size / 3) ** 0.5))
    pixels = random.Random(seed).randbytes(side * side * 3)
    out = io.BytesIO()
    Image.frombytes("RGB", (side, side), pixels).save(out, "PNG", compress_level=1)
    return out.getvalue()


def jpeg_bytes() -> bytes:
    out = io.BytesIO()
    Image.effect_mandelbrot((320, 240), (-2, -1.2, 1, 1.2), 60).convert("RGB").save(
        out, "JPEG", quality=85
    )
    return out.getvalue()


def small_pdf(text: str = "付款凭证 payment proof") -> bytes:
    """A real one-page PDF (WeasyPrint), as a party would upload."""
    return render_pdf(f"<html><body><p>{text}</p></body></html>")


# PDFs through poppler ----------------------------------------------------------------------------


def _poppler(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        missing("poppler-utils", f"{tool} is not on PATH")
    return path  # type: ignore[return-value]


def _run_on(tool: str, pdf: bytes, *args: str) -> str:
    import tempfile

    with tempfile.NamedTemporaryFile(suffix=".pdf") as handle:
        handle.write(pdf)
        handle.flush()
        done = subprocess.run(
            [_poppler(tool), *args, handle.name, *(["-"] if tool == "pdftotext" else [])],
            capture_output=True,
            check=True,
            timeout=60,
        )
    return done.stdout.decode()


def pdf_text(pdf: bytes) -> str:
    return _run_on("pdftotext", pdf, "-enc", "UTF-8")


def pdf_images(pdf: bytes) -> list[tuple[int, int]]:
    """(width, height) of every image XObject drawn (``pdfimages -list``)."""
    lines = _run_on("pdfimages", pdf, "-list").splitlines()[2:]
    return [(int(line.split()[3]), int(line.split()[4])) for line in lines if line.strip()]


def pdf_fonts(pdf: bytes) -> list[dict[str, str]]:
    """``pdffonts``: name, emb (yes/no) of each font."""
    lines = _run_on("pdffonts", pdf).splitlines()[2:]
    fonts = []
    for line in lines:
        parts = line.split()
        # name type [type2] encoding emb sub uni object ID: the last five columns are fixed.
        fonts.append({"name": parts[0], "emb": parts[-5], "sub": parts[-4], "uni": parts[-3]})
    return fonts


def parse_html_result(page: str) -> tuple[str, str]:
    """The /verify page's verdict on a submitted copy: (data-result, the result's text)."""
    root = parse_html(page)
    verdict = root.find("section", id="verify").attrs["data-result"]
    return verdict, root.find(id="check-result").text()


# HTTP --------------------------------------------------------------------------------------------


async def call(
    client: aiohttp.ClientSession,
    method: str,
    path: str,
    *,
    json: Any = None,
    csrf: str | None = None,
    status: int = 200,
    code: str | None = None,
    **kwargs: Any,
) -> Any:
    """A request that must answer ``status``; returns the JSON body (a problem when >= 400)."""
    headers = {"X-CSRF-Token": csrf} if csrf else {}
    async with client.request(method, path, json=json, headers=headers, **kwargs) as r:
        if status >= 400:
            return await assert_problem(r, status, code)
        text = await r.text()
        assert r.status == status, f"{method} {path}: {r.status} {text}"
        return await r.json() if text else None


async def download(
    client: aiohttp.ClientSession, document_id: str, *, range_: str | None = None
) -> tuple[int, bytes, dict[str, str]]:
    headers = {"Range": range_} if range_ else {}
    async with client.get(f"/api/documents/{document_id}/file", headers=headers) as r:
        return r.status, await r.read(), dict(r.headers)


@dataclass
class Desk:
    """The live server with the world's people logged in: each has a client (own cookies)."""

    server: LiveServer
    services: Services
    world: World
    clients: Clients
    judge: aiohttp.ClientSession
    judge_csrf: str
    approver: aiohttp.ClientSession
    approver_csrf: str
    terminal: aiohttp.ClientSession  # a terminal at the detention's center
    terminal_id: str
    credential: str
    extra: dict[str, Any] = field(default_factory=dict)

    async def account(self, username: str) -> tuple[aiohttp.ClientSession, str]:
        client = self.clients()
        return client, await login(client, username)

    async def officer_desk(self) -> tuple[aiohttp.ClientSession, str]:
        """An officer account of the center that logs in with a password (build_world's officer
        has only a PIN)."""
        if "officer-desk" not in self.extra:
            await self.services.gate.add_account(
                None,
                username="officer-desk",
                display_name="值班警官",
                role=AccountRole.OFFICER,
                password=PASSWORD,
                pin=PIN,
                center=CENTER,
            )
            self.extra["officer-desk"] = True
        return await self.account("officer-desk")

    async def add_officer(self, username: str, center: str = CENTER) -> Account:
        return await self.services.gate.add_account(
            None,
            username=username,
            display_name=f"{username}警官",
            role=AccountRole.OFFICER,
            password=None,
            pin=PIN,
            center=center,
        )

    async def invitee(self, name: str) -> aiohttp.ClientSession:
        """A client holding the cookie of the world's invite ``name`` (debtor, creditor...)."""
        client = self.clients()
        async with client.get(f"/i/{self.world.tokens[name]}", allow_redirects=False) as r:
            assert r.status == 303, await r.text()
        return client

    async def new_terminal(self, name: str, center: str = CENTER) -> tuple[Any, str]:
        """(client with the terminal cookie, terminal id); the credential in ``extra``."""
        terminal, credential = await self.services.gate.add_terminal(None, name=name, center=center)
        client = self.clients()
        async with client.get(f"/t/{credential}", allow_redirects=False) as r:
            assert r.status == 303, await r.text()
        self.extra[f"credential:{terminal.id}"] = credential
        return client, terminal.id

    # The order's steps, through the API ------------------------------------------------------

    async def draft(self, kind: str = "renewal", days: int | None = 10, reason: str = "") -> Any:
        body: dict[str, Any] = {
            "kind": kind,
            "detention_id": self.world.detention.id,
            "reason": reason or ("被执行人仍拒不履行" if kind == "renewal" else "已履行完毕"),
        }
        if kind == "renewal":
            body["days"] = days
        return await call(
            self.judge, "POST", "/api/documents/orders", json=body, csrf=self.judge_csrf, status=201
        )

    async def approve(self, document_id: str) -> Any:
        return await call(
            self.approver,
            "POST",
            f"/api/documents/{document_id}/approve",
            csrf=self.approver_csrf,
        )

    async def issue(self, document_id: str) -> Any:
        return await call(
            self.judge, "POST", f"/api/documents/{document_id}/issue", csrf=self.judge_csrf
        )

    async def item_of(self, client: aiohttp.ClientSession, document_id: str) -> dict[str, Any]:
        inbox = await call(client, "GET", "/api/inbox")
        [entry] = [e for e in inbox if e["document"]["id"] == document_id]
        return entry  # type: ignore[no-any-return]

    async def receive(self, document_id: str, client: aiohttp.ClientSession | None = None) -> Any:
        """Fetch the file at the terminal, check its hash and say so."""
        client = client or self.terminal
        entry = await self.item_of(client, document_id)
        status, data, headers = await download(client, document_id)
        assert status == 200
        assert sha256(data) == headers["X-Content-SHA256"] == entry["document"]["sha256"]
        return await call(
            client,
            "POST",
            f"/api/inbox/{entry['item']['id']}/received",
            json={"sha256": sha256(data)},
        )

    async def officer(
        self,
        document_id: str,
        action: str,
        *,
        status: int = 200,
        code: str | None = None,
        client: aiohttp.ClientSession | None = None,
        **body: Any,
    ) -> Any:
        payload = {"officer": "officer", "pin": PIN, **body}
        if action == "serve" and "signature" not in payload:
            payload["signature"] = signature()
        return await call(
            client or self.terminal,
            "POST",
            f"/api/documents/{document_id}/{action}",
            json=payload,
            status=status,
            code=code,
        )

    async def document(self, document_id: str) -> Any:
        return await call(self.judge, "GET", f"/api/documents/{document_id}")

    async def case_documents(self) -> list[Any]:
        docs = await call(self.judge, "GET", f"/api/documents?case_id={self.world.case.id}")
        assert isinstance(docs, list)
        return docs

    async def file(self, document_id: str) -> bytes:
        status, data, _ = await download(self.judge, document_id)
        assert status == 200, data[:300]
        return data


async def open_desk(server: LiveServer, services: Services, world: World, clients: Clients) -> Desk:
    judge = clients()
    judge_csrf = await login(judge, "judge")
    approver = clients()
    approver_csrf = await login(approver, "approver")
    terminal, credential = await services.gate.add_terminal(None, name="会见室终端", center=CENTER)
    terminal_client = clients()
    async with terminal_client.get(f"/t/{credential}", allow_redirects=False) as r:
        assert r.status == 303
    return Desk(
        server,
        services,
        world,
        clients,
        judge,
        judge_csrf,
        approver,
        approver_csrf,
        terminal_client,
        terminal.id,
        credential,
    )


async def audit_events(services: Services, document_id: str | None = None) -> list[AuditEvent]:
    async with services.store.read() as tx:
        events = [e async for e in tx.stream_audit()]
    if document_id is None:
        return events
    return [e for e in events if e.data.get("document") == document_id]


# Socket.IO ---------------------------------------------------------------------------------------


class Listener:
    """A python-socketio client that records every event with its arrival time."""

    def __init__(self) -> None:
        self.sio = socketio.AsyncClient(reconnection=False)
        self.events: list[tuple[float, str, Any]] = []
        self._arrived = asyncio.Event()
        self.sio.on("*", self._any)

    async def _any(self, event: str, *args: Any) -> None:
        self.events.append((time.perf_counter(), event, args[0] if args else None))
        self._arrived.set()

    async def connect(
        self, url: str, *, auth: dict[str, Any], cookies: dict[str, str] | None = None
    ) -> None:
        headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in (cookies or {}).items())}
        await self.sio.connect(
            url,
            auth=auth,
            headers=headers if cookies else {},
            transports=["websocket"],
            wait_timeout=10,
        )
        await self.wait_for("welcome")

    def of(self, event: str) -> list[Any]:
        return [data for _, name, data in self.events if name == event]

    async def wait_for(
        self, event: str, match: Callable[[Any], bool] = lambda _: True, within: float = 10
    ) -> tuple[float, Any]:
        """The first ``event`` whose data matches: (arrival time, data)."""
        deadline = time.perf_counter() + within
        while True:
            for at, name, data in self.events:
                if name == event and match(data):
                    return at, data
            left = deadline - time.perf_counter()
            if left <= 0:
                seen = [name for _, name, _ in self.events]
                raise AssertionError(f"no {event} within {within} s; got {seen}")
            self._arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), min(left, 0.5))

    async def close(self) -> None:
        if self.sio.connected:
            await self.sio.disconnect()


def cookie_of(client: aiohttp.ClientSession, name: str) -> str:
    return next(c.value for c in client.cookie_jar if c.key == name)


def env_for(data_dir: os.PathLike[str] | str, port: int = 0) -> dict[str, str]:
    """The environment of a ``courtlink`` subprocess on this data directory."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("COURTLINK")}
    env.update(
        {
            "COURTLINK_DATA_DIR": str(data_dir),
            "COURTLINK_PORT": str(port),
            "COURTLINK__DEMO__ENABLED": "false",
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


# The ``courtlink`` command and server as subprocesses ------------------------------------------

COURTLINK = Path(sys.executable).with_name("courtlink")


@dataclass
class Ran:
    status: int
    out: str
    err: str


async def courtlink(*args: str, env: dict[str, str], stdin: str = "", limit: float = 90) -> Ran:
    process = await asyncio.create_subprocess_exec(
        str(COURTLINK),
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(stdin.encode()), limit)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode is not None
    return Ran(process.returncode, out.decode(), err.decode())


class Served:
    """``courtlink serve`` in a subprocess on a data directory (started, killed, restarted)."""

    def __init__(self, data_dir: Path, port: int, log: Path) -> None:
        self.data_dir, self.port, self.log = data_dir, port, log
        self.url = f"http://127.0.0.1:{port}"
        self.process: asyncio.subprocess.Process | None = None

    async def start(self, limit: float = 60) -> float:
        """Start and wait until /healthz answers; returns the seconds that took."""
        started = time.perf_counter()
        with self.log.open("ab") as log:
            self.process = await asyncio.create_subprocess_exec(
                str(COURTLINK),
                "serve",
                env=env_for(self.data_dir, self.port),
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        async with aiohttp.ClientSession() as client:
            while True:
                if self.process.returncode is not None:
                    raise AssertionError(f"courtlink serve exited: {self.log.read_text()[-3000:]}")
                try:
                    async with client.get(
                        self.url + "/healthz", timeout=aiohttp.ClientTimeout(total=2)
                    ) as r:
                        if r.status == 200:
                            return time.perf_counter() - started
                except (aiohttp.ClientError, TimeoutError):
                    pass
                if time.perf_counter() - started > limit:
                    raise AssertionError(f"no /healthz in {limit} s: {self.log.read_text()}")
                await asyncio.sleep(0.1)

    async def kill(self) -> None:
        """SIGKILL: no cleanup of any kind runs."""
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)
        await self.process.wait()
        assert self.process.returncode == -signal.SIGKILL

    async def stop(self) -> None:
        if self.process is None or self.process.returncode is not None:
            return
        self.process.terminate()
        try:
            await asyncio.wait_for(self.process.wait(), 20)
        except TimeoutError:
            self.process.kill()
            await self.process.wait()
