"""Per-viewer video layers: the forwarding core leaving VP8 temporal layers out for one
subscriber (media/_forward.c, fed through the Source in media/_receive.c) with sequence numbers
and picture ids renumbered so the subscriber sees no gap; pausing and resuming a slot; and the
allocator (media/layers.py) that chooses each viewer's levels from its estimate."""

from __future__ import annotations

import itertools
import random
from typing import Any

import pytest

from courtlink.media.consumer import Consumer
from courtlink.media.layers import (
    ALL,
    AUDIO_ONLY,
    FULL,
    PAUSED,
    REDUCED,
    LayerRates,
    LayerSettings,
    ViewerAllocator,
)
from courtlink.media.producer import Producer
from courtlink.media.rtp import parse_header
from tests.media.test_receive import FakeReceiver, packet, producer, slot
from tests.media.test_reconnect import FakeEgress

# L1T3: the temporal layer of frame n (TL0, TL2, TL1, TL2, ...), as libwebrtc sends it.
PATTERN = (0, 2, 1, 2)


def descriptor(picture_id: int, tid: int, *, start: bool, key: bool, long_id: bool = True) -> bytes:
    """An RFC 7741 payload descriptor (X, I, L, T) and the first bytes of a VP8 frame."""
    first = 0x80 | (0x10 if start else 0)
    ext = 0x80 | 0x40 | 0x20
    pid = (
        bytes([0x80 | (picture_id >> 8) & 0x7F, picture_id & 0xFF])
        if long_id
        else bytes([picture_id & 0x7F])
    )
    tl0 = bytes([(picture_id // 4) & 0xFF])
    tid_byte = bytes([(tid << 6) | (0x20 if tid > 0 else 0)])
    frame = (b"\x00" if key else b"\x01") + b"\x00\x00\x9d\x01\x2a" if start else b"\xaa" * 8
    return bytes([first, ext]) + pid + tl0 + tid_byte + frame


def frames(
    count: int, *, per_frame: int = 2, first_seq: int = 100, first_pid: int = 5, **kw: Any
) -> list[tuple[int, int, int, bytes]]:
    """(seq, picture id, tid, RTP packet) for ``count`` frames of ``per_frame`` packets, the
    first a key frame."""
    out = []
    seq = first_seq
    for n in range(count):
        pid = (first_pid + n) & 0x7FFF
        tid = PATTERN[n % 4]
        for part in range(per_frame):
            payload = descriptor(pid, tid, start=part == 0, key=n == 0, **kw)
            data = packet(seq, payload, marker=part == per_frame - 1)
            out.append((seq, pid, tid, data))
            seq += 1
    return out


def sent_fields(egress: FakeEgress) -> list[tuple[int, int, int]]:
    """(sequence number, picture id, tid) of each packet the subscriber got."""
    out = []
    for data in egress.sent:
        header = parse_header(data)
        payload = data[header.payload_start : header.payload_end]
        if not payload:  # padding (RFC 3550 5.1) in place of a late packet left out
            assert data[0] & 0x20
            out.append((header.sequence_number, -1, -1))
            continue
        if payload[2] & 0x80:
            pid = ((payload[2] & 0x7F) << 8) | payload[3]
            tid = payload[5] >> 6
        else:
            pid = payload[2]
            tid = payload[4] >> 6
        out.append((header.sequence_number, pid, tid))
    return out


def assert_no_gap(fields: list[tuple[int, int, int]]) -> None:
    seqs = [seq for seq, _, _ in fields]
    assert all((b - a) & 0xFFFF == 1 for a, b in itertools.pairwise(seqs)), seqs
    pids: list[int] = []
    for _, pid, _ in fields:
        if pid >= 0 and (not pids or pids[-1] != pid):
            pids.append(pid)
    assert all((b - a) & 0x7FFF == 1 for a, b in itertools.pairwise(pids)), pids


def setup() -> tuple[Producer, Consumer, FakeEgress, Consumer, FakeEgress]:
    source = producer("video")
    weak_egress, strong_egress = FakeEgress(), FakeEgress()
    weak = slot("video", source, weak_egress)
    strong = slot("video", source, strong_egress)
    return source, weak, weak_egress, strong, strong_egress


async def test_a_weak_viewer_gets_tl0_only_and_no_gap_while_the_other_gets_all() -> None:
    source, weak, weak_egress, _strong, strong_egress = setup()
    weak.layer_target = 0
    stream = frames(24)
    for _, _, _, data in stream:
        source.receive(data)
    # The strong subscriber: every packet, numbers untouched apart from the offset.
    assert len(strong_egress.sent) == len(stream)
    assert_no_gap(sent_fields(strong_egress))
    # The weak one: TL0 frames only (a quarter of the frames), consecutive numbers.
    weak_fields = sent_fields(weak_egress)
    assert {tid for _, _, tid in weak_fields} == {0}
    assert len(weak_fields) == len(stream) // 4
    assert_no_gap(weak_fields)
    assert weak.layer_dropped == len(stream) - len(weak_fields)
    assert weak.layer == 0
    # The source counted bytes per layer: TL2 carries half the frames.
    octets = source.layer_octets
    assert octets[0] > 0
    assert octets[1] > 0
    assert octets[2] > octets[1]
    assert octets[3] == 0


async def test_layers_go_down_at_any_frame_and_up_only_at_a_tl0_frame() -> None:
    source, weak, weak_egress, _, _ = setup()
    stream = frames(16)
    for _, _, _, data in stream[:6]:  # frames 0..2 whole
        source.receive(data)
    weak.layer_target = 0
    # The second packet of frame 3 (TL2): mid-frame, nothing changes yet... but frame 3's
    # first packet comes next and is left out.
    for _, _, _, data in stream[6:12]:  # frames 3..5
        source.receive(data)
    tids = [tid for _, _, tid in sent_fields(weak_egress)]
    assert tids == [0, 0, 2, 2, 1, 1, 0, 0]  # frames 0,1,2 then frame 4 (TL0); 3 and 5 out
    weak.layer_target = 2
    # Frame 6 is TL1, 7 TL2: still out (up only at a TL0 frame); from TL0 frame 8 on, all.
    for _, _, _, data in stream[12:]:
        source.receive(data)
    tids = [tid for _, _, tid in sent_fields(weak_egress)]
    assert tids[8:] == [0, 0, 2, 2, 1, 1, 2, 2, 0, 0, 2, 2, 1, 1, 2, 2]
    assert_no_gap(sent_fields(weak_egress))


async def test_short_picture_ids_are_renumbered_in_seven_bits() -> None:
    source, weak, weak_egress, _, _ = setup()
    weak.layer_target = 1
    stream = frames(40, first_pid=100, long_id=False)
    for _, _, _, data in stream:
        source.receive(data)
    fields = sent_fields(weak_egress)
    pids: list[int] = []
    for _, pid, _ in fields:
        if not pids or pids[-1] != pid:
            pids.append(pid)
    assert all((b - a) & 0x7F == 1 for a, b in itertools.pairwise(pids)), pids
    assert max(pids) < 128


async def test_a_late_packet_takes_the_number_kept_free_for_it() -> None:
    source, weak, weak_egress, _, _ = setup()
    weak.layer_target = 0
    stream = frames(8)
    order = [d for _, _, _, d in stream]
    late = order.pop(1)  # the key frame's second packet arrives after frames 1 and 2 (left out)
    order.insert(5, late)
    late_tl2 = order.pop(7)  # and a TL2 packet (frame 3's second) comes late too
    order.append(late_tl2)
    for data in order:
        source.receive(data)
    fields = sent_fields(weak_egress)
    # The key frame's first packet, then its second (late: the number right after, the same
    # picture id), TL0 frame 4's two packets, and padding for the late TL2 packet.
    first, late_key, *tl0, padding = fields
    assert late_key[:2] == ((first[0] + 1) & 0xFFFF, first[1])
    assert [pid for _, pid, _ in tl0] == [first[1] + 1] * 2
    assert padding[1] == -1
    assert_no_gap(sorted(fields))
    assert weak.layer_dropped == 16 - 4


async def test_a_paused_slot_sends_nothing_and_resumes_on_a_key_frame() -> None:
    source, weak, weak_egress, _, _ = setup()
    asked: list[bool] = []
    source.want_keyframe = lambda: asked.append(True) or True  # type: ignore[method-assign]
    stream = frames(8)
    for _, _, _, data in stream[:4]:
        source.receive(data)
    assert len(weak_egress.sent) == 4
    weak.apply_level(PAUSED, 2, True)
    assert weak.receiving == AUDIO_ONLY
    for _, _, _, data in stream[4:]:
        source.receive(data)
    assert len(weak_egress.sent) == 4
    weak.apply_level(0, 2, True)
    assert weak.receiving == REDUCED
    assert weak.waiting_keyframe
    assert asked
    delta = frames(4, first_seq=200, first_pid=40)
    for _, _, _, data in delta[2:]:  # not a key frame: still waiting
        source.receive(data)
    assert len(weak_egress.sent) == 4
    key = frames(4, first_seq=300, first_pid=60)
    for _, _, _, data in key:
        source.receive(data)
    fields = sent_fields(weak_egress)
    assert [tid for _, _, tid in fields[4:]] == [0, 0]  # the key frame; TL1/TL2 left out
    seqs = [seq for seq, _, _ in fields]
    assert all((b - a) & 0xFFFF == 1 for a, b in itertools.pairwise(seqs))
    weak.apply_level(2, 2, True)
    assert weak.receiving == FULL


def test_bad_layer_targets_are_refused_without_a_change() -> None:
    made = slot("video", Producer("x", "video", FakeReceiver()), FakeEgress())  # type: ignore[arg-type]
    for bad in (-1, 4, 1 << 40):
        with pytest.raises((ValueError, OverflowError)):
            made.layer_target = bad
    with pytest.raises(TypeError):
        made.layer_target = "1"  # type: ignore[assignment]
    assert made.layer_target == 3
    with pytest.raises(AttributeError):
        made.layer = 1  # type: ignore[misc]


@pytest.mark.parametrize("size", range(0, 9))
async def test_truncated_descriptors_never_read_past_the_payload(size: int) -> None:
    source, weak, weak_egress, _, _ = setup()
    weak.layer_target = 0
    whole = descriptor(300, 2, start=True, key=True)
    source.receive(packet(1, whole[:size]))
    # Whatever it holds, a packet is either forwarded whole or left out; nothing crashes.
    assert len(weak_egress.sent) <= 1


# The allocator -------------------------------------------------------------------------


def rates(*cumulative: float) -> LayerRates:
    """LayerRates whose cumulative rates are ``cumulative`` (one entry: no layers)."""
    made = LayerRates()
    made.total = cumulative[-1]
    if len(cumulative) > 1:
        steps = [b - a for a, b in itertools.pairwise((0.0, *cumulative))]
        made.per_layer = [*steps, *[0.0] * (4 - len(steps))]
    return made


def test_layer_rates_come_from_the_byte_counters() -> None:
    made = LayerRates(smoothing=1.0)
    made.update((0, 0, 0, 0), 0, 1.0)
    made.update((50_000, 25_000, 50_000, 0), 125_000, 1.0)
    assert made.cumulative == (400_000, 600_000, 1_000_000)
    assert made.top == 2
    # A second without TL2 (a publisher short of CPU) does not make the layer look gone.
    smoothed = LayerRates()
    smoothed.update((0, 0, 0, 0), 0, 1.0)
    smoothed.update((50_000, 25_000, 50_000, 0), 125_000, 1.0)
    smoothed.update((100_000, 50_000, 50_000, 0), 200_000, 1.0)
    assert smoothed.top == 2
    unlayered = LayerRates(smoothing=1.0)
    unlayered.update((0, 0, 0, 0), 0, 1.0)
    unlayered.update((0, 0, 0, 0), 62_500, 0.5)
    assert unlayered.cumulative == (1_000_000,)
    assert unlayered.top == 0


def test_without_an_estimate_everything_is_forwarded() -> None:
    allocator = ViewerAllocator(LayerSettings(settle=0))
    levels = allocator.allocate(None, [("judge", rates(100, 200, 400))], 0.0)
    assert levels["judge"].effective(2) == 2


SEATS2 = [("judge", rates(160e3, 240e3, 400e3)), ("debtor", rates(160e3, 240e3, 400e3))]


def test_a_falling_estimate_takes_layers_away_evenly_the_judge_last() -> None:
    allocator = ViewerAllocator(LayerSettings(settle=0))
    assert allocator.allocate(1e6, SEATS2, 0.0)["debtor"].effective(2) == 2
    # Short once is patience: nothing changes; a recovery in between resets it.
    assert allocator.allocate(300e3, SEATS2, 1.0)["debtor"].effective(2) == 2
    assert allocator.allocate(900e3, SEATS2, 2.0)["debtor"].effective(2) == 2
    assert allocator.allocate(300e3, SEATS2, 3.0)["debtor"].effective(2) == 2
    levels = allocator.allocate(250e3, SEATS2, 4.0)
    # One cut takes at most half of what is forwarded (800k): a layer at a time from the seat
    # with most, the debtor before the judge, down to 400k.
    assert (levels["judge"].effective(2), levels["debtor"].effective(2)) == (1, 0)


def test_drift_is_not_a_fall_and_a_low_estimate_that_rises_again_is_not_congestion() -> None:
    settings = LayerSettings(settle=0, patience=1, step_interval_clean=2.0, clean_after=1)
    allocator = ViewerAllocator(settings)
    seats = [("judge", rates(160e3, 240e3, 400e3))]
    allocator.allocate(1e6, seats, 0.0)
    assert allocator.allocate(20e3, seats, 1.0)["judge"].effective(2) == 0  # halved at most
    # The estimate climbs slowly from there (it cannot outrun what arrives), or drifts down a
    # little: no more cuts, and without loss layers come back after the back-off.
    for t, budget, want in ((3.0, 22e3, 0), (4.0, 21e3, 0), (5.0, 24e3, 1), (6.0, 26e3, 1)):
        assert allocator.allocate(budget, seats, t, loss=0.0)["judge"].effective(2) == want, t
    assert allocator.allocate(28e3, seats, 7.0, loss=0.0)["judge"].effective(2) == 2
    # A fall again, and again: down a step at a time; the last picture stays for moderate loss
    # (its publisher is asked for less instead) and goes (audio only) under heavy loss.
    assert allocator.allocate(10e3, seats, 8.0, loss=0.02)["judge"].effective(2) == 0
    level = allocator.allocate(5e3, seats, 9.0, loss=0.02)["judge"]
    assert (level.effective(2), level.squeezed) == (0, True)
    # Heavy loss pauses it, but only once the squeeze has had squeeze_grace (6 s) to work.
    level = allocator.allocate(4e3, seats, 10.0, loss=0.3)["judge"]
    assert (level.effective(2), level.squeezed) == (0, True)
    level = allocator.allocate(4e3, seats, 15.0, loss=0.3)["judge"]
    assert (level.effective(2), level.squeezed) == (PAUSED, False)
    # Paused, the estimate cannot move: the try comes after the back-off (doubled by the cuts
    # right after steps up: 16 s) whatever it says, and the picture comes back squeezed.
    assert allocator.allocate(4e3, seats, 30.0, loss=0.0)["judge"].effective(2) == PAUSED
    level = allocator.allocate(4e3, seats, 31.0, loss=0.0)["judge"]
    assert (level.effective(2), level.squeezed) == (0, True)


def test_a_falling_estimate_without_loss_is_not_congestion() -> None:
    """A busy receiver's estimate jitters on a clean link: no cut without some loss."""
    allocator = ViewerAllocator(LayerSettings(settle=0, patience=1))
    seats = [("judge", rates(160e3, 240e3, 400e3))]
    allocator.allocate(1e6, seats, 0.0, loss=0.0)
    for t, budget in ((1.0, 300e3), (2.0, 200e3), (3.0, 100e3)):
        assert allocator.allocate(budget, seats, t, loss=0.0)["judge"].effective(2) == 2
    assert allocator.allocate(50e3, seats, 4.0, loss=0.03)["judge"].effective(2) < 2


def test_loss_cuts_and_low_loss_gives_back_every_seat_its_lowest_layer_first() -> None:
    settings = LayerSettings(
        settle=0, patience=1, backoff=4.0, step_interval_clean=2.0, clean_after=1
    )
    allocator = ViewerAllocator(settings)
    seats = [*SEATS2, ("officer", rates(160e3, 240e3, 400e3))]
    levels = allocator.allocate(None, seats, 0.0, loss=0.3)
    # 30 % lost: what is forwarded is cut to 0.85 x 70 % of 1.2 Mbit/s, evenly, the judge last.
    assert [levels[s].effective(2) for s, _ in seats] == [1, 1, 0]
    levels = allocator.allocate(None, seats, 1.0, loss=0.25)
    assert [levels[s].effective(2) for s, _ in seats] == [0, 0, PAUSED]
    # Loss gone: after the back-off, every seat its lowest layer first, then more.
    expected = {2.0: [0, 0, -1], 4.0: [0, 0, -1], 5.0: [0, 0, 0], 7.0: [1, 0, 0]}
    expected |= {9.0: [1, 1, 0], 10.0: [1, 1, 0]}  # (10 s: within the step interval)
    for t, want in expected.items():
        levels = allocator.allocate(None, seats, t, loss=0.0)
        assert [levels[s].effective(2) for s, _ in seats] == want, t
    # Moderate loss (between low and high) holds everything where it is.
    levels = allocator.allocate(None, seats, 11.0, loss=0.07)
    assert [levels[s].effective(2) for s, _ in seats] == [1, 1, 0]


def test_a_step_up_that_fails_soon_doubles_the_back_off() -> None:
    settings = LayerSettings(
        settle=0, patience=1, step_interval=2.0, backoff=4.0, backoff_max=16.0, clean_after=1
    )
    allocator = ViewerAllocator(settings)
    seats = [("judge", rates(160e3, 240e3, 400e3))]
    allocator.allocate(None, seats, 0.0, loss=0.5)  # cut; back-off 4 s
    assert allocator.next_step_at == 4.0
    assert allocator.allocate(None, seats, 4.0, loss=0.0)["judge"].effective(2) == 1  # a step up
    level = allocator.allocate(None, seats, 5.0, loss=0.5)["judge"]  # it failed
    assert (level.effective(2), level.squeezed) == (0, True)  # the last picture: squeezed
    assert allocator.backoff == 8.0
    assert allocator.next_step_at == 13.0
    level = allocator.allocate(None, seats, 12.0, loss=0.0)["judge"]
    assert (level.effective(2), level.squeezed) == (0, True)
    level = allocator.allocate(None, seats, 13.0, loss=0.0)["judge"]
    assert (level.effective(2), level.squeezed) == (0, False)  # the next step: its full rate


def test_a_weak_link_is_probed_slowly_and_a_freed_one_at_once() -> None:
    """A cut leaves a ceiling (what the link was found to carry): on a link that still loses a
    little, a step that would go above it waits until the ceiling has grown 3 % a second; on
    a clean link it grows 25 % a second, and once it holds everything it is forgotten."""
    allocator = ViewerAllocator(LayerSettings(settle=0, patience=1, backoff=4.0))
    seats = [("judge", rates(100e3, 150e3, 250e3)), ("officer", rates(100e3, 150e3, 250e3))]
    allocator.allocate(None, seats, 0.0, loss=0.0)
    levels = allocator.allocate(None, seats, 1.0, loss=0.5)  # 500k cut to half: 250k
    assert [levels[s].effective(2) for s, _ in seats] == [1, 0]
    assert allocator.ceiling == pytest.approx(250e3)
    levels = allocator.allocate(None, seats, 2.0, loss=0.3)  # 250k cut to 150k
    assert [levels[s].effective(2) for s, _ in seats] == [0, PAUSED]
    ceiling = allocator.ceiling
    assert ceiling == pytest.approx(100e3)  # what is forwarded after the cut
    # 2 % loss: the officer's lowest layer (to 200k) waits for the ceiling: x 1.03 a second.
    for t in range(3, 12):
        levels = allocator.allocate(None, seats, float(t), loss=0.02)
        assert levels["officer"].level == PAUSED, t
    at = next(
        t
        for t in range(12, 40)
        if allocator.allocate(None, seats, float(t), loss=0.02)["officer"].level == 0
    )
    assert ceiling * 1.03 ** (at - 2) >= 200e3 > ceiling * 1.03 ** (at - 3)
    # The link freed (no loss): everything back within seconds, and the ceiling forgotten.
    for t in range(at + 1, at + 12):
        levels = allocator.allocate(None, seats, float(t), loss=0.0)
    assert [levels[s].state(2) for s, _ in seats] == [FULL, FULL]
    assert allocator.ceiling is None


def test_the_last_picture_squeezes_its_publisher_before_it_is_paused() -> None:
    settings = LayerSettings(
        settle=0, patience=1, backoff=4.0, max_video_bps=300_000, min_video_bps=150_000
    )
    allocator = ViewerAllocator(settings)
    seats = [("judge", rates(100e3, 150e3, 250e3)), ("officer", rates(100e3, 150e3, 250e3))]
    allocator.allocate(None, seats, 0.0, loss=0.0)
    for t in (1.0, 2.0, 3.0):
        levels = allocator.allocate(None, seats, t, loss=0.15)
    # Down to the judge's lowest layer; the next cut asks the judge's publisher for less.
    assert [levels[s].level for s, _ in seats] == [0, PAUSED]
    assert not levels["judge"].squeezed
    levels = allocator.allocate(None, seats, 4.0, loss=0.15)
    assert (levels["judge"].level, levels["judge"].squeezed) == (0, True)
    # Moderate loss goes on: the picture stays; only heavy loss pauses it.
    levels = allocator.allocate(None, seats, 5.0, loss=0.15)
    assert (levels["judge"].level, levels["judge"].squeezed) == (0, True)
    # Better again: the officer's lowest layer first (fewest layers), then the judge's full
    # rate before any more layers.
    steps = []
    for t in range(6, 80):
        levels = allocator.allocate(None, seats, float(t), loss=0.0)
        state = (levels["judge"].level, levels["judge"].squeezed, levels["officer"].level)
        if not steps or steps[-1] != state:
            steps.append(state)
    assert steps[:3] == [(0, True, PAUSED), (0, True, 0), (0, False, 0)]
    assert steps[-1] == (ALL, False, ALL)


async def test_a_squeezed_viewer_caps_what_the_publisher_is_asked_for(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def send_remb(receiver: Any, bitrate: int, ssrcs: list[int]) -> None:
        pass

    monkeypatch.setattr("courtlink.media.wire.send_remb", send_remb)
    made = Producer("judge", "video", FakeReceiver())  # type: ignore[arg-type]
    made.ssrc = 1234
    strong, weak = Viewer(900_000), Viewer(40_000, squeezed=True)
    made.consumers = [strong, weak]  # type: ignore[list-item]
    settings = LayerSettings(max_video_bps=600_000, min_video_bps=150_000)
    assert await made.send_remb(settings) == 150_000
    assert made.asked_bps == 150_000
    weak.squeezed = False
    assert await made.send_remb(settings) == 600_000
    assert made.asked_bps == 600_000
    # Low estimates alone never take a publisher below the floor (its viewers get fewer
    # layers instead); its own lossy uplink may.
    strong.remb_bps = 40_000
    assert await made.send_remb(settings) == 150_000
    made.uplink_cap = 90_000
    assert await made.send_remb(settings) == 90_000


def test_congestion_that_goes_on_right_after_a_cut_is_cut_again_at_once() -> None:
    """A link that fell from plenty to little takes several cuts (half at most each): after
    the first, the next ones need no patience."""
    allocator = ViewerAllocator(LayerSettings(settle=0, patience=2))
    seats = [*SEATS2, ("officer", rates(160e3, 240e3, 400e3))]
    allocator.allocate(None, seats, 0.0, loss=0.0)
    assert allocator.allocate(None, seats, 1.0, loss=0.4)["judge"].effective(2) == 2  # patience
    levels = allocator.allocate(None, seats, 2.0, loss=0.4)
    first = [levels[s].effective(2) for s, _ in seats]
    levels = allocator.allocate(None, seats, 3.0, loss=0.4)
    second = [levels[s].effective(2) for s, _ in seats]
    assert sum(second) < sum(first) < 6
    # Later congestion is new: patience again.
    for t in range(4, 30):
        allocator.allocate(None, seats, float(t), loss=0.0)
    before = [allocator.slots[s].level for s, _ in seats]
    levels = allocator.allocate(None, seats, 30.0, loss=0.4)
    assert [levels[s].level for s, _ in seats] == before


def test_a_freed_link_gets_a_step_a_second() -> None:
    """Without loss and with no ceiling left, steps come every step_interval_clean (1 s);
    with a little loss every step_interval (2 s)."""
    seats = [("judge", rates(100e3, 150e3, 250e3)), ("officer", rates(100e3, 150e3, 250e3))]

    def steps_in(loss: float) -> int:
        allocator = ViewerAllocator(LayerSettings(settle=0, patience=1, backoff=1.0))
        allocator.allocate(None, seats, 0.0, loss=0.0)
        for t in (1.0, 2.0, 3.0):
            allocator.allocate(None, seats, t, loss=0.6)
        allocator.ceiling = None  # the link was freed: nothing holds the steps back
        before = sum(lv.level for lv in allocator.slots.values())
        for t in range(5, 11):
            allocator.allocate(None, seats, float(t), loss=loss)
        return sum(lv.level for lv in allocator.slots.values()) - before

    assert steps_in(0.0) > steps_in(0.02) >= 2


def test_a_last_picture_that_keeps_losing_a_little_squeezes_its_publisher() -> None:
    """Loss between loss_low and loss_high is no congestion, but a viewer down to one picture
    at its lowest layer that keeps losing that much squeezes the publisher (its picture froze
    for seconds at a time on a link just too small for that layer)."""
    allocator = ViewerAllocator(LayerSettings(settle=0, patience=1, squeeze_after=3))
    seats = [("judge", rates(100e3, 150e3, 250e3)), ("officer", rates(100e3, 150e3, 250e3))]
    allocator.allocate(None, seats, 0.0, loss=0.0)
    for t in (1.0, 2.0, 3.0):
        levels = allocator.allocate(None, seats, t, loss=0.5)
    assert [levels[s].level for s, _ in seats] == [0, PAUSED]
    levels["judge"].squeezed = False  # (the cuts above squeezed it; start again)
    for t in (4.0, 5.0):
        assert not allocator.allocate(None, seats, t, loss=0.07)["judge"].squeezed
    assert allocator.allocate(None, seats, 6.0, loss=0.07)["judge"].squeezed
    # Two pictures, or a picture above its lowest layer: nothing of the kind.
    other = ViewerAllocator(LayerSettings(settle=0))
    for t in range(8):
        levels = other.allocate(None, seats, float(t), loss=0.07)
    assert not any(lv.squeezed for lv in levels.values())


def test_a_viewer_cut_to_sound_alone_gets_its_pictures_back_once_the_link_is_freed() -> None:
    """Congestion that goes on once every seat is paused (a 150 kbit/s link carries the sound
    alone) cut nothing and left a ceiling of 0, which never grew: the viewer stayed on sound
    alone after its link was freed (found by tools/bench-weak-link's slow profile)."""
    seats = [(s, rates(100e3, 150e3, 250e3)) for s in ("judge", "officer", "debtor")]
    allocator = ViewerAllocator(LayerSettings())
    t = 0.0
    for _ in range(12):
        allocator.allocate(None, seats, t, loss=0.0)
        t += 1
    for _ in range(40):
        levels = allocator.allocate(None, seats, t, loss=0.35, keyframe_asks=1)
        t += 1
    assert all(level.level == PAUSED for level in levels.values())
    assert allocator.ceiling is not None
    assert allocator.ceiling > 0
    for _ in range(60):
        levels = allocator.allocate(None, seats, t, loss=0.0)
        t += 1
    assert all(level.state(2) == FULL for level in levels.values()), levels


def test_a_second_without_loss_on_a_lossy_link_is_not_a_clean_link() -> None:
    """On a link losing 2 % at random a second's report often shows none: the ceiling grows
    fast only after clean_after clean reports in a row."""
    seats = [("judge", rates(100e3, 150e3, 250e3)), ("officer", rates(100e3, 150e3, 250e3))]
    allocator = ViewerAllocator(LayerSettings(settle=0, patience=1, clean_after=3))
    allocator.allocate(None, seats, 0.0, loss=0.0)
    allocator.allocate(None, seats, 1.0, loss=0.5)
    allocator.allocate(None, seats, 2.0, loss=0.5)
    ceiling = allocator.ceiling
    assert ceiling is not None
    for t, loss in enumerate((0.0, 0.03, 0.0, 0.0, 0.02, 0.0), start=3):
        allocator.allocate(None, seats, float(t), loss=loss)
    assert allocator.ceiling == pytest.approx(ceiling * 1.03**6)
    for t in (9.0, 10.0, 11.0):  # three clean reports in a row: clean
        allocator.allocate(None, seats, t, loss=0.0)
    assert allocator.ceiling is None or allocator.ceiling > ceiling * 1.03**7 * 1.25


def test_a_budget_that_covers_everything_changes_nothing() -> None:
    allocator = ViewerAllocator(LayerSettings(settle=0))
    seats = [("judge", rates(160e3, 240e3, 400e3)), ("debtor", rates(100e3))]
    for t in range(5):
        levels = allocator.allocate(2e6, seats, float(t), loss=0.0)
    assert levels["judge"].effective(2) == 2
    assert levels["debtor"].effective(0) == 0
    assert levels["judge"].state(2) == FULL
    assert levels["debtor"].state(0) == FULL


def test_nothing_is_taken_away_while_a_call_settles() -> None:
    allocator = ViewerAllocator(LayerSettings(patience=1, settle=10.0))
    seats = [("judge", rates(160e3, 240e3, 400e3))]
    allocator.allocate(1e6, seats, 100.0)
    for t in (101.0, 105.0, 109.0):
        assert allocator.allocate(1e3, seats, t, loss=0.5)["judge"].effective(2) == 2
    assert allocator.allocate(1e2, seats, 110.0, loss=0.5)["judge"].effective(2) < 2


def test_layers_a_publisher_adds_later_are_forwarded_at_once() -> None:
    """A browser's upper layers appear in its first seconds: a viewer nothing was taken from
    gets them without steps up (which would show as freezes)."""
    allocator = ViewerAllocator(LayerSettings(settle=0))
    early = rates(100e3)  # no layers seen yet
    assert allocator.allocate(1e6, [("judge", early)], 0.0, loss=0.0)["judge"].state(0) == FULL
    later = rates(160e3, 240e3, 400e3)
    level = allocator.allocate(1e6, [("judge", later)], 1.0, loss=0.0)["judge"]
    assert level.effective(later.top) == 2
    assert level.state(later.top) == FULL


def test_a_viewer_that_keeps_asking_for_key_frames_gets_less() -> None:
    """It cannot decode what it gets: that is congestion even when its reports say little."""
    allocator = ViewerAllocator(LayerSettings(settle=0))
    seats = [*SEATS2, ("officer", rates(160e3, 240e3, 400e3))]
    allocator.allocate(1e6, seats, 0.0, loss=0.0)
    levels = allocator.allocate(1e6, seats, 1.0, loss=0.03, keyframe_asks=2)
    assert [levels[s].effective(2) for s, _ in seats] == [2, 2, 2]  # once is patience
    levels = allocator.allocate(1e6, seats, 2.0, loss=0.03, keyframe_asks=1)
    assert [levels[s].effective(2) for s, _ in seats] == [2, 1, 1]  # at most half away
    # No step up while it still asks, however good the rest looks; asking on, it gets less.
    levels = allocator.allocate(1e6, seats, 7.0, loss=0.0, keyframe_asks=1)
    assert [levels[s].effective(2) for s, _ in seats] == [2, 1, 1]
    levels = allocator.allocate(1e6, seats, 9.0, loss=0.0, keyframe_asks=1)
    assert [levels[s].effective(2) for s, _ in seats] == [1, 1, 1]


def test_a_viewer_whose_reports_stop_gets_less() -> None:
    allocator = ViewerAllocator(LayerSettings(settle=0, patience=1))
    seats = [("judge", rates(160e3, 240e3, 400e3))]
    allocator.allocate(1e6, seats, 0.0, loss=0.0)
    assert allocator.allocate(None, seats, 1.0, silent_for=2.0)["judge"].effective(2) == 2
    assert allocator.allocate(None, seats, 2.0, silent_for=3.0)["judge"].effective(2) < 2


async def test_key_frame_requests_are_counted_unless_one_is_on_its_way() -> None:
    source, weak, _, _, _ = setup()
    await weak.on_feedback("keyframe", None)  # before the first key frame: on its way
    assert weak.keyframe_asks == 0
    for _, _, _, data in frames(2):
        source.receive(data)
    await weak.on_feedback("keyframe", None)
    await weak.on_feedback("keyframe", None)
    assert weak.keyframe_asks == 2


def test_the_old_relay_adapts_nothing() -> None:
    allocator = ViewerAllocator(LayerSettings(adapt=False))
    levels = allocator.allocate(10e3, [("judge", rates(160e3, 240e3, 400e3))], 0.0, loss=0.9)
    assert levels["judge"].effective(2) == 2


# The publisher's side -----------------------------------------------------------------------


class Viewer:
    def __init__(self, remb_bps: int | None, squeezed: bool = False) -> None:
        self.remb_bps = remb_bps
        self.squeezed = squeezed


async def test_publishers_are_told_the_best_estimate_within_the_cap_or_the_lowest_without(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    told: list[int] = []

    async def send_remb(receiver: Any, bitrate: int, ssrcs: list[int]) -> None:
        told.append(bitrate)

    monkeypatch.setattr("courtlink.media.wire.send_remb", send_remb)
    made = Producer("debtor", "video", FakeReceiver())  # type: ignore[arg-type]
    made.ssrc = 1234
    made.consumers = [Viewer(200_000), Viewer(900_000), Viewer(None)]  # type: ignore[list-item]
    assert await made.send_remb(LayerSettings(max_video_bps=600_000)) == 600_000
    assert await made.send_remb(LayerSettings(max_video_bps=2_000_000)) == 900_000
    assert await made.send_remb(LayerSettings(adapt=False)) == 200_000
    assert await made.send_remb() == 200_000
    assert told == [600_000, 900_000, 200_000, 200_000]


def test_a_lossy_uplink_caps_what_the_publisher_is_asked_for_until_it_recovers() -> None:
    settings = LayerSettings(max_video_bps=600_000)
    made = Producer("creditor", "video", FakeReceiver())  # type: ignore[arg-type]
    made.rates.total = 400_000
    losses = iter([0.4, 0.2, 0.07, 0.0, 0.0])
    made.loss_since_last = lambda: next(losses)  # type: ignore[method-assign]
    made.measure(1.0, settings)
    assert made.uplink_loss == 0.4
    cap = made.uplink_cap
    assert cap is not None
    assert 150_000 < cap < 400_000  # about what got through, a little less
    made.measure(1.0, settings)  # still lossy: lower, never higher
    assert made.uplink_cap is not None
    assert made.uplink_cap <= cap
    held = made.uplink_cap
    made.measure(1.0, settings)  # 7 %: between low and high, held
    assert made.uplink_cap == held
    made.measure(1.0, settings)  # clean: 5 % more a second
    assert made.uplink_cap == pytest.approx(held * 1.05)
    made.uplink_cap = 590_000
    made.measure(1.0, settings)  # past the cap: no cap of its own any more
    assert made.uplink_cap is None


async def test_random_streams_and_targets_never_break_the_numbering() -> None:
    """Reordered, duplicated, lost and truncated packets with the target changing at random:
    every packet sent parses, and what was sent for the first time is numbered without a gap
    (a late packet fills the number kept for it, or padding does)."""
    rng = random.Random(7)
    source, weak, weak_egress, _, strong_egress = setup()
    stream = frames(600, per_frame=3)
    order: list[bytes] = []
    for _, _, _, data in stream:
        if rng.random() < 0.03:
            continue  # lost upstream for good
        if rng.random() < 0.05 and order:
            order.insert(max(0, len(order) - rng.randrange(1, 6)), data)  # late
        else:
            order.append(data)
        if rng.random() < 0.02:
            order.append(data[: rng.randrange(12, len(data))])  # truncated
    for n, data in enumerate(order):
        if n % 40 == 0:
            weak.layer_target = rng.randrange(0, 4)
        source.receive(data)
    for egress in (weak_egress, strong_egress):
        seqs = [parse_header(p).sequence_number for p in egress.sent]
        assert len(seqs) > 100
        first_time = sorted(set(seqs), key=seqs.index)
        spread = (max(first_time) - min(first_time)) & 0xFFFF
        # Numbers are only skipped where packets were lost upstream (3 %), never for a layer.
        assert spread + 1 - len(first_time) <= 0.06 * len(stream) * 3
    assert weak.layer_dropped > 0


def test_a_tick_without_a_fresh_report_holds() -> None:
    """Once a viewer reports its loss, only a fresh report of little loss is room to step up:
    a tick without one (its reports are late, queued behind its own media on a weak link)
    neither steps up, nor grows the ceiling, nor counts toward a clean link, nor hands
    everything back."""
    settings = LayerSettings(settle=0, patience=1, backoff=4.0, clean_after=2, probe_growth=2.0)
    allocator = ViewerAllocator(settings)
    seats = [("judge", rates(100e3, 150e3, 250e3)), ("officer", rates(100e3, 150e3, 250e3))]
    allocator.allocate(None, seats, 0.0, loss=0.0)
    allocator.allocate(None, seats, 1.0, loss=0.5)  # a cut: 500k to half
    before = {seat: level.level for seat, level in allocator.slots.items()}
    ceiling = allocator.ceiling
    assert ceiling is not None
    for t in range(2, 30):
        levels = allocator.allocate(None, seats, float(t))
        assert {seat: level.level for seat, level in levels.items()} == before, t
    assert allocator.ceiling == ceiling
    assert allocator.clean == 0
    # A fresh report of little loss is room again: the ceiling doubles (this test's growth, a
    # second since the last tick) past everything the seats send, and one step (the back-off
    # long past).
    levels = allocator.allocate(None, seats, 30.0, loss=0.01)
    assert allocator.ceiling is None
    assert sum(level.level for level in levels.values()) == sum(before.values()) + 1
    # Reports counted, not ticks: two loss-free reports with silent ticks between are clean.
    allocator.allocate(None, seats, 31.0, loss=0.0)
    allocator.allocate(None, seats, 32.0)
    allocator.allocate(None, seats, 33.0, loss=0.0)
    assert allocator.clean == 2


def test_a_viewer_that_never_reports_loss_steps_up_on_its_estimate() -> None:
    allocator = ViewerAllocator(LayerSettings(settle=0, patience=1, backoff=4.0))
    seats = [("judge", rates(100e3, 150e3, 250e3))]
    allocator.allocate(1e6, seats, 0.0)
    allocator.allocate(100e3, seats, 1.0)  # falling far below what is forwarded: a cut
    cut = allocator.slots["judge"].effective(2)
    assert cut < 2
    stepped = [allocator.allocate(1e6, seats, float(t))["judge"].effective(2) for t in range(2, 40)]
    assert max(stepped) > cut


def test_congestion_right_after_a_step_up_takes_it_back_at_once() -> None:
    """A step up that overloads the link is cut on the first lossy report (no patience: the
    step is the suspect), the picture just added first."""
    allocator = ViewerAllocator(LayerSettings(settle=0, patience=2, backoff=4.0))
    seats = [("judge", rates(100e3, 150e3, 250e3)), ("officer", rates(100e3, 150e3, 250e3))]
    allocator.allocate(None, seats, 0.0, loss=0.0)
    allocator.allocate(None, seats, 1.0, loss=0.5)
    allocator.allocate(None, seats, 2.0, loss=0.5)  # two cuts: judge TL1, officer TL0 at most
    t, levels = 2.0, dict(allocator.slots)
    before = {seat: level.level for seat, level in levels.items()}
    while True:  # loss-free reports until the ceiling lets a step through
        t += 1.0
        levels = allocator.allocate(None, seats, t, loss=0.01)
        if sum(lv.level for lv in levels.values()) > sum(before.values()):
            break
        assert t < 60, "no step up within a minute"
    assert allocator.last_step_up == t
    assert allocator.last_cut is not None
    assert t - allocator.last_cut > 3  # out of the last cut's window
    allocator.allocate(None, seats, t + 1.0, loss=0.01)
    levels = allocator.allocate(None, seats, t + 2.0, loss=0.12)  # the first lossy report
    assert allocator.last_cut == t + 2.0
    assert levels["officer"].level == before["officer"]


def test_the_sound_decides_whether_a_link_is_clean() -> None:
    """A picture that lost nothing in a second on a link losing 2 % is not a clean link: the
    viewer's overall loss (its sound carries most packets) decides."""
    allocator = ViewerAllocator(LayerSettings(settle=0, clean_after=2))
    seats = [("judge", rates(100e3, 150e3, 250e3))]
    for t in range(5):
        allocator.allocate(None, seats, float(t), loss=0.0, overall_loss=0.02)
    assert allocator.clean == 0
    for t in range(5, 7):
        allocator.allocate(None, seats, float(t), loss=0.0, overall_loss=0.0)
    assert allocator.clean == 2


def test_a_report_every_few_seconds_grows_the_ceiling_for_all_of_them() -> None:
    """Ticks without a fresh report hold; the next report covers the time since the last one,
    so the ceiling grows as much as if every tick had had a report (with every picture
    paused a browser reports on its sound only every few seconds)."""
    settings = LayerSettings(settle=0, patience=1, backoff=4.0, clean_after=1000)
    seats = [("judge", rates(100e3, 150e3, 250e3))]
    allocator = ViewerAllocator(settings)
    allocator.allocate(None, seats, 0.0, loss=0.0)
    allocator.allocate(None, seats, 1.0, loss=0.5)  # a cut leaves a ceiling
    ceiling = allocator.ceiling
    assert ceiling is not None
    for t in (2.0, 3.0, 4.0, 5.0):
        allocator.allocate(None, seats, t)
    allocator.allocate(None, seats, 6.0, loss=0.01)
    assert allocator.ceiling == pytest.approx(ceiling * settings.probe_growth**5)


def test_a_clean_link_is_told_by_the_packets_its_reports_cover() -> None:
    """Three loss-free reports of a few packets each are not yet a clean link where their
    counts are known; one report of the sound's 750 packets is."""
    allocator = ViewerAllocator(LayerSettings(settle=0, clean_after=3, clean_packets=100))
    seats = [("judge", rates(100e3, 150e3, 250e3))]
    for t in range(3):
        allocator.allocate(None, seats, float(t), loss=0.0, overall_loss=0.0, reported_packets=10)
    assert allocator.clean < 3
    allocator.allocate(None, seats, 3.0, loss=0.0, overall_loss=0.0, reported_packets=750)
    assert allocator.clean >= 3
    allocator.allocate(None, seats, 4.0, loss=0.0, overall_loss=0.02, reported_packets=750)
    assert allocator.clean == 0
