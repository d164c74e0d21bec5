"""One participant's single RTCPeerConnection to the server, with fixed slots: the connection's
life (offer, answer, candidates, ICE deadline, closing), apart from what moves the media, which
is the SFU's Peer (media/peer.py).

The server makes the only offer. It holds, in this order: the participant's own audio and video
(the server receives them), then an audio and a video slot for every seat the participant does not
hold (the server sends them). Joins, leaves, mute, caucus and removal only change what feeds the
slots; the connection is never renegotiated. A participant whose network dropped gets a new
connection with the same slots (aiortc has no ICE restart).

Subclasses say what sits on a sending slot (``_sending_track``), what they attach to their own
and slot transceivers (``_own_added``, ``_slot_added``), what to set up once the answer is in
(``_negotiated``) and once connected (``_connected``), and close their own parts before
``_close_connection``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCPeerConnection,
    RTCRtpTransceiver,
    RTCSessionDescription,
)
from aiortc.exceptions import OperationError
from aiortc.rtcconfiguration import RTCBundlePolicy

from courtlink.court.seats import SEATS, Seat
from courtlink.errors import InvalidInput
from courtlink.media import wire
from courtlink.media.sdp import announce

__all__ = ["KINDS", "PeerState", "SlotConnection"]

log = logging.getLogger("courtlink.media")

KINDS = ("audio", "video")
PeerState = str  # "new" | "connecting" | "connected" | "failed" | "closed"


class SlotConnection:
    """The connection's life: offer, answer, candidates, state, the ICE deadline, closing."""

    def __init__(
        self,
        participant_id: str,
        seats: tuple[Seat, ...],
        *,
        video_codec: str = "vp8",
        ice_timeout: float = 20.0,
        announced_address: str = "",
        on_state: Callable[[Any, PeerState], Awaitable[None]] | None = None,
    ) -> None:
        self.participant_id = participant_id
        self.seats = seats
        self.video_codec = video_codec
        self.ice_timeout = ice_timeout
        self.announced_address = announced_address
        self.on_state = on_state
        self.state: PeerState = "new"
        self.pc = RTCPeerConnection(
            RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)
        )
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closed = False
        self._own: dict[str, RTCRtpTransceiver] = {}
        # The sending slots, (seat, kind) -> transceiver, in offer order.
        self.slot_transceivers: dict[tuple[Seat, str], RTCRtpTransceiver] = {}
        for kind in KINDS:
            self._own[kind] = self.pc.addTransceiver(kind, direction="recvonly")
            self._own_added(kind, self._own[kind])
        for seat in SEATS:
            if seat in seats:
                continue
            for kind in KINDS:
                transceiver = self.pc.addTransceiver(
                    self._sending_track(kind), direction="sendonly"
                )
                # One stream per seat, so the browser groups a seat's audio and video.
                transceiver.sender._stream_id = f"seat-{seat}"
                self.slot_transceivers[(seat, kind)] = transceiver
                self._slot_added(seat, kind, transceiver)
        for transceiver in self.pc.getTransceivers():
            transceiver.setCodecPreferences(wire.codec_preferences(transceiver.kind, video_codec))
        self.pc.on("connectionstatechange", self._on_connection_state)

    # What subclasses fill in --------------------------------------------------------------

    def _sending_track(self, kind: str) -> MediaStreamTrack:
        raise NotImplementedError

    def _own_added(self, kind: str, transceiver: RTCRtpTransceiver) -> None:
        """One of the participant's own tracks (received here) has its transceiver."""

    def _slot_added(self, seat: Seat, kind: str, transceiver: RTCRtpTransceiver) -> None:
        """A sending slot has its transceiver."""

    def _negotiated(self) -> None:
        """The answer is in and acceptable: payload types and MIDs are known."""

    def _connected(self) -> None:
        """ICE and DTLS are up (called before the state changes to "connected")."""

    # The life of the connection -------------------------------------------------------------

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
            {"mid": transceiver.mid, "seat": str(seat), "kind": kind}
            for (seat, kind), transceiver in self.slot_transceivers.items()
        ]
        own = {kind: t.mid for kind, t in self._own.items()}
        sdp = (
            announce(description.sdp, self.announced_address)
            if self.announced_address
            else description.sdp
        )
        return {"type": "offer", "sdp": sdp, "slots": slots, "own": own}

    async def accept(self, sdp: str) -> None:
        """The participant's answer; InvalidInput when it is not SDP or refuses the codecs."""
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
        video = "video/h264" if self.video_codec == "h264" else "video/vp8"
        if not any(c.mimeType.lower() == video for c in wire.negotiated_codecs(self._own["video"])):
            raise InvalidInput(
                f"the answer does not accept {self.video_codec.upper()} video",
                code="unsupported_codec",
            )
        if not any(
            c.mimeType.lower() == "audio/opus" for c in wire.negotiated_codecs(self._own["audio"])
        ):
            raise InvalidInput("the answer does not accept Opus audio", code="unsupported_codec")
        self._negotiated()

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

    async def _watch_ice(self) -> None:
        """Close a connection that never comes up (ICE or DTLS never completes)."""
        await asyncio.sleep(self.ice_timeout)
        if self.state not in ("connected", "closed"):
            log.info("peer %s did not connect within %.0fs", self.participant_id, self.ice_timeout)
            await self._set_state("failed")
            await self.close()

    async def _on_connection_state(self) -> None:
        state = self.pc.connectionState
        if state == "connected":
            self._connected()
            await self._set_state("connected")
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
        """Close everything; idempotent. Subclasses close their parts, then call
        ``_close_connection``."""
        if not self._closed:
            self._closed = True
            await self._close_connection()

    async def _close_connection(self) -> None:
        """Cancel the tasks, close the RTCPeerConnection, and say so."""
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
        # A connection closed because it failed stays "failed": that is what presence must
        # show until the participant asks for a new connection.
        if self.state != "failed":
            await self._set_state("closed")
