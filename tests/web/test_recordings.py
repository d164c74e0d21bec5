"""Recorded sessions on the web: the recording badge (Chinese and English), the case's recordings
on the judge's dashboard, the playback page, and the manifest and file routes (who may read
them, Range requests, problem+json errors)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import aiohttp

from courtlink.court.seats import Seat
from courtlink.court.sessions import Session
from courtlink.web.services import Services
from tests.court.recording_support import manifest_bytes, write_recording
from tests.helpers import World
from tests.web.support import Node, assert_problem, login, parse_html

Clients = Callable[..., aiohttp.ClientSession]


async def page(client: aiohttp.ClientSession, path: str, status: int = 200) -> Node:
    async with client.get(path, allow_redirects=False) as r:
        text = await r.text()
        assert r.status == status, text[:2000]
        assert r.content_type == "text/html"
    assert "Traceback" not in text
    return parse_html(text)


async def recorded_session(services: Services, world: World) -> Session:
    return await services.clerk.create_session(world.me, case_id=world.case.id, recorded=True)


def record(services: Services, world: World, session: Session, **kw: Any) -> dict[str, Any]:
    """A finished recording of ``session`` in the server's recordings directory."""
    return write_recording(
        services.settings.recordings_dir / session.id,
        session_id=session.id,
        case_id=world.case.id,
        **kw,
    )


async def judge_client(clients: Clients, username: str = "judge") -> aiohttp.ClientSession:
    client = clients()
    await login(client, username)
    return client


async def invite_client(clients: Clients, token: str) -> aiohttp.ClientSession:
    client = clients()
    async with client.get(f"/i/{token}", allow_redirects=False) as r:
        assert r.status == 303
    return client


# The badge ------------------------------------------------------------------------------------


async def test_recording_badge_on_the_join_pages_of_a_recorded_session(
    services: Services, world: World, clients: Clients
) -> None:
    session = await recorded_session(services, world)
    issued = await services.clerk.issue_invite(
        world.me, session_id=session.id, seats=[Seat.CREDITOR]
    )
    creditor = await invite_client(clients, issued.token)
    # Before consent (the page a party sees first) and in English.
    doc = await page(creditor, f"/join/{session.id}")
    badge = doc.find("p", id="recording-badge")
    assert "hidden" not in badge.attrs
    assert badge.attrs["data-recording"] == "yes"
    assert badge.text() == "● 录制中"
    assert not doc.find_all(id="recording-alert")  # the alert is the judge's
    doc = await page(creditor, f"/join/{session.id}?lang=en")
    assert doc.find("p", id="recording-badge").text() == "● Recording"

    # The judge's own join page: the badge, the (hidden) alert and the script that drives both.
    judge = await judge_client(clients)
    doc = await page(judge, f"/join/{session.id}")
    assert "hidden" not in doc.find("p", id="recording-badge").attrs
    alert = doc.find("div", id="recording-alert")
    assert "hidden" in alert.attrs
    assert alert.attrs["data-disk-full"] == "录制已停止：磁盘空间不足。"
    assert alert.find("button").text() == "知道了"
    scripts = [s.attrs["src"] for s in doc.find_all("script")]
    assert scripts.index("/static/js/recording.js") < scripts.index("/static/js/join.js")
    doc = await page(judge, f"/join/{session.id}?lang=en")
    assert doc.find("div", id="recording-alert").attrs["data-disk-full"] == (
        "Recording stopped: the disk is full."
    )


async def test_no_badge_while_a_session_is_not_recorded_or_has_ended(
    services: Services, world: World, clients: Clients
) -> None:
    judge = await judge_client(clients)
    assert world.session.recorded is False
    doc = await page(judge, f"/join/{world.session.id}")
    badge = doc.find("p", id="recording-badge")  # there for the `recording` event to show
    assert "hidden" in badge.attrs
    assert badge.attrs["data-recording"] == "no"

    session = await recorded_session(services, world)
    await services.clerk.end_session(world.me, session.id)
    doc = await page(judge, f"/join/{session.id}")
    assert "hidden" in doc.find("p", id="recording-badge").attrs


async def test_dashboard_marks_recorded_sessions(
    services: Services, world: World, clients: Clients
) -> None:
    session = await recorded_session(services, world)
    judge = await judge_client(clients)
    doc = await page(judge, "/dashboard")
    card = doc.find("article", id=f"session-{session.id}")
    assert card.find("span", cls="rec-badge").text() == "● 录制中"
    assert not doc.find("article", id=f"session-{world.session.id}").find_all(cls="rec-badge")
    doc = await page(judge, "/dashboard?lang=en")
    card = doc.find("article", id=f"session-{session.id}")
    assert card.find("span", cls="rec-badge").text() == "● Recording"


