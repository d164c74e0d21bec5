"""The network namespace harness (tests/netns_support.py) does what it says: delay both ways,
loss, a rate limit, changes mid-test, a UDP firewall, and leaves nothing behind."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest

from tests.netns_support import Netns, Profile, namespace

pytestmark = pytest.mark.timeout(60)

# Run inside the namespace: connect to host:port over TCP, time five one-byte round trips,
# print the median in ms.
TCP_RTT = """
import socket, sys, time
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=10)
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
times = []
for _ in range(5):
    t = time.monotonic(); s.sendall(b"x"); s.recv(1); times.append(time.monotonic() - t)
print(sorted(times)[2] * 1000)
"""

# Run inside: send N numbered UDP datagrams of SIZE bytes to host:port, as fast as allowed for
# SECONDS (or all at once when SECONDS is 0).
UDP_SEND = """
import socket, sys, time
host, port, n, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
seconds = float(sys.argv[5])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
end = time.monotonic() + seconds
i = 0
while i < n or time.monotonic() < end:
    try:
        s.sendto(i.to_bytes(4, "big").ljust(size, b"."), (host, port))
    except OSError:
        time.sleep(0.001)
    i += 1
    if seconds and time.monotonic() >= end:
        break
    if seconds:
        time.sleep(0.0005)
"""


@pytest.fixture
def netns() -> Iterator[Netns]:
    with namespace() as ns:
        yield ns


class TcpEcho:
    def __init__(self, host: str) -> None:
        self.sock = socket.create_server((host, 0))
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with conn:
                while data := conn.recv(64):
                    conn.sendall(data)


def tcp_rtt_ms(ns: Netns, echo: TcpEcho) -> float:
    return float(ns.run(sys.executable, "-c", TCP_RTT, ns.host_ip, str(echo.port)).stdout)


class UdpSink:
    def __init__(self, host: str) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((host, 0))
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self.port = self.sock.getsockname()[1]
        self.arrivals: list[tuple[float, int]] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                data = self.sock.recv(65536)
            except OSError:
                return
            self.arrivals.append((time.monotonic(), len(data)))


def send_udp(ns: Netns, sink: UdpSink, n: int, size: int = 100, seconds: float = 0) -> None:
    args = [ns.host_ip, str(sink.port), str(n), str(size), str(seconds)]
    ns.run(sys.executable, "-c", UDP_SEND, *args)


def test_delay_loss_rate_firewall_and_cleanup(netns: Netns) -> None:
    echo, sink = TcpEcho(netns.host_ip), UdpSink(netns.host_ip)
    plain = tcp_rtt_ms(netns, echo)
    # Delay on both directions: an application's round trip is twice the delay.
    netns.shape(Profile(delay_ms=100))
    delayed = tcp_rtt_ms(netns, echo)
    # Changed mid-test.
    netns.shape(Profile(delay_ms=20))
    recovered = tcp_rtt_ms(netns, echo)
    netns.shape(None)
    cleared = tcp_rtt_ms(netns, echo)
    print(
        f"\n[{netns.backend}] TCP round trip: {plain:.1f} ms, 100 ms each way {delayed:.1f} ms, "
        f"20 ms each way {recovered:.1f} ms, cleared {cleared:.1f} ms"
    )
    assert plain < 20
    assert 195 < delayed < 260
    assert 38 < recovered < 80
    assert cleared < 20

    # Loss, one way (the namespace to the host): 20 % of 400 datagrams.
    netns.shape(Profile(loss_percent=20))
    send_udp(netns, sink, 400)
    time.sleep(0.3)
    arrived = len(sink.arrivals)
    print(f"20 % loss: {arrived} of 400 datagrams arrived")
    assert 240 <= arrived <= 360

    # A rate: 400 kbit/s, measured at the host over 2 s of a flood from inside.
    netns.shape(Profile(rate_kbit=400))
    sink.arrivals.clear()
    send_udp(netns, sink, 0, size=1000, seconds=3)
    window = [(t, size) for t, size in sink.arrivals if t > sink.arrivals[0][0] + 0.5]
    kbit = sum(size + 28 for _, size in window) * 8 / 1000 / (window[-1][0] - window[0][0])
    print(f"400 kbit/s: {kbit:.0f} kbit/s arrived")
    assert 320 < kbit < 480
    netns.shape(None)

    # The firewall: no UDP through, TCP still; then UDP again.
    netns.block_udp()
    sink.arrivals.clear()
    send_udp(netns, sink, 20)
    time.sleep(0.3)
    assert sink.arrivals == []
    assert netns.dropped_udp() >= 20
    assert tcp_rtt_ms(netns, echo) < 20
    netns.allow_udp()
    send_udp(netns, sink, 20)
    time.sleep(0.3)
    assert len(sink.arrivals) == 20


def test_nothing_is_left_behind() -> None:
    with namespace() as ns:
        ns.shape(Profile(delay_ms=10, rate_kbit=500))
        ns.block_udp()
        name, host_if = ns.name, ns.host_if
    assert (
        name not in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    )
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    assert host_if not in links
    rules = subprocess.run(
        ["iptables", "-w", "-t", "raw", "-S"], capture_output=True, text=True
    ).stdout
    assert host_if not in rules
