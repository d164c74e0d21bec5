"""media.fastpath.srtp_call: libsrtp on the session's own buffer, checked against pylibsrtp."""

from __future__ import annotations

import os

import pylibsrtp
import pytest

from courtlink.media.fastpath import srtp_call

KEY = bytes(range(30))  # AES_CM_128_HMAC_SHA1_80: 16-byte key + 14-byte salt


def session_pair() -> tuple[pylibsrtp.Session, pylibsrtp.Session]:
    sender = pylibsrtp.Session(
        policy=pylibsrtp.Policy(key=KEY, ssrc_type=pylibsrtp.Policy.SSRC_ANY_OUTBOUND)
    )
    receiver = pylibsrtp.Session(
        policy=pylibsrtp.Policy(key=KEY, ssrc_type=pylibsrtp.Policy.SSRC_ANY_INBOUND)
    )
    return sender, receiver


def rtp(seq: int, payload: bytes) -> bytes:
    return (
        bytes([0x80, 96])
        + seq.to_bytes(2, "big")
        + b"\x00\x00\x10\x00"
        + b"\xca\xfe\xba\xbe"
        + payload
    )


def test_protect_matches_pylibsrtp_and_round_trips() -> None:
    ours, theirs = session_pair()[0], session_pair()[0]
    _, receiver = session_pair()
    protect = srtp_call(ours, unprotect=False)
    unprotect = srtp_call(receiver, unprotect=True)
    for seq in range(50):
        packet = rtp(seq, os.urandom(100 + seq * 20))
        sealed = protect(packet)
        assert sealed == theirs.protect(packet)  # same keys, same stream: same bytes
        assert len(sealed) == len(packet) + 10  # the 80-bit tag
        assert unprotect(sealed) == packet


def test_unprotect_refuses_tampered_and_replayed_packets() -> None:
    sender, receiver = session_pair()
    unprotect = srtp_call(receiver, unprotect=True)
    sealed = sender.protect(rtp(1, b"payload"))
    tampered = sealed[:-1] + bytes([sealed[-1] ^ 1])
    with pytest.raises(pylibsrtp.Error):
        unprotect(tampered)
    assert unprotect(sealed) == rtp(1, b"payload")
    with pytest.raises(pylibsrtp.Error):
        unprotect(sealed)  # a replay


def test_too_long_a_packet_is_refused_before_libsrtp() -> None:
    sender, _ = session_pair()
    protect = srtp_call(sender, unprotect=False)
    with pytest.raises(pylibsrtp.Error, match="too long"):
        protect(rtp(1, b"x" * 2000))


def test_the_call_keeps_its_session_alive() -> None:
    sender, receiver = session_pair()
    protect = srtp_call(sender, unprotect=False)
    del sender  # the closure holds the libsrtp context's owner
    assert srtp_call(receiver, unprotect=True)(protect(rtp(7, b"abc"))) == rtp(7, b"abc")
