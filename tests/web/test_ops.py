"""Operations: health and readiness, Prometheus metrics, the access log that never shows a
secret, and the security headers of every kind of response."""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from courtlink.config import Settings
from courtlink.court.hashing import SecretHasher
from courtlink.web.app import VERSION, create_app
from courtlink.web.keys import STORE
from courtlink.web.logs import RedactingAccessLogger, configure_logging, redact_path
from courtlink.web.services import Services
from tests.conftest import LiveServer
from tests.helpers import World, build_world
from tests.web.support import assert_problem, login, new_client, services_of

Clients = Callable[..., aiohttp.ClientSession]


# Health, readiness, metrics ----------------------------------------------------------------


async def test_healthz(clients: Clients) -> None:
    async with clients().get("/healthz") as r:
        assert r.status == 200
        assert await r.json() == {"status": "alive", "version": VERSION}


async def test_readyz_then_503_problem_when_the_database_is_closed(
    server: LiveServer, clients: Clients
) -> None:
    client = clients()
    async with client.get("/readyz") as r:
        assert r.status == 200
        assert await r.json() == {"status": "ready"}
    await server.app[STORE].close()
    async with client.get("/readyz") as r:
        problem = await assert_problem(r, 503, "unavailable")
    assert "database" in problem["detail"]
    async with client.get("/healthz") as r:  # alive, though not ready
        assert r.status == 200
    async with client.get("/metrics") as r:  # the scrape still works
        assert r.status == 200
        assert "courtlink_http_requests_total" in await r.text()
    async with client.post("/api/login", json={"username": "judge", "password": "x"}) as r:
        await assert_problem(r, 503, "unavailable")


def _samples(text: str) -> dict[str, float]:
    """``name{labels}`` -> value, from the Prometheus text format."""
    samples = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            samples[name] = float(value)
    return samples


async def test_metrics_are_prometheus_text(world: World, clients: Clients) -> None:
    client = clients()
    await login(client, "judge")
    async with client.get("/api/cases/unknown") as r:
        assert r.status == 404
    async with client.get("/metrics") as r:
        assert r.status == 200
        assert r.content_type == "text/plain"
        assert "version=" in r.headers["Content-Type"]
        text = await r.text()
    for family, kind in (
        ("courtlink_connections", "gauge"),
        ("courtlink_participants", "gauge"),
        ("courtlink_sessions", "gauge"),
        ("courtlink_signaling_events", "counter"),
        ("courtlink_errors", "counter"),
        ("courtlink_http_requests", "counter"),
    ):
        # Counters are exposed with the _total suffix of the text format.
        name = f"{family}_total" if kind == "counter" else family
        assert f"# TYPE {name} {kind}" in text, family
        assert re.search(rf"^# HELP {name} \S", text, re.M), family
    samples = _samples(text)
    assert samples["courtlink_connections"] == 0
    assert samples["courtlink_participants"] == 0
    assert samples['courtlink_sessions{state="scheduled"}'] == 1
    assert samples['courtlink_sessions{state="ended"}'] == 0
    assert (
        samples['courtlink_http_requests_total{method="POST",route="/api/login",status="200"}'] == 1
    )
    key = 'courtlink_http_requests_total{method="GET",route="/api/cases/{case_id}",status="404"}'
    assert samples[key] == 1
    assert samples['courtlink_errors_total{code="not_found",where="http"}'] == 1
    assert samples["courtlink_audit_head_seq"] > 0


async def test_metrics_never_label_a_secret(world: World, clients: Clients) -> None:
    client = clients()
    token = world.tokens["creditor"]
    async with client.get(f"/i/{token}", allow_redirects=False) as r:
        assert r.status == 303
    async with client.get("/i/not-a-token") as r:
        assert r.status == 401
    async with client.get("/metrics") as r:
        text = await r.text()
    assert token not in text
    assert "not-a-token" not in text
    assert 'route="/i/{token}"' in text


# The access log -------------------------------------------------------------------------


