"""``courtlink bench join`` and ``courtlink bench documents``: the latencies people feel.

* join: N sessions of four join at once (headless participants that decode, as a browser
  would); for each participant, the time from its Socket.IO connect to the first remote video
  frame it decodes.
* documents: an order from issue to verified on the terminal (pushed, fetched, hash checked,
  receipt recorded), and from the officer's acknowledgment to the judge's dashboard seeing it
  (the ``document.updated`` event on the judge's connection); with a 2 MB document the first
  figure is measured on a 2 MB PDF sent to the terminal (orders themselves are about 0.4 MB).
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import statistics
import time
from pathlib import Path
from typing import Any

import aiohttp
import socketio

from courtlink.bench.sfu import PASSWORD, ServerProcess, prepare_rooms

__all__ = ["percentile", "run_documents", "run_join"]


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    low, high = int(k), min(int(k) + 1, len(ordered) - 1)
    return round(ordered[low] + (ordered[high] - ordered[low]) * (k - low), 4)


async def run_join(groups: int, *, log: Any = None) -> dict[str, Any]:
    """N groups of four join at the same moment."""
    import tempfile

    from courtlink.bench.participant import Participant

    with tempfile.TemporaryDirectory(prefix="courtlink-bench-") as tmp:
        server = ServerProcess(Path(tmp), core=0)
        await server.start()
        try:
            plan = await prepare_rooms(server, groups)
            members = [
                Participant(f"{server.base}/i/{p['token']}", consent=True, ssl=False) for p in plan
            ]
            connected_at: dict[int, float] = {}
            for index, member in enumerate(members):
                member.on_event = _recorder(index, connected_at)
            started = time.monotonic()
            runs = [asyncio.create_task(m.run(25)) for m in members]
            deadline = started + 25
            while time.monotonic() < deadline:
                await asyncio.sleep(0.25)
                if all(_first_frame(m) is not None for m in members):
                    break
            for member in members:
                member._stopped.set()  # end the runs now that every first frame is in
            await asyncio.gather(*runs, return_exceptions=True)
        finally:
            server.stop()
    firsts = []
    missing = 0
    for member in members:
        first = _first_frame(member)
        if first is None:
            missing += 1
            continue
        firsts.append(first)
    result = {
        "groups": groups,
        "participants": len(members),
        "first_frame_s_p50": percentile(firsts, 0.5),
        "first_frame_s_p95": percentile(firsts, 0.95),
        "first_frame_s_max": max(firsts) if firsts else None,
        "without_video": missing,
    }
    if log is not None:
        log(json.dumps(result))
    return result


def _recorder(index: int, into: dict[int, float]) -> Any:
    def on_event(kind: str, data: dict[str, Any]) -> None:
        if kind == "joined" and index not in into:
            into[index] = time.monotonic()

    return on_event


def _first_frame(member: Any) -> float | None:
    """Seconds from the participant's join to its first decoded remote video frame."""
    times = [s.first_video_at for s in member.slots.values() if s.first_video_at is not None]
    return min(times) if times else None


def _pdf_of(size: int) -> bytes:
    """A valid PDF of at least ``size`` bytes (a noisy scanned page, in effect)."""
    import os

    from PIL import Image

    side = 256
    while True:
        image = Image.frombytes("RGB", (side, side), os.urandom(side * side * 3))
        out = io.BytesIO()
        image.save(out, "PDF", quality=95)
        if out.tell() >= size:
            return out.getvalue()
        side = int(side * 1.4)


