"""A Peer: the SFU's connection to one participant (media/connection.py), whose own tracks feed
Producers and whose slots are fed by Consumers, all on the fast path (media/fastpath.py)."""

from __future__ import annotations

import asyncio
import logging
import random
import statistics
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from aiortc import MediaStreamTrack, RTCRtpTransceiver

from courtlink.court.seats import Seat
from courtlink.media import _forward, fastpath, wire
from courtlink.media.connection import PeerState, SlotConnection
from courtlink.media.consumer import Consumer
from courtlink.media.layers import LayerRates, LayerSettings, ViewerAllocator
from courtlink.media.producer import Producer

__all__ = ["Downlink", "Peer", "PeerState", "downlink_loss"]

log = logging.getLogger("courtlink.media")

StateListener = Callable[["Peer", PeerState], Awaitable[None]]


class Peer(SlotConnection):
    def __init__(
        self,
        participant_id: str,
        seats: tuple[Seat, ...],
        *,
        video_codec: str = "vp8",
        ice_timeout: float = 20.0,
        announced_address: str = "",
        on_state: StateListener | None = None,
        observe_latency: Callable[[float], None] | None = None,
        layers: LayerSettings | None = None,
    ) -> None:
        self.observe_latency = observe_latency
        self.layers = layers or LayerSettings()
        # What of each seat's video this participant's own link carries (media/layers.py).
        self.allocator = ViewerAllocator(self.layers)
        self._adapted_at: float | None = None  # the last ``adapt`` tick (``clock``)
        self._undo_ingress: Callable[[], None] | None = None
        self._reporting = False
        # The participant's packets to its producers by payload type, in C (media/_receive.c).
        self._demux = _forward.Demux()
        self._demux.observe = observe_latency
        self.producers: dict[str, Producer] = {}
        self.consumers: dict[tuple[Seat, str], Consumer] = {}
        super().__init__(
            participant_id,
            seats,
            video_codec=video_codec,
            ice_timeout=ice_timeout,
            announced_address=announced_address,
            on_state=on_state,
        )
        wire.hook_rtp(self._own["audio"], self._on_rtp)

    def _sending_track(self, kind: str) -> MediaStreamTrack:
        # aiortc's sender waits on it forever and so never creates an encoder.
        return wire.SilentTrack(kind)

    def _own_added(self, kind: str, transceiver: RTCRtpTransceiver) -> None:
        wire.quiet_receiver(transceiver.receiver)
        self.producers[kind] = Producer(self.participant_id, kind, transceiver.receiver)

    def _slot_added(self, seat: Seat, kind: str, transceiver: RTCRtpTransceiver) -> None:
        wire.quiet_receiver(transceiver.receiver)
        consumer = Consumer(str(seat), kind, transceiver)
        wire.hook_sender_feedback(transceiver.sender, consumer.on_feedback)
        wire.quiet_sender_reports(transceiver.sender)
        self.consumers[(seat, kind)] = consumer

    def _negotiated(self) -> None:
        video = self._own["video"]
        rtx = {v: k for k, v in wire.rtx_payload_types(video).items()}  # rtx pt -> media pt
        self.producers["video"].configure(self.video_codec, rtx)
        for kind, transceiver in self._own.items():
            for codec in wire.negotiated_codecs(transceiver):
                if codec.payloadType is not None:
                    self._demux.route(codec.payloadType, self.producers[kind])
        for consumer in self.consumers.values():
            consumer.configure()

    async def _on_rtp(self, data: bytes, arrival_ms: int) -> None:
        """RTP that still came aiortc's way (before the fast path took the socket over)."""
        self._ingress(data, time.perf_counter_ns())

    def _ingress(self, data: bytes, arrived_ns: int) -> None:
        """One decrypted RTP packet of this participant: to its producer and on to the
        subscribers, all before returning (media/fastpath.py). On the fast path the Ingress
        hands packets to the Demux itself, with no call through here."""
        self._demux(data, arrived_ns)

    def _take_socket(self) -> None:
        """Connected: move this peer's RTP onto the fast path, both ways."""
        dtls = self._own["audio"].receiver.transport
        egress = fastpath.egress_for(dtls)
        for consumer in self.consumers.values():
            consumer.egress = egress if consumer.ready else None
        if self._undo_ingress is None:
            self._undo_ingress = fastpath.install_ingress(dtls, self._demux)

    async def offer(self) -> dict[str, Any]:
        """The server's offer; with per-viewer layers on VP8, also how the browser should send
        its video: three temporal layers (the SFU leaves the upper ones out for a weak viewer)
        and at most the cap."""
        offer = await super().offer()
        if self.layers.adapt and self.video_codec == "vp8":
            offer["publish"] = {
                "video": {
                    "scalability_mode": "L1T3",
                    "max_bitrate_bps": self.layers.max_video_bps,
                }
            }
        return offer

    def adapt(self, now: float) -> None:
        """Choose, from this participant's own estimate, how much of each seat's video it gets
        (the judge's first), and set its video slots to match. Once a second."""
        fed = sorted(
            (
                (seat, consumer)
                for (seat, kind), consumer in self.consumers.items()
                if kind == "video" and consumer.source is not None
            ),
            key=lambda pair: list(Seat).index(pair[0]),
        )
        # A browser's REMB covers every stream it receives (each slot keeps its share), aiortc
        # sends one per stream: either way the viewer's budget is the sum over its slots.
        shares = [c.remb_bps for _, c in fed]
        budget = sum(s for s in shares if s is not None) if None not in shares else None
        rates: list[tuple[str, LayerRates]] = [
            (str(seat), c.source.rates) for seat, c in fed if c.source is not None
        ]
        # Loss on this participant's downlink: what its slots reported since the last tick,
        # packets lost of packets expected (see Downlink). Each report is weighed once: the
        # median of reports up to 3 s old, the rule before, counted one loss-free second three
        # times, and let the sound's slots outvote a picture that lost most of its packets.
        since = now - 3.0 if self._adapted_at is None else self._adapted_at
        self._adapted_at = now
        downlink = downlink_loss(self.consumers.values(), since)
        asks = sum(c.keyframe_asks for _, c in fed if not c.paused)
        # How long since its newest receiver report, while it is sent media and has sent some.
        heard = [c.loss_at for c in self.consumers.values() if c.loss_at is not None]
        sending = any(c.source is not None and not c.paused for c in self.consumers.values())
        silent_for = now - max(heard) if heard and sending else 0.0
        for _, c in fed:
            c.keyframe_asks = 0
        # The round trip to this participant, for its producers' NACKs (producer._ask_for).
        rtt = self.rtt()
        for producer in self.producers.values():
            producer.rtt = rtt
        levels = self.allocator.allocate(
            budget,
            rates,
            now,
            loss=downlink.loss,
            overall_loss=downlink.overall,
            reported_packets=downlink.packets,
            keyframe_asks=asks,
            silent_for=silent_for,
        )
        for seat, consumer in fed:
            source_rates = consumer.source.rates if consumer.source is not None else LayerRates()
            before = consumer.receiving, consumer.layer_target
            consumer.apply_level(levels[str(seat)].level, source_rates.top, source_rates.layered)
            if consumer.squeezed != levels[str(seat)].squeezed:
                consumer.squeezed = levels[str(seat)].squeezed
                log.info(
                    "%s asks for %s's video at %s",
                    self.participant_id,
                    seat,
                    "a lower bitrate to keep a picture" if consumer.squeezed else "its full rate",
                )
            if (consumer.receiving, consumer.layer_target) != before:
                log.info(
                    "%s receives %s's video: %s (layer %d; estimate %s kbit/s, video loss %s, "
                    "overall %s, for %s)",
                    self.participant_id,
                    seat,
                    consumer.receiving,
                    levels[str(seat)].level,
                    None if budget is None else round(budget / 1000),
                    None if downlink.loss is None else f"{downlink.loss:.1%}",
                    None if downlink.overall is None else f"{downlink.overall:.1%}",
                    [round(r.rate(r.top) / 1000) for _, r in rates],
                )

    def rtt(self) -> float | None:
        """The round trip to this participant, in seconds: the shortest aiortc measured from
        the receiver reports on the slots it receives (None before any)."""
        rtts = [r for c in self.consumers.values() if (r := wire.sender_rtt(c.sender)) is not None]
        return min(rtts) if rtts else None

    def quality(self) -> dict[str, Any]:
        """This participant's connection as the server sees it: round-trip time (from the
        receiver reports on the slots it receives), loss on its uplink since last asked, its
        downlink estimate and what it receives of each seat's video (full, reduced: fewer
        temporal layers, audio_only: its link cannot carry that video), and the video bitrate
        it is asked to send (``send_kbps``; its page applies it)."""
        rtt = self.rtt()
        losses = [p.uplink_loss for p in self.producers.values() if p.uplink_loss is not None]
        shares = [c.remb_bps for c in self.consumers.values() if c.remb_bps is not None]
        asked = self.producers["video"].asked_bps
        return {
            "state": self.state,
            "rtt_ms": round(rtt * 1000, 1) if rtt is not None else None,
            "loss": round(max(losses), 3) if losses else None,
            "estimate_kbps": round(sum(shares) / 1000) if shares else None,
            "send_kbps": round(asked / 1000) if asked else None,
            "receiving": {
                str(seat): consumer.receiving
                for (seat, kind), consumer in self.consumers.items()
                if kind == "video" and consumer.source is not None
            },
        }

    def _connected(self) -> None:
        self._take_socket()
        if not self._reporting:
            self._reporting = True
            self._spawn(self._send_reports())
        for producer in self.producers.values():
            producer.want_keyframe()

    def reports(self) -> bytes:
        """This connection's RTCP reports as one compound packet: a sender report per slot that
        has sent media, a receiver report per own track that has received some, and one SDES
        naming the senders; empty when there is nothing to report.

        aiortc would send each sender's and each receiver's report in a datagram and a task of
        its own, eight a second per participant; together they are one."""
        packets: list[Any] = []
        senders = []
        for consumer in self.consumers.values():
            if wire.sender_ready(consumer.sender) and (sr := consumer.sender_report()):
                packets.append(sr)
                senders.append(consumer.sender)
        for transceiver in self._own.values():
            if (rr := wire.receiver_report(transceiver.receiver)) is not None:
                packets.append(rr)
        if not packets:
            return b""
        cname = wire.sender_cname(senders[0]) if senders else None
        if cname is not None:
            packets.append(wire.source_description(cname, [s._ssrc for s in senders]))
        return b"".join(bytes(packet) for packet in packets)

    async def _send_reports(self) -> None:
        """Every 0.5 to 1.5 s (RFC 3550's randomised interval, as aiortc does), the reports."""
        transport = self._own["audio"].receiver.transport
        while True:
            await asyncio.sleep(0.5 + random.random())
            try:
                payload = self.reports()
                if payload:
                    await wire.send_rtcp(transport, payload)
            except Exception:
                # One bad report must not end the connection's reports for good.
                log.exception("RTCP reports of %s failed", self.participant_id)

    async def close(self) -> None:
        """Close the connection, its producers, consumers and tasks; idempotent."""
        if self._closed:
            return
        self._closed = True
        for producer in self.producers.values():
            producer.close()
        for consumer in self.consumers.values():
            consumer.switch(None)
            consumer.egress = None
        if self._undo_ingress is not None:
            self._undo_ingress()
            self._undo_ingress = None
        self._demux.clear()
        await self._close_connection()