# The case's recordings on the dashboard ----------------------------------------------------------


async def test_dashboard_lists_the_case_recordings(
    services: Services, world: World, clients: Clients
) -> None:
    judge = await judge_client(clients)
    doc = await page(judge, "/dashboard")
    assert not doc.find_all("section", id="recordings")  # nothing recorded yet

    finished = await recorded_session(services, world)
    record(services, world, finished, size=4096)
    running = await recorded_session(services, world)
    (services.settings.recordings_dir / running.id).mkdir(parents=True)

    doc = await page(judge, "/dashboard")
    section = doc.find("section", id="recordings")
    row = section.find("tr", data_session=finished.id)
    assert row.attrs["data-sealed"] == "no"
    assert row.attrs["data-complete"] == "yes"
    assert row.find("td", cls="duration").text() == "1:01"  # 0.25 s offset + 61.5 s
    assert row.find("td", cls="size").text() == "32 KB"  # 8 files of 4096 bytes
    assert "未签章" in row.text()
    assert "完整" in row.text()
    assert row.find("a").attrs["href"] == f"/sessions/{finished.id}/recording"
    assert "(2021)苏0903执1234号" in row.text()
    # A recording still running (no manifest yet) is listed without a link.
    live = section.find("tr", data_session=running.id)
    assert "录制中" in live.text()
    assert not live.find_all("a")

    # Sealed by the court: the list says so.
    await services.archive.seal(finished.id)
    doc = await page(judge, "/dashboard?lang=en")
    row = doc.find("section", id="recordings").find("tr", data_session=finished.id)
    assert row.attrs["data-sealed"] == "yes"
    assert "sealed by the court" in row.text()

    # Another judge's dashboard does not list this case's recordings.
    other = await judge_client(clients, "judge2")
    assert not (await page(other, "/dashboard")).find_all("section", id="recordings")


async def test_dashboard_says_why_a_recording_is_incomplete(
    services: Services, world: World, clients: Clients
) -> None:
    session = await recorded_session(services, world)
    directory = services.settings.recordings_dir / session.id
    obj = record(services, world, session)
    obj.update(complete=False, stopped_because="disk_full")
    (directory / "manifest.json").write_bytes(manifest_bytes(obj))
    judge = await judge_client(clients)
    row = (await page(judge, "/dashboard")).find("tr", data_session=session.id)
    assert row.attrs["data-complete"] == "no"
    assert "不完整" in row.text()
    assert "因磁盘空间不足而中止" in row.text()


# The playback page -----------------------------------------------------------------------------


async def test_playback_page_shows_every_seat_and_who_was_absent(
    services: Services, world: World, clients: Clients
) -> None:
    session = await recorded_session(services, world)
    record(services, world, session, seats=("judge", "officer", "debtor"))
    judge = await judge_client(clients)
    doc = await page(judge, f"/sessions/{session.id}/recording")
    assert doc.find("h1").text() == "会话录像"
    player = doc.find("section", id="player")
    assert float(player.attrs["data-duration"]) == 61.75
    tiles = player.find_all("li", cls="playback-tile")
    assert [t.attrs["data-seat"] for t in tiles] == ["judge", "officer", "debtor", "creditor"]
    for tile in tiles[:3]:
        seat = tile.attrs["data-seat"]
        assert tile.attrs["data-present"] == "yes"
        video, audio = tile.find("video"), tile.find("audio")
        base = f"/api/sessions/{session.id}/recording/files/{seat}"
        assert video.attrs["src"] == f"{base}.video.webm"
        assert audio.attrs["src"] == f"{base}.audio.webm"
        assert "muted" in video.attrs  # the sound is the <audio> element's
        assert float(video.attrs["data-offset"]) == 0.25
        assert float(audio.attrs["data-duration"]) == 61.5
    creditor = tiles[3]
    assert creditor.attrs["data-present"] == "no"
    assert creditor.find("span", cls="absent").text() == "未出席"
    assert not creditor.find_all("video")
    assert doc.find("input", id="seek").attrs["max"] == "61.75"
    assert doc.find("button", id="play").text() == "播放"
    assert [s.attrs["src"] for s in doc.find_all("script")] == ["/static/js/playback.js"]
    facts = doc.find("dl", cls="recording-facts")
    assert facts.find("dd", cls="sealed").attrs["data-sealed"] == "no"

    doc = await page(judge, f"/sessions/{session.id}/recording?lang=en")
    assert doc.find("li", data_seat="creditor").find("span", cls="absent").text() == "absent"
    assert doc.find("button", id="play").text() == "Play"


