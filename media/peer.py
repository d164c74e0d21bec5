"""A Peer: one participant's single RTCPeerConnection to the server, with fixed slots.

The server makes the only offer. It holds, in this order: the participant's own audio and video
(the server receives them), then an audio and a video slot for every seat the participant does not
hold (the server sends them). Joins, leaves, mute, caucus and removal only change what feeds the
slots; the connection is never renegotiated. A participant whose network dropped gets a new Peer
with the same slots (aiortc has no ICE restart).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.exceptions import OperationError
from aiortc.rtcconfiguration import RTCBundlePolicy

from media import fastpath, wire
from media.consumer import Consumer, abs_send_time
from media.producer import Producer
from media.rtp import RtpError, parse_header
from media.sdp import announce
from rooms.errors import InvalidInput
from rooms.seats import SEATS, Seat

__all__ = ["Peer", "PeerState"]

log = logging.getLogger("courtlink.media")

KINDS = ("audio", "video")
PeerState = str  # "new" | "connecting" | "connected" | "failed" | "closed"
StateListener = Callable[["Peer", PeerState], Awaitable[None]]


class Peer:
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
    ) -> None:
        self.participant_id = participant_id
        self.seats = seats
        self.video_codec = video_codec
        self.ice_timeout = ice_timeout
        self.announced_address = announced_address
        self.on_state = on_state
        self.observe_latency = observe_latency
        self._undo_ingress: Callable[[], None] | None = None
        self._received = 0
        self.state: PeerState = "new"
        self.pc = RTCPeerConnection(
            RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)
        )
        self.producers: dict[str, Producer] = {}
        self.consumers: dict[tuple[Seat, str], Consumer] = {}
        self._by_pt: dict[int, Producer] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closed = False

        own = {kind: self.pc.addTransceiver(kind, direction="recvonly") for kind in KINDS}
        for kind, transceiver in own.items():
            wire.quiet_receiver(transceiver.receiver)
            self.producers[kind] = Producer(participant_id, kind, transceiver.receiver)
        self._own = own
        for seat in SEATS:
            if seat in seats:
                continue
            for kind in KINDS:
                transceiver = self.pc.addTransceiver(wire.SilentTrack(kind), direction="sendonly")
                # One stream per seat, so the browser groups a seat's audio and video.
                transceiver.sender._stream_id = f"seat-{seat}"
                wire.quiet_receiver(transceiver.receiver)
                consumer = Consumer(str(seat), kind, transceiver)
                wire.hook_sender_feedback(transceiver.sender, consumer.on_feedback)
                self.consumers[(seat, kind)] = consumer
        for transceiver in self.pc.getTransceivers():
            transceiver.setCodecPreferences(wire.codec_preferences(transceiver.kind, video_codec))
        wire.hook_rtp(own["audio"], self._on_rtp)
        self.pc.on("connectionstatechange", self._on_connection_state)

    @property
    def closed(self) -> bool:
        return self._closed

    def _spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def offer(self) -> dict[str, Any]:
        """The server's offer with the map of slots (mid -> seat and kind)."""
        await self.pc.setLocalDescription(await self.pc.createOffer())
        self.state = "connecting"
        self._spawn(self._watch_ice())
        description = self.pc.localDescription
        slots = [
            {"mid": c.transceiver.mid, "seat": str(seat), "kind": kind}
            for (seat, kind), c in self.consumers.items()
        ]
        own = {kind: t.mid for kind, t in self._own.items()}
        sdp = (
            announce(description.sdp, self.announced_address)
            if self.announced_address
            else description.sdp
        )
        return {"type": "offer", "sdp": sdp, "slots": slots, "own": own}

    async def accept(self, sdp: str) -> None:
        """The participant's answer."""
        if self.pc.signalingState != "have-local-offer":
            raise InvalidInput("no offer is waiting for an answer")
        try:
            await self.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="answer"))
        except OperationError as exc:
            # aiortc's only OperationError here: no codec in common for an m-line (say, an
            # answer that lists H.264 where the server offered VP8).
            raise InvalidInput(
                f"the answer accepts none of the offered codecs: {exc}", code="unsupported_codec"
            ) from None
        except (ValueError, AssertionError, KeyError, IndexError) as exc:
            raise InvalidInput(f"the answer is not usable SDP: {exc}") from None
        video = self._own["video"]
        codecs = wire.negotiated_codecs(video)
        if not any(
            c.mimeType.lower() == ("video/h264" if self.video_codec == "h264" else "video/vp8")
            for c in codecs
        ):
            raise InvalidInput(
                f"the answer does not accept {self.video_codec.upper()} video",
                code="unsupported_codec",
            )
        if not any(
            c.mimeType.lower() == "audio/opus" for c in wire.negotiated_codecs(self._own["audio"])
        ):
            raise InvalidInput("the answer does not accept Opus audio", code="unsupported_codec")
        rtx = {v: k for k, v in wire.rtx_payload_types(video).items()}  # rtx pt -> media pt
        self.producers["video"].configure(self.video_codec, rtx)
        for kind, transceiver in self._own.items():
            for codec in wire.negotiated_codecs(transceiver):
                if codec.payloadType is not None:
                    self._by_pt[codec.payloadType] = self.producers[kind]
        for consumer in self.consumers.values():
            consumer.configure()

    async def add_candidate(self, candidate: dict[str, Any]) -> None:
        from aiortc.sdp import candidate_from_sdp

        raw = candidate.get("candidate")
        if not raw:
            return  # end of candidates
        if not isinstance(raw, str) or len(raw) > 1024:
            raise InvalidInput("candidate must be an SDP candidate line")
        try:
            parsed = candidate_from_sdp(raw.removeprefix("candidate:"))
        except (ValueError, IndexError) as exc:
            raise InvalidInput(f"candidate is not valid: {exc}") from None
        parsed.sdpMid = candidate.get("sdpMid")
        parsed.sdpMLineIndex = candidate.get("sdpMLineIndex")
        await self.pc.addIceCandidate(parsed)

    async def _on_rtp(self, data: bytes, arrival_ms: int) -> None:
        """RTP that still came aiortc's way (before the fast path took the socket over)."""
        self._ingress(data, time.perf_counter_ns())

    def _ingress(self, data: bytes, arrived_ns: int) -> None:
        """One decrypted RTP packet of this participant: to its producer and on to the
        subscribers, all before returning (media/fastpath.py)."""
        producer = self._by_pt.get(data[1] & 0x7F)
        if producer is None:
            return
        video = producer.kind == "video"
        try:
            header = parse_header(data, scan=not video)
        except RtpError:
            return
        sent = producer.receive(data, header, abs_send_time() if video else 0)
        self._received += 1
        # One packet in 32 is plenty for the latency histogram and costs a 32nd.
        if sent and self.observe_latency is not None and self._received & 31 == 0:
            self.observe_latency((time.perf_counter_ns() - arrived_ns) / 1e9)

    def _take_socket(self) -> None:
        """Connected: move this peer's RTP onto the fast path, both ways."""
        dtls = self._own["audio"].receiver.transport
        egress = fastpath.egress_for(dtls)
        for consumer in self.consumers.values():
            consumer.egress = egress if consumer.ready else None
        if self._undo_ingress is None:
            self._undo_ingress = fastpath.install_ingress(dtls, self._ingress, time.perf_counter_ns)

    def quality(self) -> dict[str, Any]:
        """This participant's connection as the server sees it: round-trip time (from the
        receiver reports on the slots it receives) and loss on its uplink since last asked."""
        rtts = [r for c in self.consumers.values() if (r := wire.sender_rtt(c.sender)) is not None]
        losses = [x for p in self.producers.values() if (x := p.loss_since_last()) is not None]
        return {
            "state": self.state,
            "rtt_ms": round(min(rtts) * 1000, 1) if rtts else None,
            "loss": round(max(losses), 3) if losses else None,
        }

    async def _watch_ice(self) -> None:
        """Close a peer that never connects (ICE or DTLS never completes)."""
        await asyncio.sleep(self.ice_timeout)
        if self.state not in ("connected", "closed"):
            log.info("peer %s did not connect within %.0fs", self.participant_id, self.ice_timeout)
            await self._set_state("failed")
            await self.close()

    async def _on_connection_state(self) -> None:
        state = self.pc.connectionState
        if state == "connected":
            self._take_socket()
            await self._set_state("connected")
            for producer in self.producers.values():
                producer.want_keyframe()
        elif state in ("failed", "closed") and not self._closed:
            await self._set_state("failed")

    async def _set_state(self, state: PeerState) -> None:
        if self.state == state or self.state == "closed":
            return
        self.state = state
        if self.on_state is not None:
            try:
                await self.on_state(self, state)
            except Exception:
                log.exception("peer state listener failed")

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
        current = asyncio.current_task()
        for task in list(self._tasks):
            if task is not current:
                task.cancel()
        for task in list(self._tasks):
            if task is not current:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        with contextlib.suppress(Exception):
            await self.pc.close()
        # A peer closed because it failed stays "failed": that is what presence must show
        # until the participant asks for a new connection.
        if self.state != "failed":
            await self._set_state("closed")
