"""One four-party call with one viewer on a weak link, measured from every page's getStats: the
scenario of tests/web/test_browser_weak_link.py (which asserts on it) and of
tools/bench-weak-link (which runs it with per-viewer layers and with the old lowest-REMB
relay, and prints both).

The judge, officer and debtor are pages of one Chromium on the host; the creditor (a phone, as
in life) is a Chromium inside a network namespace (tests/netns_support.py) whose link is
shaped to a profile mid-call and then freed. Every seat sends the same busy picture (noise on
its colour, 320x240 at 15 fps), so the encoders spend what they are allowed; publishers are
capped at ``max_video_kbps``.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.netns_support import Netns, Profile
from tests.web.browser_support import (
    COLOURS,
    Chromium,
    Courtlink,
    SeatPage,
    chromium_args,
    make_fake_media,
    poll,
    start_courtlink,
)
from tests.web.test_browser_media import pictures_everywhere, probe_all, tail

SEATS = ("judge", "officer", "debtor", "creditor")
STRONG = ("judge", "officer", "debtor")
FPS = 15

# Per remote tile: the video receiver's frames decoded, freezes (Chromium's freezeCount and
# totalFreezesDuration), and the audio receiver's packets; and the frames the page encoded.
TILE_STATS = """
async () => {
  const peers = window.__courtlinkPeers || [];
  const pc = peers[peers.length - 1];
  if (!pc) return null;
  const receivers = pc.getReceivers();
  const out = { own: { frames: 0, target: 0, available: 0 } };
  (await pc.getStats()).forEach((s) => {
    if (s.type === 'outbound-rtp' && s.kind === 'video') {
      out.own.frames += s.framesEncoded || 0;
      out.own.target += s.targetBitrate || 0;
    }
    if (s.type === 'candidate-pair' && s.nominated && s.availableOutgoingBitrate) {
      out.own.available = s.availableOutgoingBitrate;
    }
  });
  for (const tile of document.querySelectorAll('.seat-tile')) {
    const v = tile.querySelector('video.remote');
    if (!v || !v.srcObject) continue;
    const row = { frames: 0, freezes: 0, frozen: 0, audio: 0, bytes: 0, height: 0,
                  received: 0, lost: 0, nacks: 0, plis: 0, keys: 0, rtx: 0, audioBytes: 0 };
    for (const track of v.srcObject.getTracks()) {
      const receiver = receivers.find((r) => r.track === track);
      if (!receiver) continue;
      (await receiver.getStats()).forEach((s) => {
        if (s.type !== 'inbound-rtp') return;
        if (s.kind === 'video') {
          row.frames = s.framesDecoded || 0;
          row.bytes = s.bytesReceived || 0;
          row.height = s.frameHeight || 0;
          row.freezes = s.freezeCount || 0;
          row.frozen = s.totalFreezesDuration || 0;
          row.received = s.framesReceived || 0;
          row.lost = s.packetsLost || 0;
          row.nacks = s.nackCount || 0;
          row.plis = s.pliCount || 0;
          row.keys = s.keyFramesDecoded || 0;
          row.rtx = s.retransmittedPacketsReceived || 0;
        } else {
          row.audio = s.packetsReceived || 0;
          row.audioBytes = (s.bytesReceived || 0) + (s.headerBytesReceived || 0);
        }
      });
    }
    out[tile.dataset.seat] = row;
  }
  return out;
}
"""


@dataclass
class Window:
    """What each viewer got of each seat over one measuring window."""

    seconds: float
    sent: dict[str, float] = field(default_factory=dict)  # frames per second each seat encoded
    # Each seat's encoder target and its browser's estimate of its uplink at the end, kbit/s.
    target: dict[str, tuple[float, float]] = field(default_factory=dict)
    fps: dict[str, dict[str, float]] = field(default_factory=dict)
    frozen: dict[str, dict[str, float]] = field(default_factory=dict)  # seconds frozen
    audio: dict[str, dict[str, float]] = field(default_factory=dict)  # packets per second
    kbps: dict[str, dict[str, float]] = field(default_factory=dict)  # video received
    height: dict[str, dict[str, int]] = field(default_factory=dict)  # picture height at the end
    # The video receiver's frames received, packets lost, NACKs and key frame requests sent,
    # key frames decoded over the window: why a viewer decodes what it decodes.
    receiver: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)

    def share(self, viewer: str, seat: str) -> float:
        """What ``viewer`` got of the frames ``seat`` sent (0 when it sent none)."""
        sent = self.sent.get(seat, 0.0)
        return self.fps[viewer][seat] / sent if sent else 0.0

    def rows(self) -> list[str]:
        sent = ", ".join(f"{seat} {fps:.1f}" for seat, fps in self.sent.items())
        lines = [f"  sent (fps): {sent}"]
        targets = ", ".join(f"{seat} {t:.0f}/{a:.0f}" for seat, (t, a) in self.target.items())
        lines.append(f"  encoder target / estimated uplink (kbit/s): {targets}")
        for viewer, seats in self.fps.items():
            cells = ", ".join(
                f"{seat} {fps:4.1f} fps {self.kbps[viewer][seat]:4.0f} kbit/s"
                f" {self.height[viewer][seat]}p {self.frozen[viewer][seat]:.1f} s frozen"
                f" {self.audio[viewer][seat]:.0f} audio pkt/s"
                for seat, fps in seats.items()
            )
            lines.append(f"  {viewer:9} <- {cells}")
            detail = ", ".join(
                f"{seat} " + " ".join(f"{k} {v:g}" for k, v in counts.items())
                for seat, counts in self.receiver.get(viewer, {}).items()
            )
            lines.append(f"  {'':9}    receiver: {detail}")
        return lines


def grew(first: dict[str, Any], second: dict[str, Any], key: str) -> float:
    """How much a counter grew between two samples; a page that made a new connection in
    between (media.restart) starts its counters again from zero."""
    a, b = first.get(key, 0), second.get(key, 0)
    return float(b - a if b >= a else b)


async def tile_stats(page: Any) -> dict[str, dict[str, Any]]:
    result: dict[str, dict[str, Any]] | None = await page.evaluate(TILE_STATS)
    return result or {}


async def measure(pages: dict[str, Any], seconds: float) -> Window:
    first = dict(
        zip(pages, await asyncio.gather(*(tile_stats(p) for p in pages.values())), strict=True)
    )
    began = time.monotonic()
    await asyncio.sleep(seconds)
    second = dict(
        zip(pages, await asyncio.gather(*(tile_stats(p) for p in pages.values())), strict=True)
    )
    took = time.monotonic() - began
    window = Window(took)
    for viewer in pages:
        own = (second[viewer].get("own", {}).get("frames", 0)) - (
            first[viewer].get("own", {}).get("frames", 0)
        )
        window.sent[viewer] = own / took
        mine = second[viewer].get("own", {})
        window.target[viewer] = (mine.get("target", 0) / 1000, mine.get("available", 0) / 1000)
        window.fps[viewer], window.frozen[viewer], window.audio[viewer] = {}, {}, {}
        window.kbps[viewer], window.height[viewer] = {}, {}
        for seat in SEATS:
            if seat == viewer:
                continue
            a, b = first[viewer].get(seat, {}), second[viewer].get(seat, {})
            window.fps[viewer][seat] = grew(a, b, "frames") / took
            window.frozen[viewer][seat] = b.get("frozen", 0) - a.get("frozen", 0)
            window.audio[viewer][seat] = grew(a, b, "audio") / took
            window.kbps[viewer][seat] = grew(a, b, "bytes") * 8 / took / 1000
            window.receiver.setdefault(viewer, {})[seat] = {
                key: grew(a, b, key) for key in ("received", "lost", "nacks", "plis", "keys", "rtx")
            }
            window.receiver[viewer][seat]["audio_kbps"] = round(
                grew(a, b, "audioBytes") * 8 / took / 1000, 1
            )
            window.height[viewer][seat] = int(b.get("height", 0))
    return window


def make_busy_media(directory: Path) -> dict[str, tuple[Path, Path]]:
    """Per seat: make_fake_media's tone, and a picture with some life in it, as a face is: the
    seat's colour, a square that moves and a patch of fresh noise in every frame (320x240,
    15 fps, 2 s, looped by Chromium); an encoder spends about what it is allowed on it."""
    import av

    made = make_fake_media(directory)
    rng = random.Random(12)
    for seat, rgb in COLOURS.items():
        video = directory / f"{seat}-busy.y4m"
        out = av.open(str(video), "w", format="yuv4mpegpipe")
        stream: Any = out.add_stream("rawvideo", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = 320, 240, "yuv420p"
        base = bytes(rgb) * (320 * 240)
        for i in range(2 * FPS):
            noisy = bytearray(base)
            x0, y0 = 10 + 8 * i, 60 + 3 * i  # the square moves
            for y in range(y0, y0 + 80):
                noisy[(y * 320 + x0) * 3 : (y * 320 + x0 + 80) * 3] = b"\xf0" * 240
            for y in range(100, 164):  # the noise patch
                for x in range(200, 264, 2):
                    noisy[(y * 320 + x) * 3] = rng.randrange(256)
            frame = av.VideoFrame(320, 240, "rgb24")
            frame.planes[0].update(bytes(noisy))
            frame = frame.reformat(format="yuv420p")
            frame.pts = i
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
        out.close()
        made[seat] = (video, made[seat][1])
    return made


@dataclass
class Call:
    server: Courtlink
    seats: dict[str, SeatPage]

    @property
    def pages(self) -> dict[str, Any]:
        return {seat: member.page for seat, member in self.seats.items()}

    participants: dict[str, str] = field(default_factory=dict)

    def receiving(self, viewer: str) -> dict[str, str] | None:
        """What the server last said it sends ``viewer`` of each seat (media.quality)."""
        quality = self.seats[viewer].tap.last("media.quality", sent=False)
        if not quality:
            return None
        receiving: dict[str, str] | None = quality.get(self.participants[viewer], {}).get(
            "receiving"
        )
        return receiving


async def start_call(
    tmp_path: Path,
    netns: Netns,
    chromium: Chromium,
    *,
    adapt: bool,
    max_video_kbps: int = 250,
) -> Call:
    """The four seats joined and every picture showing, the creditor inside the namespace."""
    media = make_busy_media(tmp_path / "media")
    server = await start_courtlink(
        tmp_path / "courtlink",
        **netns.server_env(),
        COURTLINK__MEDIA__ADAPT_VIDEO="true" if adapt else "false",
        COURTLINK__MEDIA__MAX_VIDEO_KBPS=str(max_video_kbps),
    )
    creditor_url = netns.url(server.invites["creditor"])
    inside = await chromium.playwright.chromium.launch(
        executable_path=str(netns.chromium(tmp_path / "bin")),
        args=[*chromium_args(media["creditor"]), *netns.chromium_switches(creditor_url)],
    )
    chromium.browsers.append(inside)
    outside = await chromium.launch(chromium_args(media["judge"]))
    opened = await asyncio.gather(
        *(chromium.open(outside, server.invites[seat], seat) for seat in STRONG),
        chromium.open(inside, creditor_url, "creditor"),
    )
    call = Call(server, dict(zip((*STRONG, "creditor"), opened, strict=True)))
    # The demo session has the lobby on: the judge admits the creditor.
    creditor_tile = call.seats["judge"].page.locator(".seat-tile[data-seat=creditor]")
    await creditor_tile.locator("button[data-action=admit]").click()
    for seat, member in call.seats.items():
        participant = await member.page.get_attribute("#room", "data-participant")
        assert participant, f"the {seat} page names no participant"
        call.participants[seat] = participant
    pairs = {(v, s) for v in SEATS for s in SEATS if v != s}
    await poll(
        lambda: probe_all(call.pages),
        lambda probes: pictures_everywhere(probes, pairs),
        within=60,
        what="every seat to see every other",
    )
    return call


@dataclass
class Run:
    """One scenario's windows: before (a clean link), weak, and after it recovered."""

    adapt: bool
    profile: Profile
    windows: dict[str, Window] = field(default_factory=dict)
    recovered_after: float | None = None
    receiving: dict[str, dict[str, str] | None] = field(default_factory=dict)
    # The weak link's shapers over the weak window, per direction: bytes, packets, drops.
    link: dict[str, dict[str, int]] = field(default_factory=dict)
    link_seconds: float = 0.0

    def report(self) -> str:
        mode = "per-viewer layers" if self.adapt else "lowest-REMB relay"
        lines = [f"{mode}, weak link: {self.profile.describe()}"]
        for name, window in self.windows.items():
            lines.append(f" {name} ({window.seconds:.1f} s):")
            lines.extend(window.rows())
            if name in self.receiving:
                lines.append(f"  server sends the creditor: {self.receiving[name]}")
            if name == "weak" and self.link_seconds:
                for direction, counts in self.link.items():
                    lines.append(
                        f"  link {direction}: {counts['bytes'] * 8 / self.link_seconds / 1000:.0f}"
                        f" kbit/s, {counts['packets'] / self.link_seconds:.0f} pkt/s,"
                        f" {counts['drops']} dropped by the queue"
                    )
        if self.recovered_after is not None:
            lines.append(f" recovered {self.recovered_after:.1f} s after the link was freed")
        return "\n".join(lines)


