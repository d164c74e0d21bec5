"""The application factory: composes rooms/, signaling/ and media/ into one aiohttp app.

Every resource is opened and closed in a cleanup context, in this order (closed in reverse):
storage (database, keys, audit writer, Clerk, Gate) -> presence (memory or Redis) -> media ->
signaling. Nothing lives at module level; two apps in one process are independent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from datetime import timedelta, timezone
from importlib import resources
from pathlib import Path
from typing import Any

import aiohttp_jinja2
import jinja2
import socketio
from aiohttp import web
from prometheus_client import generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from redis.asyncio import Redis

from courtlink.clock import Clock, system_clock
from courtlink.config import Settings
from courtlink.court.hashing import SecretHasher
from courtlink.court.recordings import Archive
from courtlink.errors import CourtlinkError, Unavailable
from courtlink.live.hearing import Hearing
from courtlink.live.media_port import RecordingPort
from courtlink.live.moderation import JudgeControls
from courtlink.live.negotiation import MediaNegotiation
from courtlink.live.presence import MemoryPresence, Presence
from courtlink.live.redis_presence import RedisPresence
from courtlink.live.turn import BrowserIce, ice_servers
from courtlink.media import MediaSettings, Sfu
from courtlink.media.layers import LayerSettings
from courtlink.media.recording import recover
from courtlink.media.sfu import MediaServer
from courtlink.metrics import Metrics
from courtlink.papers.filters import install_filters
from courtlink.signaling.documents import DocumentNotifier
from courtlink.signaling.outbox import SocketOutbox
from courtlink.signaling.server import SignalingServer, socket_server
from courtlink.web.api import API, build_api
from courtlink.web.assets import add_vendor_routes
from courtlink.web.auth import socket_authenticator
from courtlink.web.i18n import Translator
from courtlink.web.keys import (
    AUDITOR,
    CLERK,
    FILES,
    GATE,
    KEYRING,
    MEDIA,
    METRICS,
    PRESENCE,
    REGISTRY,
    SEAL,
    SERVICES,
    SETTINGS,
    SIGNALING,
    STORE,
    TRANSLATOR,
)
from courtlink.web.pages import add_page_routes
from courtlink.web.problems import problem, problem_middleware, security_headers
from courtlink.web.schemas import document_json, item_json
from courtlink.web.services import open_services

__all__ = ["VERSION", "create_app"]

VERSION = "0.1.0"
log = logging.getLogger("courtlink.app")
# How often recordings past their retention are deleted, and how long a recording directory
# must have been left unwritten before start-up takes it for unfinished.
RETENTION_SWEEP_SECONDS = 3600.0
QUIET_SECONDS = 30.0
CST = timezone(timedelta(hours=8), "CST")

HASHER = web.AppKey("hasher", SecretHasher)
CLOCK = web.AppKey("clock", object)
REDIS = web.AppKey("redis", Redis)

# Builds the media server from its settings and the app's metrics; the default is the SFU. The
# benchmark passes its transcoding baseline here (courtlink.bench.transcode), so the app never
# imports it.
MediaFactory = Callable[[MediaSettings, Metrics], MediaServer[Any, Any]]
MEDIA_FACTORY = web.AppKey("media_factory", object)


def sfu_factory(options: MediaSettings, metrics: Metrics) -> MediaServer[Any, Any]:
    """The product's media path: the SFU, sampling its added latency into the metrics."""
    return Sfu(options, observe_latency=metrics.media_latency.observe)


def create_app(
    settings: Settings,
    *,
    clock: Clock = system_clock,
    hasher: SecretHasher | None = None,
    media_factory: MediaFactory = sfu_factory,
) -> web.Application:
    """Build the app. Nothing is opened until it starts (cleanup contexts)."""
    app = web.Application(
        middlewares=[security_headers, problem_middleware], client_max_size=2 * 1024**2
    )
    app[SETTINGS] = settings
    app[METRICS] = Metrics()
    app[TRANSLATOR] = Translator()
    if hasher is not None:
        app[HASHER] = hasher
    app[CLOCK] = clock
    app[MEDIA_FACTORY] = media_factory

    env = aiohttp_jinja2.setup(
        app,
        loader=jinja2.PackageLoader("courtlink.web", "templates"),
        autoescape=jinja2.select_autoescape(["html"]),
        undefined=jinja2.StrictUndefined,
    )
    app[TRANSLATOR].install(env)
    install_filters(env)

    app.cleanup_ctx.append(_storage)
    app.cleanup_ctx.append(_recordings)
    app.cleanup_ctx.append(_presence)
    app.cleanup_ctx.append(_media)
    app.cleanup_ctx.append(_signaling)
    app.cleanup_ctx.append(_documents)

    api = build_api(VERSION)
    app[API] = api
    api.register(app)
    add_page_routes(app)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/favicon.ico", favicon)
    app.router.add_static(
        "/static/", Path(str(resources.files("courtlink.web").joinpath("static"))), name="static"
    )
    add_vendor_routes(app, settings)
    for method in ("GET", "POST", "OPTIONS"):
        app.router.add_route(method, "/socket.io/", _socketio)
    return app