async def run_documents(
    rounds: int, *, large_bytes: int = 2 * 1024 * 1024, log: Any = None
) -> dict[str, Any]:
    """Issue to verified on the terminal, and acknowledgment to the judge's dashboard."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="courtlink-bench-") as tmp:
        server = ServerProcess(Path(tmp), core=None)
        await server.start()
        try:
            return await _documents(server, rounds, large_bytes, log)
        finally:
            server.stop()


async def _documents(
    server: ServerProcess, rounds: int, large_bytes: int, log: Any
) -> dict[str, Any]:
    server.cli(
        "account", "add", "--username", "bench", "--name", "Bench", "--role", "judge",
        "--court", "Bench court", "--password-stdin", stdin=PASSWORD + "\n",
    )  # fmt: skip
    server.cli(
        "account", "add", "--username", "boss", "--name", "Approver", "--role", "approver",
        "--court", "Bench court", "--password-stdin", stdin=PASSWORD + "\n",
    )  # fmt: skip
    server.cli(
        "account", "add", "--username", "guard", "--name", "Officer", "--role", "officer",
        "--center", "Bench center", "--password-stdin", stdin="135790\n",
    )  # fmt: skip
    terminal = json.loads(
        server.cli("terminal", "add", "--name", "T", "--center", "Bench center", "--json")
    )
    judge = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
    boss = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
    kiosk = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
    judge_sio = socketio.AsyncClient(reconnection=False)
    terminal_sio = socketio.AsyncClient(reconnection=False)
    try:
        csrf = {}
        for name, http in (("bench", judge), ("boss", boss)):
            async with http.post(
                server.base + "/api/login", json={"username": name, "password": PASSWORD}
            ) as r:
                csrf[name] = (await r.json())["csrf"]
        async with kiosk.get(terminal["url"], allow_redirects=False):
            pass

        async def call(
            http: aiohttp.ClientSession, who: str | None, path: str, body: Any = None
        ) -> Any:
            headers = {"X-CSRF-Token": csrf[who]} if who else {}
            async with http.post(server.base + path, json=body or {}, headers=headers) as response:
                data = await response.json()
                if response.status >= 300:
                    raise RuntimeError(f"{path}: {data.get('detail')}")
                return data

        case = await call(
            judge,
            "bench",
            "/api/cases",
            {
                "number": "(2026)苏0903执9号",
                "creditor_name": "甲",
                "debtor_name": "乙",
                "amount_owed_fen": 100,
            },
        )

        updates: asyncio.Queue[tuple[float, dict[str, Any]]] = asyncio.Queue()
        items: asyncio.Queue[tuple[float, dict[str, Any]]] = asyncio.Queue()
        judge_sio.on("document.updated", lambda d: updates.put_nowait((time.monotonic(), d)))
        terminal_sio.on("inbox.item", lambda m: items.put_nowait((time.monotonic(), m)))
        cookie = "; ".join(f"{c.key}={c.value}" for c in judge.cookie_jar)
        await judge_sio.connect(
            server.base,
            headers={"Cookie": cookie},
            auth={"as": "account"},
            transports=["websocket"],
        )
        await terminal_sio.connect(
            server.base, auth={"terminal": terminal["credential"]}, transports=["websocket"]
        )

        async def fetch_and_verify(message: dict[str, Any]) -> None:
            doc = message["document"]
            async with kiosk.get(f"{server.base}/api/documents/{doc['id']}/file") as response:
                data = await response.read()
            digest = hashlib.sha256(data).hexdigest()
            async with kiosk.post(
                f"{server.base}/api/inbox/{message['item']['id']}/received", json={"sha256": digest}
            ) as response:
                if response.status != 200 or digest != doc["sha256"]:
                    raise RuntimeError("the terminal could not verify the document")

        issue_to_verified: list[float] = []
        large_to_verified: list[float] = []
        ack_to_dashboard: list[float] = []
        sizes: list[int] = []
        for n in range(rounds):
            start = time.monotonic()
            detention = await call(
                judge,
                "bench",
                "/api/detentions",
                {
                    "case_id": case["id"],
                    "center": "Bench center",
                    "start": _iso(start - 3600),
                    "days": 15,
                },
            )
            order = await call(
                judge,
                "bench",
                "/api/documents/orders",
                {"kind": "release", "detention_id": detention["id"], "reason": f"已履行 {n}"},
            )
            await call(boss, "boss", f"/api/documents/{order['id']}/approve")
            started = time.monotonic()
            issued = await call(judge, "bench", f"/api/documents/{order['id']}/issue")
            _, message = await _next(items, lambda m, i=order["id"]: m["document"]["id"] == i)
            await fetch_and_verify(message)
            issue_to_verified.append(time.monotonic() - started)
            sizes.append(int(issued["size"]))
            _drain(updates)
            acked = time.monotonic()
            async with kiosk.post(
                f"{server.base}/api/documents/{order['id']}/acknowledge",
                json={"officer": "guard", "pin": "135790"},
            ) as response:
                if response.status != 200:
                    raise RuntimeError("acknowledge refused")
            seen, _ = await _next(
                updates, lambda d, i=order["id"]: d["id"] == i and d["state"] == "acknowledged"
            )
            ack_to_dashboard.append(seen - acked)
        # A 2 MB document: upload, then send it to the terminal and time it to verified.
        pdf = _pdf_of(large_bytes)
        for _ in range(max(1, rounds // 2)):
            form = aiohttp.FormData()
            form.add_field("file", pdf, filename="scan.pdf", content_type="application/pdf")
            async with judge.post(
                f"{server.base}/api/cases/{case['id']}/uploads",
                data=form,
                headers={"X-CSRF-Token": csrf["bench"]},
            ) as response:
                upload = await response.json()
            started = time.monotonic()
            await call(
                judge,
                "bench",
                f"/api/documents/{upload['id']}/share",
                {"recipients": [f"terminal:{terminal['terminal']}"]},
            )
            _, message = await _next(items, lambda m, i=upload["id"]: m["document"]["id"] == i)
            await fetch_and_verify(message)
            large_to_verified.append(time.monotonic() - started)
        result = {
            "rounds": rounds,
            "order_bytes_mean": int(statistics.mean(sizes)),
            "issue_to_verified_s_p50": percentile(issue_to_verified, 0.5),
            "issue_to_verified_s_p95": percentile(issue_to_verified, 0.95),
            "large_bytes": len(pdf),
            "large_to_verified_s_p50": percentile(large_to_verified, 0.5),
            "large_to_verified_s_p95": percentile(large_to_verified, 0.95),
            "ack_to_dashboard_s_p50": percentile(ack_to_dashboard, 0.5),
            "ack_to_dashboard_s_p95": percentile(ack_to_dashboard, 0.95),
        }
        if log is not None:
            log(json.dumps(result))
        return result
    finally:
        for sio in (judge_sio, terminal_sio):
            await sio.disconnect()
        for http in (judge, boss, kiosk):
            await http.close()


def _iso(monotonic_seconds: float) -> str:
    from datetime import UTC, datetime, timedelta

    return (datetime.now(UTC) - timedelta(seconds=time.monotonic() - monotonic_seconds)).isoformat()


async def _next(
    queue: asyncio.Queue[tuple[float, Any]], match: Any, within: float = 30
) -> tuple[float, Any]:
    deadline = time.monotonic() + within
    while True:
        at, value = await asyncio.wait_for(queue.get(), max(0.1, deadline - time.monotonic()))
        if match(value):
            return at, value


def _drain(queue: asyncio.Queue[Any]) -> None:
    while not queue.empty():
        queue.get_nowait()
