"""Media end to end in real Chromium: one browser per seat, each with its own fake camera (a flat
colour) and microphone (a tone), against ``courtlink serve`` in a subprocess.

What is checked is what a person would see: on each page, each other seat's tile shows a video
whose frames keep coming and whose colour is that seat's camera; the judge's caucus and mute
reach every page and stop exactly the media the policy says; relay-only ICE goes through coturn
and comes back after coturn does; a page whose connection goes quiet asks for a new one; a page
without a camera says so and still shows the others.

Each test prints what it measured (frames, colours, audio packets, timings); ``pytest -s``
shows it. With ``COURTLINK__LOG__LEVEL=DEBUG`` in the environment the server logs more.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from tests.web.browser_support import (
    COLOURS,
    SEATS,
    Chromium,
    Courtlink,
    SeatPage,
    camera_opens,
    chromium_args,
    chromium_session,
    colour_distance,
    make_fake_media,
    nearest_seat,
    peer_stats,
    poll,
    probe,
    sample_twice,
    start_coturn,
    start_courtlink,
)

pytestmark = [pytest.mark.browser, pytest.mark.timeout(150)]

Probes = dict[str, dict[str, Any]]


# Fixtures ---------------------------------------------------------------------------------


@pytest.fixture
def fake_media(tmp_path: Path) -> dict[str, tuple[Path, Path]]:
    return make_fake_media(tmp_path / "media")


@pytest.fixture
async def serve(tmp_path: Path) -> AsyncIterator[Callable[..., Awaitable[Courtlink]]]:
    """``await serve(**env)``: a ``courtlink serve`` subprocess; stopped (and its log printed,
    shown when the test fails) at the end."""
    started: list[Courtlink] = []

    async def start(**env: str) -> Courtlink:
        server = await start_courtlink(tmp_path / f"courtlink{len(started)}", **env)
        started.append(server)
        return server

    yield start
    for server in started:
        await server.stop()
        print(f"--- courtlink serve log (last 60 lines) ---\n{tail(server.log_text(), 60)}")


@pytest.fixture
async def chromium(serve: Callable[..., Awaitable[Courtlink]]) -> AsyncIterator[Chromium]:
    """Chromium instances and their pages. Asks for ``serve`` so that every browser is closed
    before the server stops; describes every page at the end (shown when the test fails)."""
    async with chromium_session() as browsers:
        yield browsers


def tail(text: str, lines: int) -> str:
    return "\n".join(text.splitlines()[-lines:])


# Checks -----------------------------------------------------------------------------------


def remote_seats(viewer: str) -> list[str]:
    return [seat for seat in SEATS if seat != viewer]


def deltas(first: Probes, second: Probes) -> dict[tuple[str, str], tuple[int, int]]:
    """(viewer, seat) -> (frames decoded, frames shown) between two probes."""
    out = {}
    for viewer in first:
        for seat in remote_seats(viewer):
            a, b = first[viewer]["tiles"][seat], second[viewer]["tiles"][seat]
            out[viewer, seat] = (
                (b["decoded"] or 0) - (a["decoded"] or 0),
                (b["frames"] or 0) - (a["frames"] or 0),
            )
    return out


def report(title: str, first: Probes, second: Probes, gap: float) -> None:
    print(f"\n{title} (frames decoded / shown in {gap:.1f} s; colour; status):")
    moved = deltas(first, second)
    for viewer in first:
        cells = []
        for seat in remote_seats(viewer):
            tile = second[viewer]["tiles"][seat]
            cells.append(
                f"{seat}: +{moved[viewer, seat][0]}/+{moved[viewer, seat][1]} "
                f"rgb={tile['rgb']} [{tile['status']}]"
            )
        print(f"  {viewer:8} peer={second[viewer]['peer']:9} " + "; ".join(cells))


async def expect_flows(
    pages: dict[str, Any],
    flowing: set[tuple[str, str]],
    title: str,
    *,
    within: float = 15.0,
    settle: float = 6.0,
    gap: float = 2.0,
) -> Probes:
    """Exactly the (viewer, seat) pairs in ``flowing`` get new frames.

    Sampled in windows of ``gap`` seconds. Pairs outside ``flowing`` may decode frames still in
    flight for ``settle`` seconds; after that, or once a window was clean, one decoded frame
    fails (the policy leaked). The pairs in ``flowing`` must all get frames in one window before
    ``within`` seconds (a browser starved of CPU may miss one). Returns the last probes."""
    started = time.monotonic()
    clean = False
    while True:
        first, second, took = await sample_twice(pages, gap)
        moved = deltas(first, second)
        # Frames decoded (the receiver's stats) is the exact signal; the element may show a
        # blank frame when a new connection attaches its track.
        leaks = {pair: m for pair, m in moved.items() if pair not in flowing and m[0] > 0}
        if leaks:
            if clean or time.monotonic() - started > settle:
                report(title, first, second, took)
                raise AssertionError(f"{title}: frames where the policy forbids them: {leaks}")
            print(f"{title}: frames still in flight for {leaks}, sampling again")
            continue
        clean = True
        lagging = {pair: moved[pair] for pair in flowing if min(moved[pair]) <= 0}
        if not lagging:
            report(title, first, second, took)
            return second
        if time.monotonic() - started > within:
            report(title, first, second, took)
            raise AssertionError(f"{title}: no new frames for {within:.0f} s: {lagging}")
        print(f"{title}: no new frames yet for {lagging}, sampling again")


def assert_colours(probes: Probes, pairs: set[tuple[str, str]]) -> None:
    wrong = {}
    for viewer, seat in pairs:
        rgb = probes[viewer]["tiles"][seat]["rgb"]
        if rgb is None or nearest_seat(rgb) != seat:
            wrong[viewer, seat] = rgb
    assert not wrong, f"wrong pictures (viewer, tile) -> rgb: {wrong}"


def all_pairs(viewers: list[str] | tuple[str, ...] = SEATS) -> set[tuple[str, str]]:
    return {(viewer, seat) for viewer in viewers for seat in remote_seats(viewer)}


def pictures_everywhere(probes: Probes, pairs: set[tuple[str, str]]) -> bool:
    return all(
        probes[v]["peer"] == "connected"
        and probes[v]["tiles"][s]["rgb"] is not None
        and (probes[v]["tiles"][s]["decoded"] or 0) > 0
        for v, s in pairs
    )


async def probe_all(pages: dict[str, Any]) -> Probes:
    return dict(zip(pages, await asyncio.gather(*(probe(p) for p in pages.values())), strict=True))


def slot_mids(seat: SeatPage, kind: str) -> dict[str, str]:
    """seat -> mid of ``kind`` in the page's newest offer."""
    offer = seat.tap.last("media.offer", sent=False)
    assert offer is not None, "no media.offer seen on the page's websocket"
    return {slot["seat"]: slot["mid"] for slot in offer["slots"] if slot["kind"] == kind}


