"""The fast path: RTP from the socket to the subscribers' sockets without leaving the event
loop's datagram callback.

aiortc's own receive path hands each datagram from aioice's protocol through a STUN parse
attempt, an asyncio queue and the DTLS transport's reading coroutine, and its send path awaits
through two coroutines per packet. For forwarding that is most of the cost. Once a peer's ICE
pair is chosen and DTLS has derived the SRTP keys, the SFU therefore takes the nominated pair's
socket callback over:

* **Ingress**: a datagram whose first byte says RTP (128-191) and whose second byte is not an
  RTCP packet type is decrypted (pylibsrtp's libsrtp, called from C: ``Ingress`` in
  media/_forward.c) and handed to the peer's handler right in ``datagram_received``. STUN
  (consent checks), DTLS and RTCP still go to aiortc unchanged.
* **Egress**: a packet is rewritten, encrypted with the subscriber's SRTP session and written
  to the socket, synchronously, by the forwarding core in C (media/_forward.c: ``Slot`` is the
  base of every Consumer, ``Sender`` the egress of a peer on a plain UDP pair). A pair relayed
  through TURN has no socket of its own; it gets the Python ``Egress`` (libsrtp through
  ``srtp_call``, then the TURN transport's ``sendto``).

uvloop (``courtlink serve`` uses it) reads up to 32 datagrams per wake-up, and the socket
buffers are enlarged so bursts (a key frame to several subscribers) are not dropped. The
private aiortc and aioice attributes used here are covered by tests/media/test_aiortc_contract.py.
"""

from __future__ import annotations

import contextlib
import logging
import socket
from collections.abc import Callable
from typing import Any

import pylibsrtp
from pylibsrtp._binding import ffi, lib

from courtlink.media._forward import Ingress as IngressCallback
from courtlink.media._forward import Sender

__all__ = ["Egress", "Sender", "egress_for", "install_ingress", "sender_for", "srtp_call"]

log = logging.getLogger("courtlink.media")

SOCKET_BUFFER = 4 * 1024 * 1024

# (plain RTP bytes, arrival time from time.perf_counter_ns) -> None
Ingress = Callable[[bytes, int], object]


def _nominated(dtls: Any) -> Any:
    """aioice's nominated candidate pair of the DTLS transport's ICE connection, or None."""
    connection = getattr(dtls.transport, "_connection", None)
    nominated = getattr(connection, "_nominated", None) or {}
    return nominated.get(1)


def _enlarge(transport: Any) -> None:
    sock = transport.get_extra_info("socket")
    if sock is None:
        return
    for option in (socket.SO_RCVBUF, socket.SO_SNDBUF):
        # The kernel caps it (net.core.rmem_max); what it grants is fine.
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, option, SOCKET_BUFFER)


def srtp_call(session: pylibsrtp.Session, *, unprotect: bool) -> Callable[[bytes], bytes]:
    """``session.protect`` (or ``unprotect``) without pylibsrtp's per-packet allocation: the
    same libsrtp call on the session's own buffer, with the length cell allocated once.

    pylibsrtp's ``Session.__process`` allocates an ``int *`` and type-checks on every packet;
    at tens of thousands of packets a second that is a measurable share of the forwarding
    cost. Like pylibsrtp, this reuses the session's buffer, so it must only be called from the
    event loop's thread (it is). Raises ``pylibsrtp.Error`` as pylibsrtp would.
    """
    context = session._srtp[0]
    cdata = session._cdata
    buffer = session._buffer
    length = ffi.new("int *")
    function = lib.srtp_unprotect if unprotect else lib.srtp_protect
    limit = len(cdata) - (0 if unprotect else pylibsrtp.SRTP_MAX_TRAILER_LEN)

    def call(data: bytes, _session: pylibsrtp.Session = session) -> bytes:
        # ``_session`` keeps the session (and so its libsrtp context) alive as long as this
        # function is: the context pointer above would dangle otherwise.
        size = len(data)
        if size > limit:
            raise pylibsrtp.Error("packet is too long")
        length[0] = size
        buffer[0:size] = data
        if function(context, cdata, length):
            raise pylibsrtp.Error("libsrtp refused the packet")
        out: bytes = buffer[0 : length[0]]
        return out

    return call