def test_redact_path_cuts_secrets() -> None:
    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzaWQiOiIxIn0.c2ln_-bmF0"
    assert redact_path(f"/i/{jwt}") == "/i/[redacted]"
    assert redact_path("/i/anything-at-all") == "/i/[redacted]"
    assert redact_path("/t/0123abcd.s3cr3t-credential") == "/t/[redacted]"
    assert redact_path(f"/i/{jwt}/more") == "/i/[redacted]/more"
    assert redact_path(f"/api/x?token={jwt}") == "/api/x?token=[redacted-token]"
    assert redact_path(f"/join/abc/{jwt}") == "/join/abc/[redacted-token]"
    for harmless in ("/", "/login", "/join/0123456789abcdef", "/api/invites/abc", "/static/i/x"):
        assert redact_path(harmless) == harmless
    assert redact_path("/i/") == "/i/"
    assert redact_path("/ii/abc") == "/ii/abc"


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def everything(self) -> str:
        """Every message and every extra attribute, as text."""
        parts = []
        for record in self.records:
            parts.append(record.getMessage())
            parts.extend(str(v) for v in vars(record).values())
        return "\n".join(parts)


@pytest.fixture
def access_log() -> Iterator[_Capture]:
    capture = _Capture()
    logger = logging.getLogger("aiohttp.access")
    old_level = logger.level
    logger.addHandler(capture)
    logger.setLevel(logging.INFO)
    try:
        yield capture
    finally:
        logger.removeHandler(capture)
        logger.setLevel(old_level)