async def audio_packets(seats: dict[str, SeatPage]) -> dict[tuple[str, str], int]:
    """(listener, seat) -> audio packets received so far, from each page's peer connection."""
    out = {}
    for viewer, seat in seats.items():
        stats = await peer_stats(seat.page)
        assert stats is not None, f"no RTCPeerConnection on the {viewer} page"
        for source, mid in slot_mids(seat, "audio").items():
            out[viewer, source] = stats["inbound"].get(mid, {}).get("packets", 0)
    return out


async def expect_heard(
    seats: dict[str, SeatPage],
    flowing: set[tuple[str, str]],
    title: str,
    *,
    within: float = 15.0,
    settle: float = 6.0,
    gap: float = 2.0,
) -> None:
    """Exactly the (listener, seat) pairs in ``flowing`` receive audio packets; sampled like
    ``expect_flows``."""
    started = time.monotonic()
    clean = False
    while True:
        first = await audio_packets(seats)
        await asyncio.sleep(gap)
        second = await audio_packets(seats)
        moved = {pair: second[pair] - first[pair] for pair in second}
        print(f"audio packets in {gap:.0f} s, {title}:")
        for viewer in seats:
            cells = [f"{s}: +{moved[viewer, s]}" for s in remote_seats(viewer)]
            print(f"  {viewer:8} " + ", ".join(cells))
        leaks = {pair: n for pair, n in moved.items() if pair not in flowing and n > 0}
        if leaks:
            if clean or time.monotonic() - started > settle:
                raise AssertionError(f"{title}: audio where the policy forbids it: {leaks}")
            continue
        clean = True
        lagging = {pair: moved[pair] for pair in flowing if moved[pair] <= 0}
        if not lagging:
            return
        if time.monotonic() - started > within:
            raise AssertionError(f"{title}: no audio for {within:.0f} s: {lagging}")