async def weak_link_run(
    call: Call,
    netns: Netns,
    profile: Profile,
    *,
    adapt: bool,
    settle: float = 25.0,
    window: float = 8.0,
    recover_within: float = 90.0,
) -> Run:
    """Measure a clean call, then with the creditor's link shaped to ``profile`` (after
    ``settle`` seconds), then free the link and wait for the creditor to get everything
    again (full frame rate from every seat, and with layers, "full" from the server)."""
    run = Run(adapt, profile)
    run.windows["clean"] = await measure(call.pages, window)
    netns.shape(profile)
    await asyncio.sleep(settle)
    before = netns.link_stats()
    run.windows["weak"] = await measure(call.pages, window)
    run.link = {
        direction: {key: value - before[direction][key] for key, value in counts.items()}
        for direction, counts in netns.link_stats().items()
    }
    run.link_seconds = run.windows["weak"].seconds
    run.receiving["weak"] = call.receiving("creditor")
    netns.shape(None)
    freed = time.monotonic()

    async def creditor_fps() -> Window:
        return await measure(call.pages, 3.0)

    def recovered(w: Window) -> bool:
        full = all(w.share("creditor", seat) >= 0.7 for seat in STRONG)
        told = call.receiving("creditor")
        return full and (not adapt or (told is not None and set(told.values()) == {"full"}))

    try:
        await poll(creditor_fps, recovered, within=recover_within, interval=0.1, what="recovery")
        run.recovered_after = time.monotonic() - freed
    except AssertionError:
        run.recovered_after = None
    run.windows["recovered"] = await measure(call.pages, window)
    run.receiving["recovered"] = call.receiving("creditor")
    return run


__all__ = ["Call", "Run", "start_call", "tail", "weak_link_run"]