async def _socketio(request: web.Request) -> web.StreamResponse:
    response: web.StreamResponse = await request.app[SIGNALING].sio.handle_request(request)
    return response


# Cleanup contexts -----------------------------------------------------------------------


@contextlib.asynccontextmanager
async def running(work: Coroutine[Any, Any, None], name: str) -> AsyncIterator[None]:
    """A background task for as long as the block runs: cancelled, and waited for, at its end."""
    task = asyncio.create_task(work, name=name)
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _storage(app: web.Application) -> AsyncIterator[None]:
    clock: Clock = app[CLOCK]  # type: ignore[assignment]
    async with open_services(app[SETTINGS], clock=clock, hasher=app.get(HASHER)) as services:
        app[STORE] = services.store
        app[KEYRING] = services.keys
        app[AUDITOR] = services.auditor
        app[CLERK] = services.clerk
        app[GATE] = services.gate
        app[REGISTRY] = services.registry
        app[SEAL] = services.seal
        app[FILES] = services.files
        app[SERVICES] = services
        async with running(services.auditor.run(), "audit-checkpoints"):
            yield


async def _recordings(app: web.Application) -> AsyncIterator[None]:
    """Recordings, before any session can go live: a recording a killed server left without a
    manifest gets one rebuilt from its journal (``complete`` false, ``recovered_after_crash``:
    the files play up to the kill), and every finished recording not yet sealed is sealed. Then
    the retention sweep, now and every ``RETENTION_SWEEP_SECONDS``."""
    archive = app[SERVICES].archive
    clock: Clock = app[CLOCK]  # type: ignore[assignment]
    for session_id, outcome in await finish_recordings(archive, app[SETTINGS].recordings_dir):
        log.warning("recording of session %s: %s", session_id, outcome)

    async def sweep() -> None:
        while True:
            try:
                report = await archive.sweep(clock())
                if report.deleted or report.failed:
                    log.info(
                        "retention: %d recordings deleted, %d failed (each audited)",
                        len(report.deleted),
                        len(report.failed),
                    )
            except (CourtlinkError, OSError) as exc:
                log.error("retention sweep failed: %s", exc)
            await asyncio.sleep(RETENTION_SWEEP_SECONDS)

    async with running(sweep(), "recordings-retention"):
        yield


async def finish_recordings(archive: Archive, directory: Path) -> list[tuple[str, str]]:
    """Rebuild the manifest of every recording a killed server left unfinished and seal every
    finished recording not sealed yet (a crash between the manifest and the seal); what was
    done, per session. A directory written in the last ``QUIET_SECONDS`` is left alone: a
    recorder may still be writing it (several nodes sharing one recordings directory)."""
    done: list[tuple[str, str]] = []
    for path in await asyncio.to_thread(_unsealed, directory):
        try:
            if await asyncio.to_thread(recover, path) is not None:
                done.append((path.name, "manifest rebuilt after a crash"))
            await archive.seal(path.name, path)
            done.append((path.name, "sealed"))
        except (CourtlinkError, OSError, ValueError) as exc:
            # Audited by the archive where it concerns the recording (seal refused); the
            # recording stays as it is for an operator, never deleted.
            done.append((path.name, f"not sealed: {exc}"))
    return done


def _unsealed(directory: Path) -> list[Path]:
    """Recording directories without a seal whose files nobody wrote recently."""
    if not directory.is_dir():
        return []
    now = time.time()
    found = []
    for path in sorted(directory.iterdir()):
        if not path.is_dir() or path.name.startswith(".") or (path / "manifest.p7s").exists():
            continue
        newest = max((f.stat().st_mtime for f in path.iterdir()), default=0.0)
        if now - newest >= QUIET_SECONDS:
            found.append(path)
    return found


