"""Network namespaces for tests: a participant (a browser, ``courtlink participant``) on a link
of its own, which a test can slow down, make lossy, cut or firewall, while the server and the
other participants stay on the host.

Usage (a fixture per test module; everything is removed at the end, also when the test fails)::

    from tests.netns_support import WEAK, Netns, Profile, namespace

    @pytest.fixture
    def netns() -> Iterator[Netns]:
        with namespace() as ns:
            yield ns

    async def test_weak_link(netns: Netns, tmp_path: Path) -> None:
        # The server must be reachable from the namespace (see "The server" below).
        server = await start_courtlink(tmp_path, **netns.server_env())
        netns.shape(WEAK)                      # 2 % loss, 300 kbit/s, 200 ms, both directions
        proc = await asyncio.create_subprocess_exec(
            *netns.command(COURTLINK, "participant", "--invite", netns.url(invite), ...))
        ...
        netns.shape(Profile(delay_ms=20))      # the link recovers, mid-test
        netns.shape(None)                      # no impairment at all
        netns.block_udp()                      # a firewall that lets TCP through, UDP not
        netns.link("down"); netns.link("up")   # cut it
        browser = await playwright.chromium.launch(
            executable_path=str(netns.chromium(tmp_path)), args=[...])  # Chromium inside

The link: a veth pair, ``host_if`` on the host with ``host_ip`` and ``inner_if`` in the
namespace with ``inner_ip``, on a /30 of 10.233.0.0/16 that no interface uses yet; the
namespace's default route goes to ``host_ip``. IPv6 is off inside (no link-local addresses
for WebRTC to try). Names carry the pid and a counter (``clnsPPPPPNN``), so tests run one after
another (or in several pytest processes) without meeting; namespaces left by a killed run
(their pid gone) are removed when the next one starts.

Impairment (``shape``) is applied on both directions: the host end's egress (towards the
namespace) and the namespace end's egress (towards the host), so the round trip gets twice the
delay. With the kernel's netem (``sch_netem``) it is one netem qdisc per end (delay, jitter,
loss, rate). Kernels built without netem (the Firecracker VMs this was written on have none)
get the same from parts: ``tbf`` for the rate, and delay, jitter and loss from a small
userspace delay line in the namespace (NFQUEUE through iptables: each packet's verdict is given
``delay`` later, or it is dropped). ``Netns.backend`` says which ("netem" or "nfqueue").
(With the delay line, the namespace's incoming packets are delayed after the kernel stamped
their arrival: ``ping`` from inside shows one direction's delay, applications see both.)

The server: ``courtlink serve`` must listen where the namespace can reach it, and its ICE must
offer an address the namespace can reach. ``server_env()`` gives the environment for
``start_courtlink``: HTTP on every interface (``COURTLINK_HOST=0.0.0.0``; the default,
127.0.0.1, is the namespace's own loopback inside it) and the SFU's ICE bound to ``host_ip``
(``COURTLINK__MEDIA__HOST_ADDRESS``: one candidate, on the link; any other of the host's
non-loopback addresses would be reachable too, through the namespace's default route, but
never 127.0.0.1, which several browser tests bind it to). Links the server hands out name
127.0.0.1; ``url()`` rewrites one to ``host_ip``. A browser needs ``chromium_switches(url)``
too: http://10.233.x.y is not a secure origin, and the join page needs one for the camera.
With tests/media/conftest.py's ``served``: ``served(host="0.0.0.0", public_host=ns.host_ip,
env={"COURTLINK__MEDIA__HOST_ADDRESS": ns.host_ip})`` (as tests/media/test_reconnect.py does).

Also: ``dropped_udp()`` (what the firewall dropped), ``delay_line_stats()`` (packets passed,
dropped, held, by direction), ``COURTLINK_TEST_SHAPER=nfqueue`` (or ``namespace("nfqueue")``)
to use the delay line even where netem exists.

Missing capabilities (not root, no ``ip``/``tc``, neither netem nor iptables with NFQUEUE)
fail the test under CI=true and skip it elsewhere (``tests.conftest.missing``).
"""

from __future__ import annotations

import contextlib
import functools
import heapq
import itertools
import json
import os
import random
import re
import selectors
import shlex
import shutil
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "CHROMIUM",
    "GOOD",
    "WEAK",
    "Netns",
    "Profile",
    "namespace",
]

CHROMIUM = "/usr/bin/chromium"
PREFIX = "clns"
SUPERNET = "10.233"
_counter = itertools.count()


