"""In real Chromium: the judge plays a recorded session back (four real WebM recordings of
known colours, made here with PyAV: VP8 video and Opus audio per seat, one seat starting late),
and a creditor on a phone sees the recording badge, kept live by the `recording` event."""

from __future__ import annotations

import asyncio
import hashlib
import io
import math
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest

from courtlink.signaling.outbox import session_room
from courtlink.web.keys import SIGNALING
from courtlink.web.services import Services
from tests.conftest import LiveServer, missing
from tests.court.recording_support import iso, manifest_bytes
from tests.helpers import PASSWORD, World
from tests.web.browser_support import COLOURS, PHONE, SEATS, TONES, colour_distance, poll

pytestmark = pytest.mark.browser

SECONDS = 3.0
OFFSETS = {"judge": 0.0, "officer": 0.0, "debtor": 0.5, "creditor": 0.0}  # the debtor joined late
NewContext = Callable[..., Awaitable[Any]]


def write_video(path: Path, rgb: tuple[int, int, int]) -> float:
    """``SECONDS`` of one colour, VP8 at 15 fps, 320x240; its duration."""
    import av

    with av.open(str(path), "w", format="webm") as out:
        stream: Any = out.add_stream("libvpx", rate=15)
        stream.width, stream.height, stream.pix_fmt = 320, 240, "yuv420p"
        stream.options = {"deadline": "realtime", "cpu-used": "8"}
        frames = int(SECONDS * 15)
        for i in range(frames):
            frame = av.VideoFrame(320, 240, "rgb24")
            frame.planes[0].update(bytes(rgb) * (frame.planes[0].buffer_size // 3))
            frame = frame.reformat(format="yuv420p")
            frame.pts = i
            frame.time_base = Fraction(1, 15)
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return SECONDS


def write_audio(path: Path, tone: int) -> float:
    """``SECONDS`` of a tone, Opus at 48 kHz mono; its duration."""
    import av
    import numpy as np

    with av.open(str(path), "w", format="webm") as out:
        stream: Any = out.add_stream("libopus", rate=48000)
        stream.layout = "mono"
        chunk = 960  # 20 ms
        for start in range(0, int(SECONDS * 48000), chunk):
            t = (np.arange(start, start + chunk) / 48000).astype(np.float32)
            samples = (0.3 * np.sin(2 * math.pi * tone * t)).astype(np.float32)
            frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="flt", layout="mono")
            frame.sample_rate = 48000
            frame.pts = start
            frame.time_base = Fraction(1, 48000)
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return SECONDS


def write_recording(directory: Path, session_id: str, world: World) -> None:
    """A finished recording per the contract: two files per seat and manifest.json."""
    try:
        import av  # noqa: F401
    except ImportError as exc:  # pragma: no cover - aiortc depends on it
        missing("PyAV", str(exc))
    directory.mkdir(parents=True)
    started = datetime.now(UTC) - timedelta(minutes=5)
    files = []
    for seat in SEATS:
        for kind, codec in (("video", "vp8"), ("audio", "opus")):
            name = f"{seat}.{kind}.webm"
            path = directory / name
            if kind == "video":
                duration = write_video(path, COLOURS[seat])
            else:
                duration = write_audio(path, TONES[seat])
            data = path.read_bytes()
            files.append(
                {
                    "name": name,
                    "seat": seat,
                    "kind": kind,
                    "codec": codec,
                    "started_at": iso(started + timedelta(seconds=OFFSETS[seat])),
                    "offset_seconds": OFFSETS[seat],
                    "duration_seconds": duration,
                    "bytes": len(data),
                    "sha256": hashlib.sha256(data).hexdigest(),
                }
            )
    manifest = {
        "format": "courtlink-recording/1",
        "session_id": session_id,
        "case_id": world.case.id,
        "case_number": world.case.number,
        "started_at": iso(started),
        "ended_at": iso(started + timedelta(seconds=4)),
        "complete": True,
        "stopped_because": "ended",
        "files": sorted(files, key=lambda f: str(f["name"])),
    }
    (directory / "journal.jsonl").write_text('{"event": "started"}\n{"event": "stopped"}\n')
    (directory / "manifest.json").write_bytes(manifest_bytes(manifest))


# In-page probes (function expressions: the page's CSP forbids eval).
MEDIA = """() => Array.from(document.querySelectorAll('#player video, #player audio')).map(el => ({
  seat: el.closest('.playback-tile').dataset.seat, kind: el.tagName.toLowerCase(),
  t: el.currentTime, paused: el.paused, seeking: el.seeking, ready: el.readyState,
  error: el.error ? el.error.code : null}))"""

# The centre pixel of each seat's current picture, drawn on a canvas.
PIXELS = """() => Object.fromEntries([...document.querySelectorAll('#player video')].map(v => {
  const c = document.createElement('canvas'); c.width = 32; c.height = 24;
  const g = c.getContext('2d'); g.drawImage(v, 0, 0, 32, 24);
  const d = g.getImageData(16, 12, 1, 1).data;
  return [v.closest('.playback-tile').dataset.seat, [d[0], d[1], d[2]]];
}))"""

# Where each seat's video sits in the grid, as fractions of its width and height.
BOXES = """() => {
  const g = document.querySelector('#player .playback-grid').getBoundingClientRect();
  return Object.fromEntries([...document.querySelectorAll('#player video')].map(v => {
    const r = v.getBoundingClientRect();
    const x = (r.left - g.left + r.width / 2) / g.width;
    const y = (r.top - g.top + r.height / 2) / g.height;
    return [v.closest('.playback-tile').dataset.seat, [x, y]];
  }));
}"""

SEEK = """(input, value) => { input.value = String(value);
  input.dispatchEvent(new Event('input', {bubbles: true}));
  input.dispatchEvent(new Event('change', {bubbles: true})); }"""


async def media(page: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = await page.evaluate(MEDIA)
    return found


async def position(page: Any) -> float:
    return float(await page.get_attribute("#player", "data-position") or 0)


async def settled(page: Any) -> list[dict[str, Any]]:
    return await poll(
        lambda: media(page),
        lambda els: all(not e["seeking"] and e["ready"] >= 2 for e in els),
        within=15,
        interval=0.1,
        what="every element seeked and showing a picture",
    )


async def test_judge_plays_four_seats_in_step_and_seeks_them_together(
    server: LiveServer,
    services: Services,
    world: World,
    new_context: NewContext,
) -> None:
    session = await services.clerk.create_session(world.me, case_id=world.case.id, recorded=True)
    await asyncio.to_thread(
        write_recording, services.settings.recordings_dir / session.id, session.id, world
    )
    context = await new_context(viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    await page.goto(f"{server.url}/login")
    await page.fill("input[name=username]", "judge")
    await page.fill("input[name=password]", PASSWORD)
    await page.click("form[action='/login'] button[type=submit]")
    await page.wait_for_url(f"{server.url}/dashboard")
    # The dashboard lists the recording; its link opens the player.
    await page.click(f"#recordings tr[data-session='{session.id}'] a")
    await page.wait_for_url(f"{server.url}/sessions/{session.id}/recording")
    assert await page.get_attribute("#player", "data-duration") == "3.5"
    await page.locator("#play:enabled").wait_for()
    first = await settled(page)
    assert len(first) == 8
    assert not [e for e in first if e["error"]], first

    # Four tiles of the four colours, side by side (at 1 s, when all four were in).
    await page.locator("#seek").evaluate(SEEK, 1.0)
    await settled(page)
    pixels = await page.evaluate(PIXELS)
    for seat in SEATS:
        assert colour_distance(pixels[seat], COLOURS[seat]) < 60, (seat, pixels)
    shot = await page.locator("#player .playback-grid").screenshot()
    from PIL import Image

    image = Image.open(io.BytesIO(shot)).convert("RGB")
    boxes = await page.evaluate(BOXES)
    centres = {}
    for seat, (fx, fy) in boxes.items():
        centres[seat] = fx
        rgb = image.getpixel((int(fx * image.width), int(fy * image.height)))
        assert isinstance(rgb, tuple)
        assert colour_distance(rgb, COLOURS[seat]) < 60, (seat, rgb)
    assert sorted(centres, key=centres.__getitem__) == list(SEATS)  # side by side, in order

    # Play: the one clock moves, and every element that should play plays in step with it.
    await page.click("#play")
    assert await page.text_content("#play") == "暂停"
    await poll(lambda: position(page), lambda p: p > 1.2, within=10, interval=0.1, what="playing")
    at, els = await position(page), await media(page)
    for e in els:
        assert not e["paused"], e
        assert abs(e["t"] - (at - OFFSETS[e["seat"]])) < 0.3, (at, e)
    assert float(await page.input_value("#seek")) > 1.0  # the seek bar follows
    await page.click("#play")  # pause
    # Paused at once; on a slow machine the 3.5 s may have run out before the click, which
    # then played it again from the start: paused again at its end.
    await page.wait_for_selector("#player[data-playing=no]", state="attached", timeout=15_000)

    # Seek: every video goes to the target on its own clock (the debtor's starts 0.5 s late).
    for target in (2.5, 0.8, 0.3):
        await page.locator("#seek").evaluate(SEEK, target)
        els = await settled(page)
        assert abs(await position(page) - target) < 0.01
        for e in els:
            expected = min(max(target - OFFSETS[e["seat"]], 0.0), SECONDS)
            assert abs(e["t"] - expected) < 0.15, (target, e)
    # At 0.3 s the debtor had not joined yet: its tile says so.
    assert await page.locator(".playback-tile[data-seat=debtor] .not-yet").is_visible()
    assert await page.locator(".playback-tile[data-seat=judge] .not-yet").is_hidden()

    # Seeking while playing keeps them together too; playing runs to the end and stops.
    await page.click("#play")
    await page.locator("#seek").evaluate(SEEK, 2.0)
    await poll(
        lambda: position(page), lambda p: p > 2.6, within=10, interval=0.1, what="after seek"
    )
    at, els = await position(page), await media(page)
    for e in els:
        assert abs(e["t"] - (at - OFFSETS[e["seat"]])) < 0.3, (at, e)
    await poll(
        lambda: page.get_attribute("#player", "data-playing"),
        lambda v: v == "no",
        within=10,
        what="the end",
    )
    assert await page.text_content("#play") == "播放"
    assert not errors, errors


async def test_creditor_on_a_phone_sees_the_recording_badge(
    server: LiveServer, services: Services, world: World, new_context: NewContext
) -> None:
    from courtlink.court.seats import Seat

    session = await services.clerk.create_session(world.me, case_id=world.case.id, recorded=True)
    issued = await services.clerk.issue_invite(
        world.me, session_id=session.id, seats=[Seat.CREDITOR]
    )
    page = await (await new_context(**PHONE)).new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    await page.goto(f"{server.url}/i/{issued.token}")
    await page.wait_for_url(f"{server.url}/join/{session.id}")
    badge = page.locator("#recording-badge")
    assert await badge.is_visible()  # already on the consent page
    assert (await badge.text_content() or "").split() == ["●", "录制中"]
    await page.check("input[name=agree]")
    await page.click("#consent button[type=submit]")
    await page.wait_for_selector("#room")
    assert await badge.is_visible()
    box = await badge.bounding_box()
    assert box is not None
    assert box["x"] >= 0
    assert box["x"] + box["width"] <= 390  # on the screen, not off its edge
    width = await page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= 390, f"the page scrolls sideways on a phone ({width}px)"

    # Joined: the `recording` event turns the badge off and on again.
    await page.locator("#join-button:enabled").wait_for()
    await page.locator("#join-button").tap()
    await page.locator("#leave-button").wait_for(state="visible")
    sio = server.app[SIGNALING].sio
    await sio.emit(
        "recording", {"recording": False, "reason": "disk_full"}, room=session_room(session.id)
    )
    await badge.wait_for(state="hidden")
    assert await page.locator("#recording-alert").count() == 0  # the alert is the judge's only
    await sio.emit(
        "recording", {"recording": True, "reason": "started"}, room=session_room(session.id)
    )
    await badge.wait_for(state="visible")
    await page.goto(f"{server.url}/join/{session.id}?lang=en")
    assert (await badge.text_content() or "").split() == ["●", "Recording"]
    assert not errors, errors
