"""Delivery that survives the real world: a terminal that was offline, a download broken half
way, a server killed (SIGKILL) in the middle of transfers, a forged copy, an edited record, and
the court's seal key rotated.
"""

from __future__ import annotations

import asyncio
import io
import secrets
import socket
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from pyhanko.pdf_utils.reader import PdfFileReader
from sqlalchemy import text

from courtlink.court.hashing import SecretHasher
from courtlink.papers.seal import CourtSeal, load_certificates
from courtlink.web.keys import SEAL, SETTINGS
from courtlink.web.services import Services, open_services
from tests.conftest import LiveServer, make_settings
from tests.helpers import PASSWORD, World, build_world
from tests.web.documents_support import (
    Clients,
    Desk,
    Listener,
    Served,
    audit_events,
    call,
    courtlink,
    download,
    env_for,
    noise_png,
    open_desk,
    parse_html_result,
    sha256,
)


@pytest.fixture
async def desk(server: LiveServer, services: Services, world: World, clients: Clients) -> Desk:
    return await open_desk(server, services, world, clients)


async def issued_order(desk: Desk, kind: str = "renewal") -> dict[str, Any]:
    order = await desk.draft(kind, days=7)
    await desk.approve(order["id"])
    return await desk.issue(order["id"])  # type: ignore[no-any-return]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# (a) Offline terminals, and the push to connected ones ----------------------------------------


async def test_offline_terminal_gets_its_inbox_and_online_one_a_push(
    server: LiveServer, desk: Desk
) -> None:
    # Issued while the terminal has no connection at all.
    first = await issued_order(desk)
    terminal = Listener()
    far = Listener()
    far_client, far_id = await desk.new_terminal("南京终端", "南京市拘留所")
    try:
        await terminal.connect(server.url, auth={"terminal": desk.credential})
        welcome = terminal.of("welcome")[0]
        assert welcome["principal"]["kind"] == "terminal"
        inbox = await call(desk.terminal, "GET", "/api/inbox")
        assert [e["document"]["id"] for e in inbox] == [first["id"]]
        assert inbox[0]["document"]["sha256"] == first["sha256"]
        assert inbox[0]["item"]["fetched_at"] is None
        await far.connect(server.url, auth={"terminal": desk.extra[f"credential:{far_id}"]})

        # Now connected: the next order is pushed at once.
        second = await desk.draft("release")
        await desk.approve(second["id"])
        sent = time.perf_counter()
        issued = await desk.issue(second["id"])
        answered = time.perf_counter()
        at, message = await terminal.wait_for(
            "inbox.item", lambda m: m["document"]["id"] == second["id"]
        )
        print(
            f"issue request {1000 * (answered - sent):.0f} ms (render, seal, store); "
            f"inbox.item pushed {1000 * (at - sent):.0f} ms after the request, "
            f"{1000 * (at - answered):+.0f} ms relative to its answer"
        )
        assert at - answered < 1.0
        assert message["item"]["recipient"] == f"terminal:{desk.terminal_id}"
        assert message["document"]["state"] == "issued"
        assert message["document"]["sha256"] == issued["sha256"]
        assert message["document"]["kind"] == "release"
        # Reading the inbox after the push agrees with it; the other center heard nothing.
        inbox = await call(desk.terminal, "GET", "/api/inbox")
        assert {e["document"]["id"] for e in inbox} == {first["id"], second["id"]}
        assert far.of("inbox.item") == []
        assert await call(far_client, "GET", "/api/inbox") == []
        # Steps on a document the terminal holds reach it as document.updated.
        await desk.receive(second["id"])
        _, updated = await terminal.wait_for(
            "document.updated",
            lambda m: m["id"] == second["id"] and m["state"] == "delivered",
        )
        assert updated["steps"][-1]["action"] == "deliver"
    finally:
        await terminal.close()
        await far.close()