@dataclass(frozen=True)
class Profile:
    """One direction's impairment (applied to each direction alike). ``rate_kbit`` 0: no limit;
    ``queue_ms``: how long a packet may wait for the rate (the bottleneck's buffer)."""

    delay_ms: float = 0
    jitter_ms: float = 0
    loss_percent: float = 0
    rate_kbit: int = 0
    queue_ms: int = 400

    def describe(self) -> str:
        parts = [f"{self.delay_ms:g} ms"]
        if self.jitter_ms:
            parts.append(f"±{self.jitter_ms:g} ms")
        if self.loss_percent:
            parts.append(f"{self.loss_percent:g} % loss")
        if self.rate_kbit:
            parts.append(f"{self.rate_kbit} kbit/s")
        return ", ".join(parts)


WEAK = Profile(delay_ms=200, loss_percent=2, rate_kbit=300)  # issue 12's weak link
GOOD = Profile(delay_ms=20)


def _missing(reason: str) -> None:
    from tests.conftest import missing

    missing("network namespaces", reason)


def _run(args: Sequence[str], *, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(list(args), capture_output=True, text=True, timeout=15, check=False)
    if check and done.returncode != 0:
        raise RuntimeError(f"`{shlex.join(args)}` failed: {done.stderr.strip() or done.stdout}")
    return done


@functools.cache
def _netem_available() -> bool:
    """Can this kernel make a netem qdisc? (Tried on a dummy link in a scratch namespace.)"""
    name = f"{PREFIX}probe{os.getpid() % 100000}"
    if _run(["ip", "netns", "add", name], check=False).returncode != 0:
        return False
    try:
        _run(["ip", "-n", name, "link", "add", "d0", "type", "dummy"], check=False)
        _run(["ip", "-n", name, "link", "set", "d0", "up"], check=False)
        made = _run(["tc", "-n", name, "qdisc", "add", "dev", "d0", "root", "netem"], check=False)
        return made.returncode == 0
    finally:
        _run(["ip", "netns", "del", name], check=False)


def _sweep_stale() -> None:
    """Remove namespaces (and host ends) left by runs whose process is gone."""
    listed = _run(["ip", "netns", "list"], check=False).stdout
    for line in listed.splitlines():
        match = re.match(rf"^({PREFIX}(\d{{5}})\d{{2}})\b", line)
        if match and not Path(f"/proc/{int(match.group(2))}").exists():
            _run(["ip", "netns", "del", match.group(1)], check=False)
            _run(["ip", "link", "del", "clh" + match.group(1)[len(PREFIX) :]], check=False)
    if shutil.which("iptables") is None:
        return
    rules = _run(["iptables", "-w", "-t", "raw", "-S", "PREROUTING"], check=False).stdout
    for line in rules.splitlines():
        match = re.search(r"-i clh(\d{5})\d{2}\b", line)
        if match and line.startswith("-A ") and not Path(f"/proc/{int(match.group(1))}").exists():
            _run(["iptables", "-w", "-t", "raw", "-D", *line.split()[1:]], check=False)


def _free_subnet() -> int:
    """A /30 of 10.233.0.0/16 that no address on the host is in: its base as an integer."""
    used = _run(["ip", "-o", "-4", "addr"], check=False).stdout
    taken = set()
    for found in re.finditer(rf"inet ({SUPERNET}\.\d+\.\d+)/", used):
        *_, c, d = (int(x) for x in found.group(1).split("."))
        taken.add((c << 8 | d) & ~3)
    for _ in range(200):
        base = random.randrange(4, 65532) & ~3
        if base not in taken:
            return base
    raise RuntimeError("no free /30 in 10.233.0.0/16")


@dataclass
class Netns:
    name: str
    host_if: str
    inner_if: str
    host_ip: str
    inner_ip: str
    backend: str  # "netem" or "nfqueue"
    profile: Profile | None = None
    udp_blocked: bool = False
    _delay_line: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    # Running things inside --------------------------------------------------------------

    def command(self, *args: str | os.PathLike[str]) -> list[str]:
        """``args`` to run inside the namespace (for subprocess or asyncio)."""
        return ["ip", "netns", "exec", self.name, *(os.fspath(a) for a in args)]

    def run(
        self, *args: str | os.PathLike[str], check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """Run a command inside, wait for it (15 s at most), return its output."""
        return _run(self.command(*args), check=check)

    def chromium(self, directory: Path, binary: str = CHROMIUM) -> Path:
        """An executable script that runs Chromium inside the namespace: pass it to Playwright
        as ``executable_path`` (Playwright drives Chromium over pipes, which ``ip netns exec``
        passes on; each ``exec`` keeps the pid, so Playwright's kill reaches Chromium)."""
        if not os.access(binary, os.X_OK):
            from tests.conftest import missing

            missing("Chromium", f"{binary} not found (tools/setup test installs it)")
        directory.mkdir(parents=True, exist_ok=True)
        script = directory / f"chromium-in-{self.name}"
        script.write_text(f'#!/bin/sh\nexec ip netns exec {self.name} {shlex.quote(binary)} "$@"\n')
        script.chmod(0o755)
        return script

    # The server ---------------------------------------------------------------------------

    def server_env(self) -> dict[str, str]:
        """``start_courtlink``'s environment for a server the namespace can reach: HTTP on every
        interface, the SFU's ICE on the host end of the link."""
        return {"COURTLINK_HOST": "0.0.0.0", "COURTLINK__MEDIA__HOST_ADDRESS": self.host_ip}

    def url(self, url: str) -> str:
        """A link the server handed out (http://127.0.0.1:PORT/...) as the namespace reaches it."""
        return re.sub(r"^(\w+://)(127\.0\.0\.1|localhost)(?=[:/]|$)", rf"\g<1>{self.host_ip}", url)

    def chromium_switches(self, url: str) -> list[str]:
        """Chromium's switches for pages at ``url`` (any link on the server): treat its plain
        http origin as secure, so the page may open the camera."""
        match = re.match(r"^(\w+://[^/]+)", self.url(url))
        assert match, url
        return [f"--unsafely-treat-insecure-origin-as-secure={match.group(1)}"]

    # The link -----------------------------------------------------------------------------

    def link(self, state: str) -> None:
        """``"down"`` cuts the link (both ways, at once), ``"up"`` restores it."""
        _run(["ip", "link", "set", self.host_if, state])

    def shape(self, profile: Profile | None) -> None:
        """Impair both directions with ``profile`` (None: no impairment); may be called again
        at any time to change it (packets already delayed keep their delay)."""
        ends = [("host", self.host_if), ("inner", self.inner_if)]
        for where, dev in ends:
            tc = ["tc"] if where == "host" else ["tc", "-n", self.name]
            if profile is None:
                _run([*tc, "qdisc", "del", "dev", dev, "root"], check=False)
            elif self.backend == "netem":
                _run([*tc, "qdisc", "replace", "dev", dev, "root", "netem", *_netem_args(profile)])
            elif profile.rate_kbit:
                _run([*tc, "qdisc", "replace", "dev", dev, "root", "tbf", *_tbf_args(profile)])
            else:
                _run([*tc, "qdisc", "del", "dev", dev, "root"], check=False)
        if self.backend == "nfqueue":
            self._tell_delay_line(profile or Profile())
        self.profile = profile

    def block_udp(self) -> None:
        """A firewall that drops every UDP datagram between the namespace and the host, both
        ways, silently (as a firewall on the way would: senders see no error); TCP passes. The
        rules sit where packets arrive: the host's raw PREROUTING for the namespace's link, and
        the namespace's own raw PREROUTING."""
        if not self.udp_blocked:
            for iptables, rule in self._udp_rules():
                _run([*iptables, "-I", *rule])
            self.udp_blocked = True

    def allow_udp(self) -> None:
        if self.udp_blocked:
            for iptables, rule in self._udp_rules():
                _run([*iptables, "-D", *rule], check=False)
            self.udp_blocked = False

    def _udp_rules(self) -> list[tuple[list[str], list[str]]]:
        rule = ["PREROUTING", "-t", "raw", "-p", "udp", "-j", "DROP", "-i"]
        return [
            (["iptables", "-w"], [*rule, self.host_if]),
            (self.command("iptables", "-w"), [*rule, self.inner_if]),
        ]

    def dropped_udp(self) -> int:
        """UDP packets the firewall dropped so far (both ways)."""
        total = 0
        for listing in (
            _run(["iptables", "-w", "-t", "raw", "-L", "PREROUTING", "-v", "-n", "-x"]).stdout,
            self.run("iptables", "-w", "-t", "raw", "-L", "PREROUTING", "-v", "-n", "-x").stdout,
        ):
            for line in listing.splitlines():
                if re.search(r"\bDROP\s+(17|udp)\b", line) and (
                    self.host_if in line or self.inner_if in line
                ):
                    total += int(line.split()[0])
        return total

    # The userspace delay line (kernels without netem) ---------------------------------------

    def _start_delay_line(self) -> None:
        for chain, flag, queue in (
            ("POSTROUTING", "-o", UP_QUEUE),
            ("PREROUTING", "-i", DOWN_QUEUE),
        ):
            self.run(
                "iptables", "-w", "-t", "mangle", "-A", chain, flag, self.inner_if,
                "-j", "NFQUEUE", "--queue-num", str(queue),
            )  # fmt: skip
        self._delay_line = subprocess.Popen(
            self.command(sys.executable, "-u", __file__, "delay-line"),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert self._delay_line.stdout is not None
        ready = self._delay_line.stdout.readline()
        if ready.strip() != b"ready":
            _, err = self._delay_line.communicate(timeout=5)
            raise RuntimeError(f"the delay line did not start: {ready!r} {err.decode()[-2000:]}")

    def _tell_delay_line(self, profile: Profile) -> None:
        line = self._delay_line
        if line is None or line.poll() is not None:
            err = line.stderr.read().decode() if line and line.stderr else ""
            raise RuntimeError(f"the delay line is not running: {err[-2000:]}")
        assert line.stdin is not None
        assert line.stdout is not None
        message = {
            "delay": profile.delay_ms / 1000,
            "jitter": profile.jitter_ms / 1000,
            "loss": profile.loss_percent / 100,
        }
        line.stdin.write(json.dumps(message).encode() + b"\n")
        line.stdin.flush()
        line.stdout.readline()  # "ok": the new profile is in force

    def link_stats(self) -> dict[str, dict[str, int]]:
        """What each direction's shaper did so far ("down": toward the namespace, "up": from
        it): bytes and packets sent, packets dropped (its queue was full), for the shaped
        link's diagnostics; zeros while a direction is not shaped."""
        out = {}
        for direction, tc, dev in (
            ("down", ["tc"], self.host_if),
            ("up", ["tc", "-n", self.name], self.inner_if),
        ):
            found = json.loads(_run([*tc, "-s", "-j", "qdisc", "show", "dev", dev]).stdout or "[]")
            root = next((q for q in found if q.get("root")), {})
            out[direction] = {key: int(root.get(key, 0)) for key in ("bytes", "packets", "drops")}
        return out

    def delay_line_stats(self) -> dict[str, int]:
        """The userspace delay line's counts so far (empty with netem)."""
        if self._delay_line is None or self._delay_line.poll() is not None:
            return {}
        assert self._delay_line.stdin is not None
        assert self._delay_line.stdout is not None
        self._delay_line.stdin.write(b'"stats"\n')
        self._delay_line.stdin.flush()
        counts: dict[str, int] = json.loads(self._delay_line.stdout.readline())
        return counts

    def _stop_delay_line(self) -> None:
        if self._delay_line is not None:
            with contextlib.suppress(Exception):
                self._delay_line.kill()
                self._delay_line.wait(5)
            self._delay_line = None


def _netem_args(profile: Profile) -> list[str]:
    args = ["delay", f"{profile.delay_ms:g}ms"]
    if profile.jitter_ms:
        args += [f"{profile.jitter_ms:g}ms", "distribution", "normal"]
    if profile.loss_percent:
        args += ["loss", f"{profile.loss_percent:g}%"]
    if profile.rate_kbit:
        args += ["rate", f"{profile.rate_kbit}kbit"]
        # netem's limit counts packets (those being delayed too): what the rate lets through
        # in delay + queue_ms, in packets of ~500 bytes (audio's are smaller, video's larger).
        bytes_held = profile.rate_kbit * 125 * (profile.delay_ms + profile.queue_ms) / 1000
        args += ["limit", str(max(30, int(bytes_held / 500)))]
    else:
        args += ["limit", "10000"]
    return args


def _tbf_args(profile: Profile) -> list[str]:
    burst = max(3000, profile.rate_kbit * 125 // 50)  # 20 ms at the rate, at least two packets
    return [
        "rate",
        f"{profile.rate_kbit}kbit",
        "burst",
        str(burst),
        "latency",
        f"{profile.queue_ms}ms",
    ]


@contextlib.contextmanager
def namespace(backend: str | None = None) -> Iterator[Netns]:
    """A fresh namespace linked to the host; removed (with its link, rules, qdiscs and delay
    line) when the block ends, however it ends. ``backend`` ("netem" or "nfqueue"; default:
    $COURTLINK_TEST_SHAPER, else netem where the kernel has it) says how ``shape`` works."""
    if os.geteuid() != 0:
        _missing("not root (network namespaces, veth and tc need CAP_NET_ADMIN)")
    for tool in ("ip", "tc"):
        if shutil.which(tool) is None:
            _missing(f"the `{tool}` command (iproute2) is not installed")
    _sweep_stale()
    backend = backend or os.environ.get("COURTLINK_TEST_SHAPER") or None
    if backend is None:
        backend = "netem" if _netem_available() else "nfqueue"
    elif backend not in ("netem", "nfqueue"):
        raise ValueError(f"backend: netem or nfqueue, not {backend!r}")
    elif backend == "netem" and not _netem_available():
        _missing("the kernel has no netem (sch_netem), and the netem backend was asked for")
    if backend == "nfqueue" and shutil.which("iptables") is None:
        _missing("the kernel has no netem (sch_netem) and iptables (for NFQUEUE) is not installed")
    tag = f"{os.getpid() % 100000:05d}{next(_counter) % 100:02d}"
    base = _free_subnet()
    host_ip = f"{SUPERNET}.{(base + 1) >> 8}.{(base + 1) & 255}"
    inner_ip = f"{SUPERNET}.{(base + 2) >> 8}.{(base + 2) & 255}"
    ns = Netns(PREFIX + tag, "clh" + tag, "cli" + tag, host_ip, inner_ip, backend)
    made = _run(["ip", "netns", "add", ns.name], check=False)
    if made.returncode != 0:
        _missing(f"`ip netns add` failed: {made.stderr.strip()}")
    try:
        for args in (
            ["ip", "netns", "exec", ns.name, "sh", "-c",
             "echo 1 > /proc/sys/net/ipv6/conf/all/disable_ipv6;"
             " echo 1 > /proc/sys/net/ipv6/conf/default/disable_ipv6"],
            ["ip", "link", "add", ns.host_if, "type", "veth", "peer", "name", ns.inner_if,
             "netns", ns.name],
            ["ip", "addr", "add", f"{host_ip}/30", "dev", ns.host_if],
            ["ip", "link", "set", ns.host_if, "up"],
            ["ip", "-n", ns.name, "addr", "add", f"{inner_ip}/30", "dev", ns.inner_if],
            ["ip", "-n", ns.name, "link", "set", ns.inner_if, "up"],
            ["ip", "-n", ns.name, "link", "set", "lo", "up"],
            ["ip", "-n", ns.name, "route", "add", "default", "via", host_ip],
        ):  # fmt: skip
            _run(args)
        if backend == "nfqueue":
            ns._start_delay_line()
        yield ns
    finally:
        ns.allow_udp()  # the host's rule; the namespace's go with it
        ns._stop_delay_line()
        _run(["ip", "netns", "del", ns.name], check=False)  # its end of the pair goes with it
        _run(["ip", "link", "del", ns.host_if], check=False)


# The delay line: a process in the namespace that holds each queued packet's verdict -----------
# (netlink's nfnetlink_queue protocol, linux/netfilter/nfnetlink_queue.h; no library needed)

UP_QUEUE, DOWN_QUEUE = 7, 8
NETLINK_NETFILTER = 12
NFNL_SUBSYS_QUEUE = 3
NFQNL_MSG_PACKET, NFQNL_MSG_VERDICT, NFQNL_MSG_CONFIG = 0, 1, 2
NFQA_CFG_CMD, NFQA_CFG_PARAMS, NFQA_CFG_QUEUE_MAXLEN = 1, 2, 3
NFQA_PACKET_HDR, NFQA_VERDICT_HDR = 1, 2
NFQNL_CFG_CMD_BIND = 1
NFQNL_COPY_META = 1
NLM_F_REQUEST, NLM_F_ACK = 1, 4
NLMSG_ERROR = 2
NF_DROP, NF_ACCEPT = 0, 1


def _nlmsg(kind: int, flags: int, queue: int, attrs: list[tuple[int, bytes]]) -> bytes:
    body = struct.pack("!BBH", socket.AF_UNSPEC, 0, queue)
    for attr_type, value in attrs:
        attr = struct.pack("=HH", 4 + len(value), attr_type) + value
        body += attr + b"\0" * (-len(attr) % 4)
    return (
        struct.pack("=IHHII", 16 + len(body), (NFNL_SUBSYS_QUEUE << 8) | kind, flags, 0, 0) + body
    )


def _attrs(data: bytes) -> dict[int, bytes]:
    found = {}
    while len(data) >= 4:
        length, attr_type = struct.unpack_from("=HH", data)
        if length < 4:
            break
        found[attr_type & 0x3FFF] = data[4:length]
        data = data[(length + 3) & ~3 :]
    return found


def delay_line() -> None:  # pragma: no cover - runs in its own process
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
    sock.setsockopt(socket.SOL_SOCKET, 33, 8 << 20)  # SO_RCVBUFFORCE
    with contextlib.suppress(OSError):
        sock.setsockopt(270, 5, 1)  # SOL_NETLINK, NETLINK_NO_ENOBUFS
    sock.bind((0, 0))
    for queue in (UP_QUEUE, DOWN_QUEUE):
        for attrs in (
            [(NFQA_CFG_CMD, struct.pack("!BxH", NFQNL_CFG_CMD_BIND, socket.AF_INET))],
            [(NFQA_CFG_PARAMS, struct.pack("!IBxxx", 0, NFQNL_COPY_META)[:5])],
            [(NFQA_CFG_QUEUE_MAXLEN, struct.pack("!I", 20000))],
        ):
            sock.send(_nlmsg(NFQNL_MSG_CONFIG, NLM_F_REQUEST | NLM_F_ACK, queue, attrs))
            reply = sock.recv(65536)
            error = struct.unpack_from("=i", reply, 16)[0] if len(reply) >= 20 else 0
            if struct.unpack_from("=H", reply, 4)[0] == NLMSG_ERROR and error != 0:
                sys.stderr.write(f"nfqueue config of queue {queue} failed: {os.strerror(-error)}\n")
                sys.exit(1)
    sock.setblocking(False)
    delay, jitter, loss = 0.0, 0.0, 0.0
    held: list[tuple[float, int, int, int]] = []  # (due, order, queue, packet id)
    last_due = {UP_QUEUE: 0.0, DOWN_QUEUE: 0.0}
    counts = {"up": 0, "down": 0, "passed": 0, "dropped": 0, "held_max": 0}
    order = itertools.count()
    selector = selectors.DefaultSelector()
    selector.register(sock, selectors.EVENT_READ, "netlink")
    selector.register(sys.stdin.buffer, selectors.EVENT_READ, "control")
    print("ready", flush=True)

    def verdict(queue: int, packet: int, what: int) -> None:
        attr = (NFQA_VERDICT_HDR, struct.pack("!II", what, packet))
        with contextlib.suppress(BlockingIOError):
            sock.send(_nlmsg(NFQNL_MSG_VERDICT, NLM_F_REQUEST, queue, [attr]))

    while True:
        timeout = max(0.0, held[0][0] - time.monotonic()) if held else None
        for key, _ in selector.select(timeout):
            if key.data == "control":
                line = sys.stdin.buffer.readline()
                if not line:
                    return
                message = json.loads(line)
                if message == "stats":
                    print(json.dumps({**counts, "held": len(held)}), flush=True)
                    continue
                delay, jitter, loss = message["delay"], message["jitter"], message["loss"]
                print("ok", flush=True)
                continue
            while True:
                try:
                    data = sock.recv(1 << 20)
                except BlockingIOError:
                    break
                now = time.monotonic()
                while len(data) >= 16:
                    length, kind = struct.unpack_from("=IH", data)
                    if length < 16:
                        break
                    if kind == (NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_PACKET:
                        queue = struct.unpack_from("!H", data, 18)[0]
                        header = _attrs(data[20:length]).get(NFQA_PACKET_HDR)
                        if header is not None:
                            packet = struct.unpack_from("!I", header)[0]
                            if loss and random.random() < loss:
                                verdict(queue, packet, NF_DROP)
                                counts["dropped"] += 1
                            else:
                                due = now + delay + (random.gauss(0, jitter) if jitter else 0)
                                due = max(due, last_due[queue])  # no reordering, as netem's rate
                                last_due[queue] = due
                                counts["up" if queue == UP_QUEUE else "down"] += 1
                                heapq.heappush(held, (due, next(order), queue, packet))
                    data = data[(length + 3) & ~3 :]
        counts["held_max"] = max(counts["held_max"], len(held))
        now = time.monotonic()
        while held and held[0][0] <= now:
            _, _, queue, packet = heapq.heappop(held)
            verdict(queue, packet, NF_ACCEPT)
            counts["passed"] += 1


if __name__ == "__main__" and sys.argv[1:] == ["delay-line"]:
    delay_line()
