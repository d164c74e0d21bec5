"""Recorded sessions at the web edge: the judge's playback page, the manifest as a view and the
files with HTTP Range, for the case's judge only.

Everything is read through the Archive (``court/recordings.py``, ``Services.archive``), which
checks the policy (403 for anyone but the case's judge, 404 when there is no recording) and
names the file on disk; this module only translates to HTTP and HTML.

Routes:
- ``GET /sessions/{session_id}/recording``: the playback page (pages.py: four seats side by
  side, one seek bar; static/js/playback.js).
- ``GET /api/sessions/{session_id}/recording``: ``RecordingOut`` (the manifest, sealed or not).
- ``GET /api/sessions/{session_id}/recording/files/{name}``: one file of the manifest; Range and
  If-Range answered by aiohttp's FileResponse (206), so the player seeks without downloading
  the whole file.
"""

from __future__ import annotations

import asyncio

import jinja2
from aiohttp import web

from courtlink.court.policy import AccountPrincipal, Principal
from courtlink.errors import NotFound
from courtlink.web.auth import any_principal
from courtlink.web.keys import SERVICES
from courtlink.web.openapi import Api
from courtlink.web.schemas import (
    RecordingEntryOut,
    RecordingOut,
    recording_entry_out,
    recording_out,
)

__all__ = [
    "add_recording_routes",
    "case_recordings",
    "clock_text",
    "install_recording_filters",
    "recording_view",
    "size_text",
]

# What each kind of file is, for the browser (aiohttp would guess from the name alone).
_MEDIA_TYPES = {
    ("audio", ".webm"): "audio/webm",
    ("video", ".webm"): "video/webm",
    ("audio", ".mkv"): "audio/x-matroska",
    ("video", ".mkv"): "video/x-matroska",
}


def clock_text(seconds: float) -> str:
    """A duration as the player shows it: ``m:ss``, or ``h:mm:ss`` from an hour up."""
    whole = max(0, int(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def size_text(size: int) -> str:
    """Bytes in the units people read (1 KB = 1024 bytes, one decimal from MB up)."""
    if size < 1024:
        return f"{size} B"
    if size < 1024 * 1024:
        return f"{size / 1024:.0f} KB"
    if size < 1024**3:
        return f"{size / 1024**2:.1f} MB"
    return f"{size / 1024**3:.2f} GB"


async def recording_view(request: web.Request, principal: Principal) -> RecordingOut:
    """The recording of the session in the path, as the Archive lets ``principal`` see it."""
    found = await request.app[SERVICES].archive.recording(
        principal, request.match_info["session_id"]
    )
    assert found.manifest is not None  # Archive.recording answers NotFound without one
    return recording_out(found.manifest, found.sealed)


async def case_recordings(
    request: web.Request, principal: AccountPrincipal, case_id: str
) -> list[RecordingEntryOut]:
    """The recorded sessions of a case, for its judge's dashboard (newest first)."""
    found = await request.app[SERVICES].archive.recordings(principal, case_id)
    return [recording_entry_out(r) for r in reversed(found)]


# The API ------------------------------------------------------------------------------------


async def get_recording(request: web.Request, _body: None) -> RecordingOut:
    return await recording_view(request, await any_principal(request))


async def recording_file(request: web.Request, _body: None) -> web.StreamResponse:
    """One file of the recording; the Archive refuses any name its manifest does not list."""
    principal = await any_principal(request)
    session_id, name = request.match_info["session_id"], request.match_info["name"]
    path = await request.app[SERVICES].archive.file(principal, session_id, name)
    if not await asyncio.to_thread(path.is_file):
        raise NotFound("the recording's file is missing")
    kind = "audio" if ".audio." in path.name else "video"
    response = web.FileResponse(path, chunk_size=256 * 1024)
    response.headers["Content-Type"] = _MEDIA_TYPES.get(
        (kind, path.suffix), "application/octet-stream"
    )
    # Private: a court's recording must not sit in a shared cache; the browser may keep it for
    # the page's seeks (FileResponse's ETag and Last-Modified revalidate it).
    response.headers["Cache-Control"] = "private, no-cache"
    return response


def add_recording_routes(api: Api) -> None:
    tag = "recordings"
    api.add(
        "GET",
        "/api/sessions/{session_id}/recording",
        get_recording,
        summary="A session's recording: its manifest and whether it is sealed (the case's judge)",
        response=RecordingOut,
        auth="any",
        tag=tag,
    )
    api.add(
        "GET",
        "/api/sessions/{session_id}/recording/files/{name}",
        recording_file,
        summary="One file of a recording; Range requests seek (the case's judge)",
        auth="any",
        tag=tag,
    )


def install_recording_filters(env: jinja2.Environment) -> None:
    """The filters the playback page and the dashboard's list of recordings use."""
    env.filters["clock"] = clock_text
    env.filters["filesize"] = size_text