class Egress:
    """Encrypt and send on one peer's chosen pair, in the caller's stack frame."""

    __slots__ = ("_protect", "_sendto", "addr", "sent")

    def __init__(self, srtp: pylibsrtp.Session, transport: Any, addr: tuple[str, int]) -> None:
        self._protect = srtp_call(srtp, unprotect=False)
        self._sendto = transport.sendto
        self.addr = addr
        self.sent = 0

    def send(self, packet: bytes) -> bool:
        try:
            self._sendto(self._protect(packet), self.addr)
        except (pylibsrtp.Error, OSError, AttributeError, RuntimeError):
            return False
        self.sent += 1
        return True


def sender_for(srtp: pylibsrtp.Session, transport: Any, addr: tuple[str, int]) -> Sender | None:
    """The C egress on ``transport``'s own UDP socket, or None when it has none (a TURN
    allocation) or ``addr`` is not a plain numeric address.

    The Sender calls pylibsrtp's own ``srtp_protect`` on the session's own libsrtp context
    (their addresses come from cffi) and keeps ``srtp`` alive, which owns that context."""
    sock = transport.get_extra_info("socket")
    if sock is None:
        return None
    try:
        return Sender(
            srtp,
            int(ffi.cast("uintptr_t", srtp._srtp[0])),
            int(ffi.cast("uintptr_t", ffi.addressof(lib, "srtp_protect"))),
            sock.fileno(),
            (str(addr[0]), int(addr[1])),
        )
    except (ValueError, OSError) as exc:
        log.debug("no C egress for %s: %s", addr, exc)
        return None


def egress_for(dtls: Any) -> Sender | Egress | None:
    """The egress of a connected DTLS transport (the C Sender when the pair is plain UDP);
    None before it is connected."""
    pair = _nominated(dtls)
    srtp = getattr(dtls, "_tx_srtp", None)
    transport = getattr(pair.protocol, "transport", None) if pair is not None else None
    if pair is None or srtp is None or transport is None:
        return None
    return sender_for(srtp, transport, pair.remote_addr) or Egress(
        srtp, transport, pair.remote_addr
    )


def _dropped(error: BaseException) -> None:
    log.error("dropping an RTP packet that could not be forwarded", exc_info=error)


def install_ingress(dtls: Any, handler: Ingress) -> Callable[[], None] | None:
    """Route decrypted RTP of ``dtls``'s chosen pair to ``handler(plain, arrival_ns)`` (the
    arrival time on ``time.perf_counter_ns``'s clock); returns the undo, or None when the
    transport is not connected yet.

    The socket callback becomes the C ``Ingress`` (media/_forward.c): a datagram whose first
    byte says RTP (128-191) and whose second is not an RTCP packet type is decrypted with the
    pair's libsrtp session there; STUN, DTLS and RTCP go to aioice's callback as before. What
    libsrtp refuses (replayed, forged) is dropped; an exception from ``handler`` is logged."""
    pair = _nominated(dtls)
    srtp = getattr(dtls, "_rx_srtp", None)
    if pair is None or srtp is None:
        return None
    protocol = pair.protocol
    original = protocol.datagram_received
    if getattr(protocol, "transport", None) is not None:
        _enlarge(protocol.transport)
    ingress = IngressCallback(
        srtp,
        int(ffi.cast("uintptr_t", srtp._srtp[0])),
        int(ffi.cast("uintptr_t", ffi.addressof(lib, "srtp_unprotect"))),
        handler,
        original,
        _dropped,
    )
    protocol.datagram_received = ingress

    def undo() -> None:
        if protocol.datagram_received is ingress:
            protocol.datagram_received = original

    return undo