@pytest.fixture
async def logged_server(settings: Settings, fast_hasher: SecretHasher) -> AsyncIterator[LiveServer]:
    """The app started the way web.serve starts it: with the redacting access logger."""
    app = create_app(settings, hasher=fast_hasher)
    runner = web.AppRunner(app, access_log_class=RedactingAccessLogger, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield LiveServer(app, runner, f"http://127.0.0.1:{port}")
    await runner.cleanup()


async def test_access_log_never_shows_an_invite_token(
    logged_server: LiveServer, access_log: _Capture
) -> None:
    services = services_of(logged_server.app)
    world = await build_world(services)
    _, credential = await services.gate.add_terminal(None, name="终端", center="盐城市拘留所")
    token = world.tokens["creditor"]
    async with new_client(logged_server.url) as client:
        async with client.get(f"/i/{token}?autojoin=1") as r:  # follows to /join
            assert r.status == 200
        async with client.get(f"/i/{token[:-3]}xyz") as r:
            assert r.status == 401
        async with client.get(f"/t/{credential}") as r:
            assert r.status == 200
        async with client.get("/healthz") as r:
            assert r.status == 200
    logged = access_log.everything()
    lines = [record.getMessage() for record in access_log.records]
    assert any(line.startswith("GET /i/[redacted] 303 ") for line in lines), lines
    assert any(line.startswith("GET /i/[redacted] 401 ") for line in lines), lines
    assert any(line.startswith("GET /t/[redacted] 303 ") for line in lines), lines
    assert any(line.startswith(f"GET /join/{world.session.id} 200 ") for line in lines), lines
    assert any(line.startswith("GET /healthz 200 ") for line in lines), lines
    assert token not in logged
    assert token.split(".")[1] not in logged  # not even the claims
    assert credential not in logged
    assert credential.split(".")[1] not in logged
    for record in access_log.records:
        assert "[redacted]" in record.path or not record.path.startswith(("/i/", "/t/"))  # type: ignore[attr-defined]
        assert isinstance(record.status, int)  # type: ignore[attr-defined]


def test_log_filter_cuts_tokens_from_any_message(capsys: pytest.CaptureFixture[str]) -> None:
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    try:
        configure_logging("INFO", "text")
        jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzaWQiOiIxIn0.c2lnbmF0dXJl"
        logging.getLogger("courtlink.test").info("opened %s", jwt)
        logging.getLogger("courtlink.test").info(f"direct {jwt}")
        err = capsys.readouterr().err
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in saved[0]:
            root.addHandler(handler)
        root.setLevel(saved[1])
    assert jwt not in err
    assert err.count("[redacted-token]") == 2


# Security headers -----------------------------------------------------------------------

SECURITY_HEADERS = {
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def _check_headers(response: aiohttp.ClientResponse, where: str) -> None:
    for name, value in SECURITY_HEADERS.items():
        assert response.headers.get(name) == value, (where, name, dict(response.headers))
    csp = response.headers.get("Content-Security-Policy", "")
    directives = dict(
        ([*part.strip().split(" ", 1), ""])[:2] for part in csp.split(";") if part.strip()
    )
    assert directives.get("default-src") == "'self'", (where, csp)
    assert directives.get("script-src") == "'self'", (where, csp)
    assert directives.get("frame-ancestors") == "'none'", (where, csp)
    assert "unsafe-inline" not in csp
    assert "unsafe-eval" not in csp


async def test_security_headers_on_every_kind_of_response(
    services: Services, world: World, clients: Clients
) -> None:
    client = clients()
    csrf = await login(client, "judge")
    anonymous = clients()
    checks: list[tuple[aiohttp.ClientSession, str, str, dict[str, str]]] = [
        (anonymous, "GET", "/login", {}),  # page
        (client, "GET", "/dashboard", {}),  # page after login
        (client, "GET", "/api/cases", {}),  # API
        (anonymous, "GET", "/api/cases", {}),  # API problem 401
        (client, "POST", "/api/cases", {"X-CSRF-Token": csrf}),  # API problem 422
        (client, "POST", "/api/logout", {}),  # API problem 403 csrf
        (anonymous, "GET", "/api/unknown", {}),  # API problem 404
        (anonymous, "GET", "/healthz", {}),
        (anonymous, "GET", "/metrics", {}),
        (anonymous, "GET", "/static/css/courtlink.css", {}),  # static file
        (anonymous, "GET", "/static/js/join.js", {}),
        (anonymous, "GET", "/i/not-a-token", {}),  # error page
        (anonymous, "GET", f"/i/{world.tokens['creditor']}", {}),  # redirect with a cookie
        (anonymous, "GET", "/", {}),  # redirect
        (anonymous, "GET", "/no-such-page", {}),  # plain 404
    ]
    for who, method, path, headers in checks:
        async with who.request(
            method,
            path,
            headers=headers,
            json={} if method == "POST" else None,
            allow_redirects=False,
        ) as r:
            _check_headers(r, f"{method} {path} -> {r.status}")


async def test_static_files_have_the_right_types(clients: Clients) -> None:
    client = clients()
    async with client.get("/static/js/join.js") as r:
        assert r.status == 200
        assert r.content_type in ("application/javascript", "text/javascript")
    async with client.get("/static/css/courtlink.css") as r:
        assert r.status == 200
        assert r.content_type == "text/css"
    async with client.get("/static/vendor/socket.io.min.js") as r:
        assert r.status == 200
        assert "max-age" in r.headers["Cache-Control"]
    async with client.get("/static/../config/default.toml") as r:
        assert r.status in (403, 404)


async def test_missing_browser_packages_answer_503(
    tmp_path: Path, fast_hasher: SecretHasher
) -> None:
    from tests.conftest import make_settings, start_server

    settings = make_settings(tmp_path / "var", server={"node_modules": str(tmp_path / "none")})
    live = await start_server(settings, fast_hasher)
    try:
        async with (
            new_client(live.url) as client,
            client.get("/static/vendor/socket.io.min.js") as r,
        ):
            await assert_problem(r, 503, "assets_missing")
    finally:
        await live.close()


async def test_socketio_endpoint_is_mounted(clients: Clients) -> None:
    async with clients().get("/socket.io/?EIO=4&transport=polling") as r:
        # No login, no invite: the handshake itself answers, the connect is refused later.
        assert r.status == 200
        assert (await r.text()).startswith("0{")