# 1. Four seats ----------------------------------------------------------------------------


async def test_four_browsers_see_each_other(
    serve: Callable[..., Awaitable[Courtlink]],
    chromium: Chromium,
    fake_media: dict[str, tuple[Path, Path]],
) -> None:
    began = time.monotonic()
    server = await serve()
    browsers = await asyncio.gather(*(chromium.launch(chromium_args(fake_media[s])) for s in SEATS))
    opened = await asyncio.gather(
        *(chromium.open(b, server.invites[s], s) for s, b in zip(SEATS, browsers, strict=True))
    )
    seats = {s.seat: s for s in opened}
    pages = {seat: s.page for seat, s in seats.items()}
    judge = pages["judge"]
    print(f"\nfour pages joined in {time.monotonic() - began:.1f} s")

    # The demo session has the lobby on: the creditor waits until the judge admits them.
    creditor_tile = judge.locator(".seat-tile[data-seat=creditor]")
    await judge.locator(".seat-tile[data-seat=creditor].in-lobby").wait_for()
    assert "lobby" in (await creditor_tile.get_attribute("data-status") or "")
    await pages["creditor"].locator("#my-status").wait_for(state="visible")
    # Meanwhile the others see each other, and nobody sees the creditor, who sees nobody.
    three = all_pairs(("judge", "officer", "debtor")) - {
        (v, "creditor") for v in ("judge", "officer", "debtor")
    }
    await poll(
        lambda: probe_all(pages),
        lambda probes: pictures_everywhere(probes, three),
        within=30,
        what="judge, officer and debtor to see each other",
    )
    assert_colours(await expect_flows(pages, three, "the creditor in the lobby"), three)
    await creditor_tile.locator("button[data-action=admit]").click()
    await judge.locator(".seat-tile[data-seat=creditor].present:not(.in-lobby)").wait_for()
    admitted = time.monotonic()

    everyone = all_pairs()
    await poll(
        lambda: probe_all(pages),
        lambda probes: pictures_everywhere(probes, everyone),
        within=30,
        what="every page to show the three other seats",
    )
    print(f"all 12 remote pictures shown {time.monotonic() - admitted:.1f} s after admit")
    second = await expect_flows(pages, everyone, "everyone together")
    assert_colours(second, everyone)
    # The page's own count on each tile (data-frames-decoded, from its stats) works too.
    assert all(second[v]["tiles"][s]["byPage"] for v, s in everyone), second
    worst = max(colour_distance(second[v]["tiles"][s]["rgb"], COLOURS[s]) for v, s in everyone)
    print(f"largest colour distance from the seat's camera colour: {worst:.1f}")
    for viewer in SEATS:
        own = second[viewer]["tiles"][viewer]
        assert own["video"] is False, (viewer, own)  # no remote video of oneself
        assert not any(second[viewer]["tiles"][s]["status"] for s in remote_seats(viewer))

    # Caucus with the creditor: the officer and the debtor are on hold. They still see each
    # other; the judge and the creditor see only each other.
    await judge.select_option("#caucus", "creditor")
    caucus_at = time.monotonic()
    await poll(
        lambda: probe_all(pages),
        lambda probes: all(
            "hold" in probes[v]["tiles"][s]["status"]
            for v in SEATS
            for s in ("officer", "debtor")
            if s != v
        ),
        within=10,
        what="the officer and debtor tiles to show 'hold' on every page",
    )
    for viewer in ("officer", "debtor"):
        await pages[viewer].locator("#my-status").wait_for(state="visible")
    in_caucus = {("judge", "creditor"), ("creditor", "judge"), ("officer", "debtor")}
    in_caucus.add(("debtor", "officer"))
    await asyncio.sleep(2.0)  # frames in flight, and the once-a-second frame count
    second = await expect_flows(pages, in_caucus, "caucus with the creditor")
    assert_colours(second, in_caucus)
    await expect_heard(seats, in_caucus, "caucus with the creditor")
    print(f"caucus checked {time.monotonic() - caucus_at:.1f} s after the judge chose it")

    # End the caucus: everything flows again.
    await judge.select_option("#caucus", "")
    await poll(
        lambda: probe_all(pages),
        lambda probes: not any("hold" in probes[v]["tiles"][s]["status"] for v, s in everyone),
        within=10,
        what="'hold' to go away",
    )
    ended_at = time.monotonic()
    second = await expect_flows(pages, everyone, "caucus ended", within=20)
    print(f"all 12 flows back within {time.monotonic() - ended_at:.1f} s of the caucus ending")
    assert_colours(second, everyone)
    for viewer in ("officer", "debtor"):
        assert await pages[viewer].locator("#my-status").is_hidden()

    # The judge mutes the debtor: every page says so, and the debtor's audio stops reaching
    # anyone while the others' audio still does (video is not affected).
    await expect_heard(seats, everyone, "everyone together")
    await judge.locator(".seat-tile[data-seat=debtor] button[data-action=mute]").click()
    for viewer, page in pages.items():
        tile = page.locator(".seat-tile[data-seat=debtor]")
        await page.locator(".seat-tile[data-seat=debtor].muted").wait_for()
        assert "muted" in (await tile.get_attribute("data-status") or ""), viewer
    unmute = judge.locator(".seat-tile[data-seat=debtor] button[data-action=unmute]")
    await unmute.wait_for(state="visible")
    await pages["debtor"].locator("#my-status").wait_for(state="visible")
    await asyncio.sleep(1.0)  # packets already in flight
    muted = {(v, s) for v, s in everyone if s != "debtor"}
    await expect_heard(seats, muted, "the debtor muted by the judge")
    await expect_flows(pages, everyone, "the debtor muted (video goes on)")

    # The creditor leaves: the seat is empty everywhere, its picture stops and is not left
    # frozen on the others' screens. Joining again brings the pictures back both ways.
    creditor = pages["creditor"]
    await creditor.locator("#leave-button").click()
    await creditor.locator("#join-button").wait_for(state="visible")
    others = [v for v in SEATS if v != "creditor"]
    for viewer in others:
        await pages[viewer].locator(".seat-tile[data-seat=creditor].empty").wait_for()
    await asyncio.sleep(2.0)
    rest = {v: pages[v] for v in others}
    still = all_pairs(others) - {(v, "creditor") for v in others}
    await expect_flows(rest, still, "the creditor left")
    for viewer in others:
        video = pages[viewer].locator(".seat-tile[data-seat=creditor] video.remote")
        assert await video.is_hidden(), f"{viewer} still shows the creditor who left"
    await creditor.locator("#join-button").click()
    await creditor.locator("#leave-button").wait_for(state="visible")
    rejoined_at = time.monotonic()
    second = await expect_flows(pages, everyone, "the creditor joined again", within=20)
    print(f"all 12 flows back within {time.monotonic() - rejoined_at:.1f} s of the new join")
    for viewer in others:
        video = pages[viewer].locator(".seat-tile[data-seat=creditor] video.remote")
        assert await video.is_visible(), viewer
    assert_colours(second, everyone)

    for seat in seats.values():
        assert not seat.errors, (seat.seat, seat.errors)
        # The device check opened the camera once (the join reuses it, no second prompt).
        assert await camera_opens(seat.page) == 1, seat.seat
    print(f"test ran {time.monotonic() - began:.1f} s")


