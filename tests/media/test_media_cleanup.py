"""Media negotiation that goes wrong, and what is left behind: bad answers are refused with the
precise code and leave the participant seated, a peer that never completes ICE is closed and
shown as failed, and 50 join/leave cycles leave tasks, threads and memory where they were.

The server runs as ``courtlink serve`` in a subprocess (tests/media/conftest.py); the client is a
python-socketio client answering with aiortc, without tracks and without decoding.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.media.conftest import RawClient, Served, media, sdp_without, start_served


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """One server for the module; ICE only on loopback so that a connection takes milliseconds."""
    live = start_served(
        tmp_path_factory.mktemp("cleanup") / "var",
        env={"COURTLINK__MEDIA__HOST_ADDRESS": "127.0.0.1"},
    )
    yield live
    live.stop()


async def seated_client(server: Served, seat: str = "officer") -> tuple[RawClient, dict[str, Any]]:
    client = RawClient(server.url, server.invites[seat])
    await client.connect()
    await client.join(server.session)
    return client, await client.next_offer()


async def holder(client: RawClient, seat: str) -> str | None:
    ack = await client.call("presence")
    assert ack["ok"], ack
    held = ack["data"]["seats"][seat]
    return None if held is None else held["participant"]


@pytest.mark.timeout(60)
async def test_malformed_answer_is_invalid_input_and_keeps_the_seat(server: Served) -> None:
    client, offer = await seated_client(server)
    try:
        for garbage in ("not sdp at all", "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\nm=video\r\n"):
            ack = await client.call("media.answer", {"sdp": garbage})
            print(f"answer {garbage[:20]!r}: {ack}")
            assert ack["ok"] is False
            assert ack["error"]["code"] == "invalid_input"
            assert await holder(client, "officer") == client.participant
        # The offer is still waiting: a proper answer now connects.
        ack = await client.answer(offer)
        assert ack == {"ok": True, "data": {}}
        await client.wait_connected()
    finally:
        await client.close()


def vp8_as_h264(sdp: str) -> str:
    """The answer of a client that only does H.264: its video codec where VP8 was."""
    for pt in re.findall(r"a=rtpmap:(\d+) VP8/90000", sdp):
        sdp = sdp.replace(
            f"a=rtpmap:{pt} VP8/90000",
            f"a=rtpmap:{pt} H264/90000\r\na=fmtp:{pt} "
            "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f",
        )
    return sdp


@pytest.mark.timeout(60)
async def test_answer_without_vp8_is_unsupported_codec(server: Served) -> None:
    client, offer = await seated_client(server)
    try:
        sdp = await client.make_answer(offer)
        assert "VP8/90000" in sdp
        # A client that answers H.264 where VP8 was offered.
        ack = await client.call("media.answer", {"sdp": vp8_as_h264(sdp)})
        print(f"answer with H.264 for VP8: {ack}")
        assert ack["ok"] is False
        assert ack["error"]["code"] == "unsupported_codec"
        assert await holder(client, "officer") == client.participant
        # The same for Opus.
        ack = await client.call("media.answer", {"sdp": sdp.replace("opus/48000", "PCMU/8000")})
        print(f"answer with PCMU for Opus: {ack}")
        assert ack["ok"] is False
        assert ack["error"]["code"] == "unsupported_codec"
        # A video m-line left with no payload type at all is not SDP (the parser says so).
        ack = await client.call("media.answer", {"sdp": sdp_without(sdp, "VP8")})
        print(f"answer with VP8 struck out: {ack}")
        assert ack["ok"] is False
        assert ack["error"]["code"] == "invalid_input"
        # Nothing was spoiled: the offer still takes a proper answer, which connects.
        assert (await client.call("media.answer", {"sdp": sdp}))["ok"]
        await client.wait_connected()
    finally:
        await client.close()


@pytest.mark.timeout(60)
async def test_media_events_before_join_are_conflict(server: Served) -> None:
    client = RawClient(server.url, server.invites["officer"])
    await client.connect()
    try:
        answer = await client.call("media.answer", {"sdp": "v=0\r\n"})
        restart = await client.call("media.restart", {})
        print(f"before join: answer {answer}, restart {restart}")
        assert answer["ok"] is False
        assert answer["error"]["code"] == "conflict"
        assert restart["ok"] is False
        assert restart["error"]["code"] == "conflict"
        # And after leaving again.
        await client.join(server.session)
        await client.next_offer()
        assert (await client.call("leave"))["ok"]
        restart = await client.call("media.restart", {})
        assert restart["ok"] is False
        assert restart["error"]["code"] == "conflict"
    finally:
        await client.close()


@pytest.mark.timeout(60)
async def test_peer_that_never_completes_ice_is_closed(served: Callable[..., Served]) -> None:
    live = served(
        env={
            "COURTLINK__MEDIA__ICE_TIMEOUT_SECONDS": "2",
            "COURTLINK__MEDIA__HOST_ADDRESS": "127.0.0.1",
        },
    )
    client = RawClient(live.url, live.invites["officer"])
    try:
        await client.connect()
        await client.join(live.session)
        await client.next_offer()  # and never answered
        started = time.monotonic()
        before = await live.ametrics()
        print(f"peers while waiting: {media(before, 'peers')}")
        assert media(before, "peers") == 1
        deadline = started + 10
        while (client.my_seat_state("officer") or {}).get("connection") != "failed":
            assert time.monotonic() < deadline, f"presence: {client.presence[-1:]}"
            await asyncio.sleep(0.1)
        failed_after = time.monotonic() - started
        await asyncio.sleep(0.5)  # anything that follows the failure has been broadcast
        state = client.my_seat_state("officer")
        after = await live.ametrics()
        print(
            f"failed after {failed_after:.1f}s; presence {state}; media.state {client.media_states}"
            f"; peers {media(after, 'peers')}"
        )
        assert state is not None
        assert state["connection"] == "failed"
        assert "failed" in client.media_states
        assert media(after, "peers") == 0
        # Still seated; a restart gives it a new peer connection that works.
        assert await holder(client, "officer") == client.participant
        assert (await client.call("media.restart"))["ok"]
        assert (await client.answer(await client.next_offer()))["ok"]
        await client.wait_connected()
        peers = media(await live.ametrics(), "peers")
        assert peers == 1
    finally:
        await client.close()


def usage(metrics: dict[str, float]) -> tuple[int, int, float]:
    return (
        int(metrics["courtlink_asyncio_tasks"]),
        int(metrics["courtlink_threads"]),
        metrics["process_resident_memory_bytes"] / 2**20,
    )


async def settled_usage(server: Served, baseline: tuple[int, int, float]) -> tuple[int, int, float]:
    """The server's numbers once what closing leaves running has ended (engine.io's ping task
    of a closed connection sleeps out its 10 s ping interval)."""
    deadline = time.monotonic() + 13
    while True:
        now = usage(await server.ametrics())
        if (now[0] <= baseline[0] and now[1] <= baseline[1]) or time.monotonic() > deadline:
            return now
        await asyncio.sleep(0.25)


@pytest.mark.timeout(90)
async def test_fifty_join_leave_cycles_leave_nothing_behind(server: Served) -> None:
    client = RawClient(server.url, server.invites["judge"])
    await client.connect()

    async def cycle() -> None:
        await client.join(server.session)
        ack = await client.answer(await client.next_offer())
        assert ack["ok"], ack
        await client.wait_connected()
        assert (await client.call("leave"))["ok"]
        await client.close_pc()

    try:
        for _ in range(10):  # warm-up: imports, caches, the allocator's first growth
            await cycle()
        baseline = await settled_usage(server, (10**9, 10**9, 0.0))
        rss = [baseline[2]]
        started = time.monotonic()
        for i in range(50):
            await cycle()
            if i % 10 == 9:
                rss.append(usage(await server.ametrics())[2])
        took = time.monotonic() - started
        after = await settled_usage(server, baseline)
        metrics = await server.ametrics()
    finally:
        await client.close()
    print(
        f"50 cycles in {took:.1f}s; tasks {baseline[0]} -> {after[0]}, threads {baseline[1]} -> "
        f"{after[1]}, RSS {baseline[2]:.1f} -> {after[2]:.1f} MiB "
        f"(+{after[2] - baseline[2]:.1f}; every 10 cycles: "
        f"{', '.join(f'{r:.1f}' for r in rss)}); routers {media(metrics, 'routers')}, "
        f"peers {media(metrics, 'peers')}"
    )
    assert after[0] <= baseline[0], "asyncio tasks left behind"
    assert after[1] <= baseline[1], "threads left behind"
    assert after[2] - baseline[2] < 10, "resident memory grew by 10 MiB or more"
    assert media(metrics, "routers") == 0
    assert media(metrics, "peers") == 0
    assert metrics["courtlink_participants"] == 0
