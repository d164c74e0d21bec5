"""Behind a firewall that blocks UDP: a browser's only way to the SFU is TURN over TLS on 443.

The SFU speaks UDP only (aiortc has no ICE-TCP), so a network that lets nothing but TCP out
(HTTPS) is served by coturn: the browser reaches it with ``turns:<host>:443?transport=tcp``
(TCP and TLS), coturn relays over UDP to the SFU. Here the judge's Chromium runs in a network
namespace (tests/netns_support.py) whose link drops every UDP datagram both ways; the officer's
Chromium runs on the host, unhindered. coturn listens on the namespace link's host end with a
self-signed certificate, which the judge's Chromium accepts through
``--ignore-certificate-errors-spki-list`` (the certificate's key pinned, nothing else trusted).

``pytest -s`` shows what was measured.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.netns_support import Netns
from tests.web.browser_support import (
    Chromium,
    Courtlink,
    chromium_args,
    chromium_session,
    make_fake_media,
    peer_stats,
    poll,
    start_coturn_tls,
    start_courtlink,
)
from tests.web.test_browser_media import (
    assert_colours,
    expect_flows,
    pictures_everywhere,
    probe_all,
    tail,
)

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]


@pytest.fixture
def fake_media(tmp_path: Path) -> dict[str, tuple[Path, Path]]:
    return make_fake_media(tmp_path / "media")


@pytest.fixture
async def chromium(netns: Netns) -> AsyncIterator[Chromium]:
    """Chromium instances, closed before the namespace goes (the test closes them before its
    server and coturn stop, and describes every page then)."""
    async with chromium_session(describe=False) as browsers:
        yield browsers


async def test_turn_over_tls_on_443_is_the_way_through_a_firewall_that_blocks_udp(
    tmp_path: Path,
    netns: Netns,
    chromium: Chromium,
    fake_media: dict[str, tuple[Path, Path]],
) -> None:
    began = time.monotonic()
    netns.block_udp()
    turn = await start_coturn_tls(tmp_path / "coturn", secrets.token_hex(16), netns.host_ip)
    server: Courtlink | None = None
    try:
        server = await start_courtlink(
            tmp_path / "courtlink",
            **netns.server_env(),
            # What docs/operations.md recommends: TURN over UDP first, TLS on 443 for the rest.
            COURTLINK__MEDIA__TURN_URLS=f"{turn.url},{turn.turns_url}",
            COURTLINK__MEDIA__TURN_SECRET=turn.secret,
        )
        # The judge: Chromium inside the namespace, behind the firewall.
        judge_url = netns.url(server.invites["judge"])
        inside = await chromium.playwright.chromium.launch(
            executable_path=str(netns.chromium(tmp_path / "bin")),
            args=[
                *chromium_args(fake_media["judge"]),
                *netns.chromium_switches(judge_url),
                f"--ignore-certificate-errors-spki-list={turn.spki_hash()}",
            ],
        )
        chromium.browsers.append(inside)
        outside = await chromium.launch(chromium_args(fake_media["officer"]))
        judge, officer = await asyncio.gather(
            chromium.open(inside, judge_url, "judge"),
            chromium.open(outside, server.invites["officer"], "officer"),
        )
        pages = {"judge": judge.page, "officer": officer.page}
        pairs = {("judge", "officer"), ("officer", "judge")}
        await poll(
            lambda: probe_all(pages),
            lambda probes: pictures_everywhere(probes, pairs),
            within=45,
            what="judge (UDP blocked) and officer to see each other",
        )
        print(f"\nboth pictures shown {time.monotonic() - began:.1f} s after the start")
        assert_colours(await expect_flows(pages, pairs, "through TURN over TLS"), pairs)

        # The judge's connection in use: relayed by coturn, reached over TLS, to the SFU.
        stats: dict[str, Any] | None = await peer_stats(judge.page)
        assert stats is not None
        pair = stats["pair"]
        print(f"judge's selected pair: {pair}")
        assert pair["local"]["type"] == "relay", pair
        assert pair["local"]["relayProtocol"] == "tls", pair
        assert pair["local"]["url"] == turn.turns_url, pair
        assert pair["remote"]["address"] == netns.host_ip, pair
        assert pair["bytesReceived"] > 20_000, pair
        assert pair["bytesSent"] > 20_000, pair
        # The officer, outside, needs no relay (any pair will do; printed for the record).
        print(f"officer's selected pair: {(await peer_stats(officer.page) or {}).get('pair')}")

        # coturn: the judge's allocation came over TLS, and its relay reached the SFU.
        participant = await judge.page.get_attribute("#room", "data-participant")
        assert participant
        log = turn.log_text()
        mine = [line for line in log.splitlines() if f":{participant}>" in line]
        print("coturn log, the judge's session:")
        for line in mine:
            if "processed, success" in line or "TLS" in line:
                print("  " + line)
        assert any("ALLOCATE processed, success" in line for line in mine), tail(log, 40)
        assert any("CREATE_PERMISSION processed, success" in line for line in mine), mine
        assert any("new," in line and "method=TLSv1" in line for line in mine), tail(log, 40)
        # The firewall did its part: the judge's UDP attempts (host candidates, TURN over
        # UDP) were dropped.
        dropped = netns.dropped_udp()
        print(f"UDP datagrams dropped by the firewall: {dropped}")
        assert dropped > 0
        print(f"test took {time.monotonic() - began:.1f} s")
    finally:
        print(await chromium.describe())
        await chromium.close()  # before the server and coturn go
        if server is not None:
            await server.stop()
            print(f"--- courtlink serve log (last 40 lines) ---\n{tail(server.log_text(), 40)}")
        await turn.stop()