async def _presence(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    presence: Presence
    redis: Redis | None = None
    if settings.redis.url:
        redis = Redis.from_url(settings.redis.url)
        try:
            await redis.ping()
        except Exception as exc:
            await redis.aclose()
            raise Unavailable(f"redis.url: Redis unreachable ({type(exc).__name__})") from None
        presence = RedisPresence(redis)
        await presence.start()
        app[REDIS] = redis
    else:
        presence = MemoryPresence()
    app[PRESENCE] = presence
    try:
        yield
    finally:
        await presence.close()
        if redis is not None:
            await redis.aclose()


async def _media(app: web.Application) -> AsyncIterator[None]:
    media = app[SETTINGS].media
    options = MediaSettings(
        ice_timeout=media.ice_timeout_seconds,
        announced_address=media.announced_address,
        host_address=media.host_address,
        port_min=media.port_min,
        port_max=media.port_max,
        min_free_mb=app[SETTINGS].recording.min_free_mb,
        layers=LayerSettings(
            adapt=media.adapt_video,
            max_video_bps=media.max_video_kbps * 1000,
            min_video_bps=media.min_video_kbps * 1000,
        ),
    )
    factory: MediaFactory = app[MEDIA_FACTORY]  # type: ignore[assignment]
    sfu = factory(options, app[METRICS])
    await sfu.start()
    app[MEDIA] = sfu
    try:
        yield
    finally:
        await sfu.close()


async def _signaling(app: web.Application) -> AsyncIterator[None]:
    """The live session (live/) served over Socket.IO (signaling/): signaling carries what the
    hearing tells clients through its outbox, and media meets the hearing through the MediaPort."""
    settings = app[SETTINGS]
    manager = socketio.AsyncRedisManager(settings.redis.url) if settings.redis.url else None
    outbox = SocketOutbox(socket_server(client_manager=manager, cors_allowed_origins=None))
    ice = BrowserIce(
        servers=lambda participant: ice_servers(
            settings.media.stun_urls,
            settings.media.turn_urls,
            settings.media.turn_secret,
            participant,
        ),
        transport_policy=settings.media.ice_transport_policy,
    )
    archive = app[SERVICES].archive

    async def seal(session_id: str, directory: Path) -> None:
        """Seal a recording (manifest.p7s, the audit event) as soon as its manifest is written."""
        await archive.seal(session_id, directory)

    hearing = Hearing(
        clerk=app[CLERK],
        presence=app[PRESENCE],
        outbox=outbox,
        metrics=app[METRICS],
        media=app[MEDIA],
        ice=ice,
        # A media server that records (the SFU) records the sessions created recorded.
        recorder=recorder if isinstance(recorder := app[MEDIA], RecordingPort) else None,
        recordings_dir=settings.recordings_dir,
        on_recording_stopped=seal,
    )
    server = SignalingServer(
        outbox,
        hearing,
        controls=JudgeControls(hearing, app[CLERK]),
        negotiation=MediaNegotiation(hearing, app[MEDIA]),
        clerk=app[CLERK],
        authenticate=socket_authenticator(app),
        metrics=app[METRICS],
    )
    app[SIGNALING] = server
    try:
        yield
    finally:
        await server.close()


async def _documents(app: web.Application) -> AsyncIterator[None]:
    """Live document notifications, and the watch for orders nobody acknowledged in time."""
    registry = app[REGISTRY]
    registry.notifier = DocumentNotifier(
        app[SIGNALING].sio, document_view=document_json, item_view=item_json
    )
    interval = app[SETTINGS].documents.overdue_check_seconds

    async def watch() -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await registry.report_overdue()
            except CourtlinkError as exc:
                log.warning("overdue check failed: %s", exc.message)

    async with running(watch(), "documents-overdue"):
        yield


# Operations -----------------------------------------------------------------------------


async def favicon(request: web.Request) -> web.StreamResponse:
    path = Path(str(resources.files("courtlink.web").joinpath("static", "favicon.svg")))
    return web.FileResponse(
        path, headers={"Content-Type": "image/svg+xml", "Cache-Control": "public, max-age=86400"}
    )


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "alive", "version": VERSION})


async def readyz(request: web.Request) -> web.Response:
    try:
        await request.app[STORE].ping()
        if REDIS in request.app:
            await request.app[REDIS].ping()
    except (CourtlinkError, OSError, ConnectionError) as exc:
        return problem(503, "unavailable", "not ready", str(exc))
    return web.json_response({"status": "ready"})


async def metrics(request: web.Request) -> web.Response:
    m = request.app[METRICS]
    try:
        tally = await request.app[CLERK].tally()
        m.audit_events.set(tally.audit_events)
        for state, count in tally.sessions.items():
            m.sessions.labels(state=state).set(count)
    except CourtlinkError:
        pass  # the scrape still shows the counters; /readyz reports the database
    m.threads.set(threading.active_count())
    m.tasks.set(len(asyncio.all_tasks()))
    if MEDIA in request.app:
        for kind, value in request.app[MEDIA].counts().items():
            m.media.labels(kind=kind).set(value)
    body = generate_latest(m.registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