async def test_two_terminals_of_the_center_receive_at_once(server: LiveServer, desk: Desk) -> None:
    """Every terminal of the center gets the order and fetches it the moment it arrives: both
    say "received" together. One delivery, one receipt, and the rows still agree with the
    audit chain."""
    second, second_id = await desk.new_terminal("二号终端")
    order = await issued_order(desk)
    entries = [await desk.item_of(c, order["id"]) for c in (desk.terminal, second)]
    assert {e["item"]["recipient"] for e in entries} == {
        f"terminal:{desk.terminal_id}",
        f"terminal:{second_id}",
    }
    answers = await asyncio.gather(
        *(
            call(
                client,
                "POST",
                f"/api/inbox/{entry['item']['id']}/received",
                json={"sha256": order["sha256"]},
            )
            for client, entry in zip((desk.terminal, second), entries, strict=True)
        )
    )
    assert all(a["fetched_at"] for a in answers)
    document = await desk.document(order["id"])
    assert document["state"] == "delivered"
    assert [s["action"] for s in document["steps"]].count("deliver") == 1
    receipts = [d for d in await desk.case_documents() if d["parent_id"] == order["id"]]
    assert len(receipts) == 1
    kinds = [e.kind for e in await audit_events(desk.services, order["id"])]
    assert kinds.count("document.fetched") == 2
    assert kinds.count("document.delivered") == 1
    assert await desk.services.registry.reconcile() == []
    assert (await desk.services.auditor.verify()).ok


# (b) A broken download resumed ---------------------------------------------------------------


async def test_five_megabytes_resumed_after_a_broken_download(
    server: LiveServer, desk: Desk
) -> None:
    data = noise_png(5 * 1024 * 1024)
    form = aiohttp.FormData()
    form.add_field("file", data, filename="scan.png", content_type="image/png")
    started = time.perf_counter()
    upload = await call(
        desk.judge,
        "POST",
        f"/api/cases/{desk.world.case.id}/uploads",
        data=form,
        csrf=desk.judge_csrf,
        status=201,
    )
    print(f"uploaded {len(data)} bytes in {time.perf_counter() - started:.2f} s")
    assert upload["sha256"] == sha256(data)
    items = await call(
        desk.judge,
        "POST",
        f"/api/documents/{upload['id']}/share",
        json={"recipients": [f"terminal:{desk.terminal_id}"]},
        csrf=desk.judge_csrf,
    )
    [item] = items

    # The first ~2 MB, then the connection breaks.
    cut = 2 * 1024 * 1024 + 12_345
    async with desk.terminal.get(f"/api/documents/{upload['id']}/file") as r:
        assert r.status == 200
        assert int(r.headers["Content-Length"]) == len(data)
        first = await r.content.readexactly(cut)
        r.close()  # drop the connection mid-body
    started = time.perf_counter()
    status, rest, headers = await download(desk.terminal, upload["id"], range_=f"bytes={cut}-")
    print(f"resumed at {cut} bytes: {len(rest)} more in {time.perf_counter() - started:.2f} s")
    assert status == 206
    assert headers["Content-Range"] == f"bytes {cut}-{len(data) - 1}/{len(data)}"
    assert int(headers["Content-Length"]) == len(data) - cut
    whole = first + rest
    assert len(whole) == len(data)
    assert sha256(whole) == headers["X-Content-SHA256"] == upload["sha256"]
    received = await call(
        desk.terminal,
        "POST",
        f"/api/inbox/{item['id']}/received",
        json={"sha256": sha256(whole)},
    )
    assert received["fetched_at"] is not None
    kinds = [e.kind for e in await audit_events(desk.services, upload["id"])]
    assert kinds == ["document.uploaded", "document.shared", "document.fetched"]


# (c) SIGKILL during transfers ------------------------------------------------------------------