# 2. Relay only, through coturn --------------------------------------------------------------


def candidates(sdp: str) -> list[str]:
    return [line for line in sdp.splitlines() if line.startswith("a=candidate:")]


async def test_relay_only_through_coturn(
    tmp_path: Path,
    serve: Callable[..., Awaitable[Courtlink]],
    chromium: Chromium,
    fake_media: dict[str, tuple[Path, Path]],
) -> None:
    began = time.monotonic()
    turn = await start_coturn(tmp_path / "coturn", secrets.token_hex(16))
    try:
        server = await serve(
            COURTLINK__MEDIA__TURN_URLS=turn.url,
            COURTLINK__MEDIA__TURN_SECRET=turn.secret,
            COURTLINK__MEDIA__ICE_TRANSPORT_POLICY="relay",
            COURTLINK__MEDIA__HOST_ADDRESS="127.0.0.1",
            COURTLINK__MEDIA__ICE_TIMEOUT_SECONDS="5",
        )
        two = ("judge", "officer")
        browsers = await asyncio.gather(
            *(chromium.launch(chromium_args(fake_media[s])) for s in two)
        )
        opened = await asyncio.gather(
            *(chromium.open(b, server.invites[s], s) for s, b in zip(two, browsers, strict=True))
        )
        seats = {s.seat: s for s in opened}
        pages = {seat: s.page for seat, s in seats.items()}
        pairs = {("judge", "officer"), ("officer", "judge")}
        await poll(
            lambda: probe_all(pages),
            lambda probes: pictures_everywhere(probes, pairs),
            within=30,
            what="judge and officer to see each other through TURN",
        )
        print(f"\nboth pictures shown {time.monotonic() - began:.1f} s after the start")
        assert_colours(await expect_flows(pages, pairs, "through coturn"), pairs)

        log = turn.log_text()
        for name, member in seats.items():
            participant = await member.page.get_attribute("#room", "data-participant")
            assert participant
            # The server told the browser to use only TURN, with REST credentials for it.
            offer = member.tap.last("media.offer", sent=False)
            assert offer["ice_transport_policy"] == "relay"
            [ice] = offer["ice_servers"]
            assert ice["urls"] == [turn.url]
            assert ice["username"].endswith(f":{participant}")
            # The server offers only its one configured host address.
            server_lines = candidates(offer["sdp"])
            assert server_lines, offer["sdp"]
            assert all(" 127.0.0.1 " in line and " typ host" in line for line in server_lines)
            # The browser's answer offers nothing but relayed addresses (coturn's relay-ip).
            answer = member.tap.last("media.answer", sent=True)
            assert answer is not None, f"no media.answer sent by the {name} page"
            lines = candidates(answer["sdp"])
            print(f"  {name} answer candidates: {lines}")
            assert lines, answer["sdp"]
            assert all(" typ relay" in line and " 127.0.0.1 " in line for line in lines), lines
            # The connection in use is relayed by coturn, to the server's one host address.
            stats = await peer_stats(member.page)
            assert stats is not None
            pair = stats["pair"]
            print(f"  {name} selected pair: {pair}")
            assert pair["local"]["type"] == "relay", pair
            assert pair["local"]["relayProtocol"] == "udp", pair
            assert pair["remote"]["address"] == "127.0.0.1", pair
            assert pair["bytesReceived"] > 5_000, pair
            assert pair["bytesSent"] > 5_000, pair
            # coturn allocated for this participant and let it reach the server.
            mine = [line for line in log.splitlines() if f":{participant}>" in line]
            assert any("ALLOCATE processed, success" in line for line in mine), tail(log, 40)
            assert any("CREATE_PERMISSION processed, success" in line for line in mine), mine
        print("coturn log (allocations and permissions):")
        for line in log.splitlines():
            if "processed, success" in line or "peer 127.0.0.1" in line:
                print("  " + line)

        # Without coturn there is no path: the pictures stop.
        await turn.stop()
        stopped_at = time.monotonic()
        await asyncio.sleep(2.0)
        first, second, gap = await sample_twice(pages)
        moved = deltas(first, second)
        print(f"after coturn stopped, in {gap:.1f} s: { ({p: moved[p] for p in sorted(pairs)}) }")
        assert all(moved[pair] == (0, 0) for pair in pairs), moved
        states = await poll(
            lambda: probe_all(pages),
            lambda probes: all(probes[s]["peer"] != "connected" for s in two),
            within=20,
            what="the pages to notice the connection is gone",
        )
        print(
            "peer states {} {:.1f} s after coturn stopped".format(
                {s: states[s]["peer"] for s in two}, time.monotonic() - stopped_at
            )
        )

        # coturn comes back on the same address: the pages get new connections by themselves.
        # (The server gives up on a connection that does not complete in ice_timeout_seconds and
        # says so with media.state; the page asks for a new one.)
        # Each page asks for a new connection; while coturn is away it can not complete, and the
        # server gives up on it after ice_timeout_seconds and says so with media.state.
        await poll(
            lambda: asyncio.sleep(0, [seats[s].tap.last("media.state", sent=False) for s in two]),
            lambda states: all(states),
            within=30,
            what="media.state from the server on both pages",
        )
        print(f"both pages told media.state failed {time.monotonic() - stopped_at:.1f} s after")
        turn = await start_coturn(tmp_path / "coturn-again", turn.secret, port=turn.port)
        back_at = time.monotonic()
        second = await expect_flows(pages, pairs, "coturn back", within=20)
        print(f"pictures back within {time.monotonic() - back_at:.1f} s of coturn restarting")
        assert_colours(second, pairs)
        for name in two:
            tap = seats[name].tap
            told = tap.events("media.state", sent=False)
            asked = [at for _, at in tap.events("media.restart", sent=True)]
            print(
                f"  {name}: media.state at {[f'{at - stopped_at:.1f}' for _, at in told]} s, "
                f"media.restart at {[f'{at - stopped_at:.1f}' for at in asked]} s "
                "after coturn stopped"
            )
            assert all(data == {"state": "failed"} for data, _ in told), told
            # The page answers the server's word with a new connection (after its 2 s pause).
            first_told = told[0][1]
            assert any(first_told < at < first_told + 6 for at in asked), (told, asked)
        log = turn.log_text()
        assert log.count("ALLOCATE processed, success") >= 2, tail(log, 30)
        print(f"recovered and checked {time.monotonic() - back_at:.1f} s after coturn restarted")
        for member in seats.values():
            assert not member.errors, (member.seat, member.errors)
    finally:
        await turn.stop()
        print(f"--- coturn log (last 30 lines) ---\n{tail(turn.log_text(), 30)}")
    print(f"test ran {time.monotonic() - began:.1f} s")