@dataclass(frozen=True, slots=True)
class Downlink:
    """What a participant's receiver reports said of its downlink since the last tick."""

    # Of its video slots, the median of the share of packets lost on the
    # way to it: what taking video away is for. Packets, not the reports' own fractions over
    # every slot: tail drops on a full link hit a frame's burst far more than the evenly paced
    # sound (a failed step up lost 60 % of the video and 7 % of the sound, and the sound's
    # slots outvoted it). The median, and each slot net of its publisher's own uplink loss
    # (Producer.uplink_loss), because a publisher on a weak uplink makes every viewer of its
    # slot report loss that no viewer's link had.
    loss: float | None
    # Lost of expected on every slot, net of uplink loss: the finer measure of a clean link
    # (the sound carries most packets; a picture at a few frames a second often loses none in
    # a second at 2 %).
    overall: float | None
    packets: int = 0  # the packets ``overall`` is of (0: not known)


SLOT_PACKETS_MIN = 5  # a video slot whose reports cover fewer packets says too little


def downlink_loss(consumers: Iterable[Consumer], since: float) -> Downlink:
    """Each slot's reports since the last tick (``Consumer.take_loss_counts``; ``since``: that
    tick, ``Consumer.clock`` time) over the slots the participant is sent media on; a paused
    slot or one without a publisher does not count. With no video slot of SLOT_PACKETS_MIN
    packets, the video loss is the overall one. Before any report has an interval (a slot's
    first report), the median of the reports' own fractions; None when none came."""
    expected_all = lost_all = 0.0
    slots: list[float] = []
    fractions = []
    for c in consumers:
        expected, lost = c.take_loss_counts()
        if c.source is None or c.paused or c.loss is None:
            continue
        if expected > 0:
            lost_here = lost - (c.source.uplink_loss or 0.0) * expected
            expected_all += expected
            lost_all += lost_here
            if c.kind == "video" and expected >= SLOT_PACKETS_MIN:
                slots.append(_ratio(expected, lost_here))
        if c.loss_at is not None and c.loss_at > since:
            fractions.append(c.loss)
    if expected_all == 0:
        median = statistics.median(fractions) if fractions else None
        return Downlink(median, median)
    overall = _ratio(expected_all, lost_all)
    loss = statistics.median(slots) if slots else overall
    return Downlink(loss, overall, int(expected_all))


def _ratio(expected: float, lost: float) -> float:
    """Lost of expected, within 0..1 (late packets make a count negative)."""
    return min(1.0, max(0.0, lost / expected))