async def _slow_upload(
    port: int, cookie: str, csrf: str, case_id: str, data: bytes, halfway: asyncio.Event
) -> int:
    """POST a multipart upload slowly over a raw connection; returns the bytes sent before the
    server went away."""
    boundary = "courtlink" + secrets.token_hex(8)
    head = (
        f"--{boundary}\r\n"
        'Content-Disposition: form-data; name="file"; filename="big.png"\r\n'
        "Content-Type: image/png\r\n\r\n"
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    request = (
        f"POST /api/cases/{case_id}/uploads HTTP/1.1\r\n"
        f"Host: 127.0.0.1:{port}\r\n"
        f"Cookie: cl_session={cookie}\r\n"
        f"X-CSRF-Token: {csrf}\r\n"
        f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
        f"Content-Length: {len(head) + len(data) + len(tail)}\r\n\r\n"
    ).encode()
    sent = 0
    try:
        writer.write(request + head)
        step = 256 * 1024
        for offset in range(0, len(data), step):
            writer.write(data[offset : offset + step])
            await writer.drain()
            sent += len(data[offset : offset + step])
            if sent >= 5 * 1024 * 1024:
                halfway.set()
            await asyncio.sleep(0.05)
        writer.write(tail)
        await writer.drain()
        await reader.read()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()
    return sent


async def test_sigkill_during_transfers_loses_nothing(
    tmp_path: Path, fast_hasher: SecretHasher
) -> None:
    data_dir, port = tmp_path / "var", free_port()
    env = env_for(data_dir, port)
    # The world is made on the server's data directory before it starts (in-process, with the
    # quick hasher: the CLI's `demo` hashes four secrets with full Argon2 costs, 10 s and more
    # on a busy machine, and test_cli already covers it).
    async with open_services(make_settings(data_dir), hasher=fast_hasher) as services:
        world = await build_world(services)
        _, credential = await services.gate.add_terminal(None, name="T1", center="盐城市拘留所")
    served = Served(data_dir, port, tmp_path / "serve.log")
    print(f"server up in {await served.start():.2f} s")
    try:
        async with (
            aiohttp.ClientSession(served.url, cookie_jar=aiohttp.CookieJar(unsafe=True)) as judge,
            aiohttp.ClientSession(
                served.url, cookie_jar=aiohttp.CookieJar(unsafe=True)
            ) as approver,
        ):
            csrf = (
                await call(
                    judge,
                    "POST",
                    "/api/login",
                    json={"username": "judge", "password": PASSWORD},
                )
            )["csrf"]
            approver_csrf = (
                await call(
                    approver,
                    "POST",
                    "/api/login",
                    json={"username": "approver", "password": PASSWORD},
                )
            )["csrf"]
            case_id = world.case.id
            order = await call(
                judge,
                "POST",
                "/api/documents/orders",
                json={
                    "kind": "renewal",
                    "detention_id": world.detention.id,
                    "reason": "拒不履行",
                    "days": 5,
                },
                csrf=csrf,
                status=201,
            )
            await call(
                approver, "POST", f"/api/documents/{order['id']}/approve", csrf=approver_csrf
            )
            order = await call(judge, "POST", f"/api/documents/{order['id']}/issue", csrf=csrf)
            cookie = next(c.value for c in judge.cookie_jar if c.key == "cl_session")
            before = await call(judge, "GET", f"/api/documents?case_id={case_id}")

            # A 15 MB upload streams slowly; when 5 MB are in, a download of the order starts;
            # with both under way the server is killed.
            big = noise_png(15 * 1024 * 1024, seed=3)
            halfway = asyncio.Event()
            uploading = asyncio.create_task(_slow_upload(port, cookie, csrf, case_id, big, halfway))
            await asyncio.wait_for(halfway.wait(), 60)
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(
                (
                    f"GET /api/documents/{order['id']}/file HTTP/1.1\r\n"
                    f"Host: 127.0.0.1:{port}\r\nCookie: cl_terminal={credential}\r\n\r\n"
                ).encode()
            )
            head = await reader.readuntil(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 200"), head
            got = await reader.readexactly(100_000)
            await served.kill()
            writer.close()
            sent = await asyncio.wait_for(uploading, 30)
            print(f"killed with {sent} of {len(big)} upload bytes sent, {len(got)} downloaded")
            assert 5 * 1024 * 1024 <= sent < len(big)

        # A crash inside FileStore.put would leave a temporary file like this one behind.
        orphan = data_dir / "documents" / "zz" / ".zzcrashed.tmp"
        orphan.parent.mkdir(parents=True, exist_ok=True)
        orphan.write_bytes(big[:1000])
        print(f"restarted in {await served.start():.2f} s")

        async with (
            aiohttp.ClientSession(served.url, cookie_jar=aiohttp.CookieJar(unsafe=True)) as judge,
            aiohttp.ClientSession(
                served.url, cookie_jar=aiohttp.CookieJar(unsafe=True)
            ) as terminal,
        ):
            csrf = (
                await call(
                    judge,
                    "POST",
                    "/api/login",
                    json={"username": "judge", "password": PASSWORD},
                )
            )["csrf"]
            after = await call(judge, "GET", f"/api/documents?case_id={case_id}")
            assert after == before
            assert not [d for d in after if d["kind"] == "upload"]
            leftovers = list((data_dir / "documents").rglob("*.tmp"))
            assert leftovers == []
            on_disk = {p.name for p in (data_dir / "documents").rglob("*") if p.is_file()}
            assert on_disk == {d["id"] for d in after if d["sha256"]}

            # The download resumes where it broke, after the restart, and is the same file.
            async with terminal.get(f"/t/{credential}", allow_redirects=False) as r:
                assert r.status == 303
            status, rest, headers = await download(
                terminal, order["id"], range_=f"bytes={len(got)}-"
            )
            assert status == 206
            assert headers["Content-Range"] == (
                f"bytes {len(got)}-{order['size'] - 1}/{order['size']}"
            )
            assert sha256(got + rest) == order["sha256"] == headers["X-Content-SHA256"]
            [entry] = await call(terminal, "GET", "/api/inbox")
            await call(
                terminal,
                "POST",
                f"/api/inbox/{entry['item']['id']}/received",
                json={"sha256": sha256(got + rest)},
            )
            delivered = await call(judge, "GET", f"/api/documents/{order['id']}")
            assert delivered["state"] == "delivered"
            assert delivered["sha256"] == order["sha256"]
            # And the upload, sent again whole, is accepted.
            form = aiohttp.FormData()
            form.add_field("file", big, filename="big.png", content_type="image/png")
            again = await call(
                judge, "POST", f"/api/cases/{case_id}/uploads", data=form, csrf=csrf, status=201
            )
            assert again["sha256"] == sha256(big)
        started = time.perf_counter()
        audit = await courtlink("audit", "verify", env=env)
        print(f"{audit.out.strip()} ({time.perf_counter() - started:.2f} s)")
        assert audit.status == 0, audit.out + audit.err
        assert "Traceback" not in (tmp_path / "serve.log").read_text()
    finally:
        await served.stop()


# (d) A forged copy ---------------------------------------------------------------------------


def _flip_inside_the_seal(pdf: bytes) -> bytes:
    """One byte changed inside what the signature covers (not in the signature value)."""
    reader = PdfFileReader(io.BytesIO(pdf))
    start, length, *_ = reader.embedded_signatures[-1].byte_range
    at = start + length // 2
    flipped = bytearray(pdf)
    flipped[at] ^= 0x01
    return bytes(flipped)


async def test_a_flipped_byte_is_detected_three_ways(
    server: LiveServer, desk: Desk, tmp_path: Path
) -> None:
    order = await issued_order(desk, "release")
    genuine = await desk.file(order["id"])
    forged = _flip_inside_the_seal(genuine)
    assert len(forged) == len(genuine)
    (tmp_path / "genuine.pdf").write_bytes(genuine)
    (tmp_path / "forged.pdf").write_bytes(forged)
    keys = await call(desk.clients(), "GET", "/api/keys")  # public: no login
    assert keys["current"] == order["signed_by"]
    (tmp_path / "certs.pem").write_text(keys["court_certificates_pem"])
    env = env_for(server.app[SETTINGS].data_dir)

    (tmp_path / "not-a-pem.txt").write_text("these are not certificates")
    started = time.perf_counter()
    online_ok, online_bad, offline_ok, offline_bad, bad_certs = await asyncio.gather(
        courtlink("verify", str(tmp_path / "genuine.pdf"), env=env),
        courtlink("verify", str(tmp_path / "forged.pdf"), env=env),
        courtlink(
            "verify", str(tmp_path / "genuine.pdf"), "--certs", str(tmp_path / "certs.pem"), env=env
        ),
        courtlink(
            "verify", str(tmp_path / "forged.pdf"), "--certs", str(tmp_path / "certs.pem"), env=env
        ),
        courtlink(
            "verify",
            str(tmp_path / "genuine.pdf"),
            "--certs",
            str(tmp_path / "not-a-pem.txt"),
            env=env,
        ),
    )
    print(f"five `courtlink verify` runs: {time.perf_counter() - started:.2f} s")
    for ok in (online_ok, offline_ok):
        assert ok.status == 0, ok.out + ok.err
        assert ok.out.startswith("genuine: "), ok.out
        assert order["signed_by"] in ok.out
    assert order["number"] in online_ok.out
    for bad in (online_bad, offline_bad):
        assert bad.status == 1, bad.out + bad.err
        assert bad.out.startswith("NOT GENUINE"), bad.out
        assert "changed after it was sealed" in bad.out
        assert "Traceback" not in bad.out + bad.err
    # With the records at hand the copy is also compared with the one issued.
    assert "differs from the one recorded" in online_bad.out
    # A certificates file that is not PEM: one line on stderr, no traceback.
    assert bad_certs.status == 1
    assert bad_certs.err.strip().startswith("courtlink: error: ")
    assert "no PEM certificates" in bad_certs.err
    assert "Traceback" not in bad_certs.err

    for pdf, result in ((genuine, "ok"), (forged, "failed")):
        form = aiohttp.FormData()
        form.add_field("file", pdf, filename="copy.pdf", content_type="application/pdf")
        async with desk.clients().post(f"/verify/{order['id']}?lang=en", data=form) as r:
            assert r.status == 200
            page = await r.text()
        verdict, words = parse_html_result(page)
        assert verdict == result, words
        if result == "ok":
            assert "Genuine" in words
        else:
            assert "Not genuine" in words
            assert "changed after it was sealed" in words


# (e) An edited record; the seal key rotated ----------------------------------------------------


async def test_edited_rows_are_named_and_rotation_keeps_old_documents_valid(
    server: LiveServer, desk: Desk, tmp_path: Path
) -> None:
    services, seal = desk.services, server.app[SEAL]
    old_kid = seal.current
    first = await issued_order(desk)
    assert first["signed_by"] == old_kid

    new_kid = seal.rotate()
    assert new_kid != old_kid
    second = await issued_order(desk, "release")
    assert second["signed_by"] == new_kid
    for order, kid in ((first, old_kid), (second, new_kid)):
        report = await seal.averify(await desk.file(order["id"]))
        assert report.ok, report.problems
        assert report.kid == kid
    keys = await call(desk.clients(), "GET", "/api/keys")
    published = load_certificates(keys["court_certificates_pem"])
    assert set(published) == {old_kid, new_kid}
    assert keys["current"] == new_kid
    # Offline, with only the published certificates, both still verify.
    offline = CourtSeal(None, published)
    for order in (first, second):
        assert (await offline.averify(await desk.file(order["id"]))).ok
    # The public page of the older document still vouches for the court's copy.
    async with desk.clients().get(f"/verify/{first['id']}") as r:
        assert r.status == 200
        assert 'id="stored-check"' in (page := await r.text())
    assert "fails the check" not in page
    # A restart loads both keys and signs with the new one.
    reloaded = CourtSeal.load_or_create(seal.directory)  # type: ignore[arg-type]
    assert reloaded.current == new_kid
    assert set(reloaded.certificates) == {old_kid, new_kid}

    # Edit rows behind the application's back: the state of one, the file hash of the other.
    assert await services.registry.reconcile() == []
    async with services.store.write() as tx:
        await tx.conn.execute(
            text("UPDATE documents SET state = 'executed' WHERE id = :id"), {"id": first["id"]}
        )
        await tx.conn.execute(
            text("UPDATE documents SET sha256 = :h WHERE id = :id"),
            {"h": sha256(b"another file"), "id": second["id"]},
        )
    problems = dict(await services.registry.reconcile())
    assert set(problems) == {first["id"], second["id"]}
    assert "state executed, chain says issued" in problems[first["id"]]
    assert "file hash differs" in problems[second["id"]]
    result = await courtlink("audit", "verify", env=env_for(server.app[SETTINGS].data_dir))
    print(result.out.strip())
    assert result.status == 1, result.out + result.err
    assert f"document {first['id']}: state executed, chain says issued" in result.out
    assert f"document {second['id']}: file hash differs" in result.out
    assert "Traceback" not in result.out + result.err
    # The chain itself is intact: it is the rows that were edited.
    assert (await services.auditor.verify()).ok
    assert len(await audit_events(services, first["id"])) >= 3