async def test_playback_page_is_for_the_case_judge(
    services: Services, world: World, clients: Clients
) -> None:
    session = await recorded_session(services, world)
    record(services, world, session)
    path = f"/sessions/{session.id}/recording"
    async with clients().get(path, allow_redirects=False) as r:
        assert r.status == 303
        assert r.headers["Location"] == "/login"
    other = await judge_client(clients, "judge2")
    doc = await page(other, path, status=403)
    assert "forbidden" in doc.text()
    judge = await judge_client(clients)
    await page(judge, f"/sessions/{world.session.id}/recording", status=404)  # not recorded


# The API -----------------------------------------------------------------------------------


async def test_recording_view_and_its_errors(
    services: Services, world: World, clients: Clients
) -> None:
    session = await recorded_session(services, world)
    written = record(services, world, session)
    judge = await judge_client(clients)
    async with judge.get(f"/api/sessions/{session.id}/recording") as r:
        assert r.status == 200, await r.text()
        body = await r.json()
    assert body["session_id"] == session.id
    assert body["case_number"] == "(2021)苏0903执1234号"
    assert body["sealed"] is False
    assert body["complete"] is True
    assert body["stopped_because"] == "ended"
    assert body["duration_seconds"] == 61.75
    assert body["bytes"] == sum(f["bytes"] for f in written["files"])
    assert [f["name"] for f in body["files"]] == [f["name"] for f in written["files"]]
    assert [f["sha256"] for f in body["files"]] == [f["sha256"] for f in written["files"]]
    assert [s["seat"] for s in body["seats"]] == ["judge", "officer", "debtor", "creditor"]
    assert body["seats"][0]["video"]["url"] == (
        f"/api/sessions/{session.id}/recording/files/judge.video.webm"
    )
    assert body["started_at"].endswith("Z")

    await services.archive.seal(session.id)
    async with judge.get(f"/api/sessions/{session.id}/recording") as r:
        assert (await r.json())["sealed"] is True

    async with judge.get(f"/api/sessions/{world.session.id}/recording") as r:
        await assert_problem(r, 404, "not_found")  # a session without a recording
    async with judge.get("/api/sessions/nosuchsession/recording") as r:
        await assert_problem(r, 404, "not_found")
    for name in ("journal.jsonl", "manifest.json", "..%2Fmanifest.json", "other.video.webm"):
        async with judge.get(f"/api/sessions/{session.id}/recording/files/{name}") as r:
            await assert_problem(r, 404)


async def test_who_may_read_a_recording(services: Services, world: World, clients: Clients) -> None:
    session = await recorded_session(services, world)
    record(services, world, session)
    paths = (
        f"/api/sessions/{session.id}/recording",
        f"/api/sessions/{session.id}/recording/files/judge.video.webm",
    )
    judge = await judge_client(clients)
    other = await judge_client(clients, "judge2")
    officer = await invite_client(clients, world.tokens["officer"])
    party = await invite_client(clients, world.tokens["creditor"])
    for path in paths:
        async with judge.get(path) as r:
            assert r.status == 200, path
        for client in (other, officer, party):
            async with client.get(path) as r:
                await assert_problem(r, 403)
        async with clients().get(path) as r:
            await assert_problem(r, 401, "not_authenticated")


async def test_files_are_served_with_ranges(
    services: Services, world: World, clients: Clients
) -> None:
    session = await recorded_session(services, world)
    record(services, world, session, size=8192)
    path = services.settings.recordings_dir / session.id / "debtor.video.webm"
    data = path.read_bytes()
    url = f"/api/sessions/{session.id}/recording/files/debtor.video.webm"
    judge = await judge_client(clients)
    async with judge.get(url) as r:
        assert r.status == 200
        assert r.headers["Content-Type"] == "video/webm"
        assert r.headers["Accept-Ranges"] == "bytes"
        assert "private" in r.headers["Cache-Control"]
        assert await r.read() == data
        etag = r.headers["ETag"]
    async with judge.get(url, headers={"Range": "bytes=100-1123"}) as r:
        assert r.status == 206
        assert r.headers["Content-Range"] == f"bytes 100-1123/{len(data)}"
        assert await r.read() == data[100:1124]
    async with judge.get(url, headers={"Range": "bytes=-10"}) as r:
        assert r.status == 206
        assert await r.read() == data[-10:]
    async with judge.get(url, headers={"Range": "bytes=100-199", "If-Range": etag}) as r:
        assert r.status == 206
    async with judge.get(url, headers={"Range": f"bytes={len(data) + 10}-"}) as r:
        assert r.status == 416
    audio = url.replace("video", "audio")
    async with judge.get(audio) as r:
        assert r.headers["Content-Type"] == "audio/webm"
        body = await r.read()
    assert (
        hashlib.sha256(body).hexdigest()
        == hashlib.sha256((path.parent / "debtor.audio.webm").read_bytes()).hexdigest()
    )