# 2b. A connection that goes quiet ---------------------------------------------------------------


async def test_page_asks_for_a_new_connection_when_nothing_arrives(
    serve: Callable[..., Awaitable[Courtlink]],
    chromium: Chromium,
    fake_media: dict[str, tuple[Path, Path]],
) -> None:
    """The server sends RTCP on every slot about once a second; a page whose connection
    receives nothing for a few seconds asks for a new one (docs/protocol.md), even while the
    browser still calls the connection "connected". The silence is simulated in the page: its
    view of the transport's packet count stops moving."""
    began = time.monotonic()
    server = await serve()
    two = ("judge", "officer")
    browsers = await asyncio.gather(*(chromium.launch(chromium_args(fake_media[s])) for s in two))
    opened = await asyncio.gather(
        *(chromium.open(b, server.invites[s], s) for s, b in zip(two, browsers, strict=True))
    )
    seats = {s.seat: s for s in opened}
    pages = {seat: s.page for seat, s in seats.items()}
    pairs = {("judge", "officer"), ("officer", "judge")}
    await poll(
        lambda: probe_all(pages),
        lambda probes: pictures_everywhere(probes, pairs),
        within=30,
        what="judge and officer to see each other",
    )
    await expect_flows(pages, pairs, "before")
    officer = seats["officer"]
    assert not officer.tap.events("media.restart", sent=True)
    offers = len(officer.tap.events("media.offer", sent=False))

    await officer.page.evaluate("() => { window.__courtlinkDeafTransport = 1; }")
    deaf_at = time.monotonic()
    await poll(
        lambda: asyncio.sleep(0, officer.tap.events("media.restart", sent=True)),
        bool,
        within=15,
        what="the officer page to ask for a new connection",
    )
    asked_after = officer.tap.events("media.restart", sent=True)[0][1] - deaf_at
    await officer.page.evaluate("() => { window.__courtlinkDeafTransport = null; }")
    print(f"\nthe page asked for a new connection {asked_after:.1f} s after it went deaf")
    assert 4.0 <= asked_after <= 10.0, asked_after
    await poll(
        lambda: asyncio.sleep(0, len(officer.tap.events("media.offer", sent=False))),
        lambda count: count > offers,
        within=10,
        what="a new media.offer",
    )
    second = await expect_flows(pages, pairs, "after the new connection", within=20)
    assert_colours(second, pairs)
    stats = await peer_stats(officer.page)
    assert stats is not None
    assert stats["peers"] == 2, stats  # a second RTCPeerConnection, connected
    assert stats["state"] == "connected", stats
    assert len(officer.tap.events("media.restart", sent=True)) == 1  # asked once
    assert not seats["judge"].tap.events("media.restart", sent=True)
    for member in seats.values():
        assert not member.errors, (member.seat, member.errors)
    print(f"checked {time.monotonic() - began:.1f} s after the start")


# 3. No camera --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("case", "seat", "message"),
    [
        # Headless Chromium without --use-fake-ui-for-media-stream refuses the prompt it can
        # not show: getUserMedia fails with NotAllowedError, as when a person clicks "Block".
        ("permission refused", "officer", "permission-refused"),
        # No --use-fake-device-for-media-stream and no camera in the machine: NotFoundError.
        ("no device", "debtor", "no-device"),
    ],
)
async def test_page_without_camera_says_so_and_still_sees_the_others(
    case: str,
    seat: str,
    message: str,
    serve: Callable[..., Awaitable[Courtlink]],
    chromium: Chromium,
    fake_media: dict[str, tuple[Path, Path]],
) -> None:
    began = time.monotonic()
    server = await serve()
    args = (
        chromium_args(fake_ui=None)
        if case == "permission refused"
        else chromium_args(fake_device=False)
    )
    judge_browser, browser = await asyncio.gather(
        chromium.launch(chromium_args(fake_media["judge"])), chromium.launch(args)
    )
    judge_seat, party = await asyncio.gather(
        chromium.open(judge_browser, server.invites["judge"], "judge"),
        chromium.open(browser, server.invites[seat], seat, autojoin=False),
    )
    page, judge = party.page, judge_seat.page

    # The device check says what is wrong, in the page's language, and the join stays possible.
    alert = page.locator("#device-message")
    await alert.wait_for(state="visible")
    expected = await page.get_attribute("#i18n", f"data-{message}")
    shown = await alert.text_content()
    print(f"\n{case}: the page says {shown!r}")
    assert expected
    assert shown == expected
    assert await page.get_attribute("#room", "data-devices") == "failed"
    assert await page.locator("#preview").evaluate("v => v.srcObject === null")

    join = page.locator("#join-button:enabled")
    await join.click()
    await page.locator("#leave-button").wait_for(state="visible")
    await judge.locator(f".seat-tile[data-seat={seat}].present").wait_for()

    # The party sees the judge; the judge sees the party's seat taken, with no picture.
    pages = {"judge": judge, seat: page}
    await poll(
        lambda: probe_all(pages),
        lambda probes: pictures_everywhere(probes, {(seat, "judge")}),
        within=30,
        what=f"the {seat} page to show the judge",
    )
    # Only the judge's picture moves: nothing comes from the page without a camera.
    second = await expect_flows(pages, {(seat, "judge")}, f"{case}: {seat} and judge")
    assert_colours(second, {(seat, "judge")})
    print(f"the judge's {seat} tile: {second['judge']['tiles'][seat]}")
    print(f"checked {time.monotonic() - began:.1f} s after the start")
    assert second[seat]["peer"] == "connected"
    assert second["judge"]["peer"] == "connected"
    own = second["judge"]["tiles"][seat]
    assert own["present"]
    assert not own["decoded"], own
    assert not own["frames"], own
    assert own["rgb"] is None, own
    assert await alert.is_visible()  # the explanation stays
    for who in (judge_seat, party):
        assert not who.errors, (who.seat, who.errors)
        assert await camera_opens(who.page) == 1, who.seat  # one prompt, one message
