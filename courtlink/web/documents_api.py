"""The documents part of the HTTP API: orders, settlement, transcripts, payments, uploads,
inboxes, files,
receipts and the court's public keys. Each handler asks the Registry, which checks the rights.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
from typing import Any
from urllib.parse import quote

from aiohttp import web

from courtlink.court.documents.lifecycle import DocAction
from courtlink.court.policy import Principal
from courtlink.errors import Conflict, InvalidInput, NotFound
from courtlink.papers import inspect_upload
from courtlink.web.auth import account_principal, any_principal
from courtlink.web.keys import FILES, KEYRING, REGISTRY, SEAL, SETTINGS
from courtlink.web.openapi import Api
from courtlink.web.schemas import (
    DocumentOut,
    InboxEntryOut,
    InboxItemOut,
    KeysOut,
    OfficerIn,
    OrderIn,
    PaymentIn,
    ReceivedIn,
    SettlementIn,
    ShareIn,
    SignIn,
    TranscriptIn,
    TranscriptTextIn,
    document_out,
    inbox_entry_out,
    item_out,
)

__all__ = ["add_document_routes"]


def _png(value: str | None) -> bytes | None:
    if value is None:
        return None
    raw = value.split(",", 1)[1] if value.startswith("data:") else value
    try:
        data = base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInput("signature: not base64") from None
    inspect_upload(data, "image/png", 512 * 1024)
    return data


async def _principal(request: web.Request) -> Principal:
    return await any_principal(request)


# Orders ---------------------------------------------------------------------------------------


async def list_documents(request: web.Request, _body: None) -> list[DocumentOut]:
    principal = await account_principal(request)
    case_id = request.query.get("case_id")
    docs = await request.app[REGISTRY].documents(principal, [case_id] if case_id else None)
    return [document_out(d) for d in docs]


async def draft_order(request: web.Request, body: OrderIn) -> DocumentOut:
    principal = await account_principal(request)
    document = await request.app[REGISTRY].draft_order(
        principal,
        kind=body.kind,
        detention_id=body.detention_id,
        reason=body.reason,
        days=body.days,
    )
    return document_out(document)


async def get_document(request: web.Request, _body: None) -> DocumentOut:
    document = await request.app[REGISTRY].read(
        await _principal(request), request.match_info["document_id"]
    )
    return document_out(document)


async def approve(request: web.Request, _body: None) -> DocumentOut:
    principal = await account_principal(request)
    return document_out(
        await request.app[REGISTRY].approve(principal, request.match_info["document_id"])
    )


async def issue(request: web.Request, _body: None) -> DocumentOut:
    principal = await account_principal(request)
    return document_out(
        await request.app[REGISTRY].issue(principal, request.match_info["document_id"])
    )


def _officer_step(action: DocAction) -> Any:
    async def handler(request: web.Request, body: OfficerIn) -> DocumentOut:
        document = await request.app[REGISTRY].officer_step(
            await _principal(request),
            request.match_info["document_id"],
            action,
            officer=body.officer,
            pin=body.pin,
            reason=body.reason,
            signature_png=_png(body.signature),
            at=body.executed_at,
        )
        return document_out(document)

    handler.__name__ = f"{action}_document"
    return handler


# Settlement, payments, uploads ------------------------------------------------------------------


async def draft_settlement(request: web.Request, body: SettlementIn) -> DocumentOut:
    principal = await account_principal(request)
    document = await request.app[REGISTRY].draft_settlement(
        principal, case_id=body.case_id, terms=body.terms, amount_fen=body.amount_fen, due=body.due
    )
    return document_out(document)


async def draft_transcript(request: web.Request, body: TranscriptIn) -> DocumentOut:
    principal = await account_principal(request)
    document = await request.app[REGISTRY].draft_transcript(
        principal, session_id=body.session_id, text=body.text
    )
    return document_out(document)


async def save_transcript(request: web.Request, body: TranscriptTextIn) -> DocumentOut:
    # Any principal: a party who tries is told it may not (403), not that it is nobody (401).
    principal = await _principal(request)
    document = await request.app[REGISTRY].save_transcript(
        principal, request.match_info["document_id"], body.text
    )
    return document_out(document)


async def sign(request: web.Request, body: SignIn) -> DocumentOut:
    png = _png(body.signature)
    assert png is not None
    document = await request.app[REGISTRY].sign(
        await _principal(request),
        request.match_info["document_id"],
        png,
        officer=body.officer,
        pin=body.pin,
        version=body.version,
    )
    return document_out(document)


async def confirm(request: web.Request, _body: None) -> DocumentOut:
    principal = await account_principal(request)
    return document_out(
        await request.app[REGISTRY].confirm(principal, request.match_info["document_id"])
    )


async def confirm_payment(request: web.Request, body: PaymentIn) -> DocumentOut:
    document = await request.app[REGISTRY].confirm_payment(
        await _principal(request),
        case_id=request.match_info["case_id"],
        amount_fen=body.amount_fen,
        note=body.note,
    )
    return document_out(document)


async def upload(request: web.Request, _body: None) -> DocumentOut:
    """multipart/form-data with one part named ``file``."""
    principal = await _principal(request)
    limit = request.app[SETTINGS].documents.max_upload_mb * 1024 * 1024
    if request.content_type != "multipart/form-data":
        raise InvalidInput("send the file as multipart/form-data, field 'file'")
    if request.content_length is not None and request.content_length > limit + 64 * 1024:
        raise InvalidInput(f"the file is larger than {limit // (1024 * 1024)} MB", code="too_large")
    reader = await request.multipart()
    part = await reader.next()
    if part is None or getattr(part, "name", None) != "file":
        raise InvalidInput("the form needs a part named 'file'")
    chunks, size = [], 0
    while chunk := await part.read_chunk(256 * 1024):  # type: ignore[union-attr]
        size += len(chunk)
        if size > limit:
            raise InvalidInput(
                f"the file is larger than {limit // (1024 * 1024)} MB", code="too_large"
            )
        chunks.append(chunk)
    data = b"".join(chunks)
    declared = part.headers.get("Content-Type", "")
    media_type = await _inspect(data, declared, limit)
    document = await request.app[REGISTRY].upload(
        principal,
        case_id=request.match_info["case_id"],
        data=data,
        media_type=media_type,
        file_name=getattr(part, "filename", None) or "upload",
    )
    return document_out(document)


async def _inspect(data: bytes, declared: str, limit: int) -> str:
    return await asyncio.to_thread(inspect_upload, data, declared, limit)


async def share(request: web.Request, body: ShareIn) -> list[InboxItemOut]:
    principal = await account_principal(request)
    items = await request.app[REGISTRY].share(
        principal, request.match_info["document_id"], body.recipients
    )
    return [item_out(i) for i in items]


# Inbox and files ----------------------------------------------------------------------------------


async def inbox(request: web.Request, _body: None) -> list[InboxEntryOut]:
    entries = await request.app[REGISTRY].inbox(await _principal(request))
    return [inbox_entry_out(item, doc) for item, doc in entries]


async def received(request: web.Request, body: ReceivedIn) -> InboxItemOut:
    item = await request.app[REGISTRY].received(
        await _principal(request), request.match_info["item_id"], body.sha256
    )
    return item_out(item)


async def document_file(request: web.Request, _body: None) -> web.StreamResponse:
    """The file, with ranges (resumable) and its SHA-256 in a header. The ETag is aiohttp's
    (modification time and size), which its conditional requests compare against."""
    principal = await _principal(request)
    document = await request.app[REGISTRY].read(principal, request.match_info["document_id"])
    if document.sha256 is None:
        raise Conflict("this document has no file yet")
    path = request.app[FILES].path(document.id)
    if not await asyncio.to_thread(path.is_file):
        raise NotFound("the document's file is missing")
    # FileResponse answers Range and If-Range requests (206) from the file on disk.
    response = web.FileResponse(path, chunk_size=256 * 1024)
    response.headers["Content-Type"] = document.media_type
    response.headers["X-Content-SHA256"] = document.sha256
    response.headers["Content-Disposition"] = (
        f"inline; filename*=UTF-8''{_quote(document.file_name or document.id)}"
    )
    response.headers["Cache-Control"] = "private, no-store"
    return response


def _quote(name: str) -> str:
    return quote(name, safe="")


async def keys(request: web.Request, _body: None) -> KeysOut:
    seal = request.app[SEAL]
    return KeysOut(
        court_certificates_pem=seal.public_pem(),
        current=seal.current,
        audit_keys=request.app[KEYRING].public_keys(),
    )


def add_document_routes(api: Api) -> None:
    add = api.add
    tag = "documents"
    add(
        "GET",
        "/api/documents",
        list_documents,
        summary="Documents (court staff; ?case_id=)",
        response=list[DocumentOut],
        tag=tag,
    )
    add(
        "POST",
        "/api/documents/orders",
        draft_order,
        summary="Draft a renewal or early-release order (the case's judge)",
        body=OrderIn,
        response=DocumentOut,
        status=201,
        tag=tag,
    )
    add(
        "GET",
        "/api/documents/{document_id}",
        get_document,
        summary="One document and its steps",
        response=DocumentOut,
        auth="any",
        tag=tag,
    )
    add(
        "POST",
        "/api/documents/{document_id}/approve",
        approve,
        summary="Approve an order (院长批准; approvers)",
        response=DocumentOut,
        tag=tag,
    )
    add(
        "POST",
        "/api/documents/{document_id}/issue",
        issue,
        summary="Render, seal and deliver an approved order (the case's judge)",
        response=DocumentOut,
        tag=tag,
    )
    for action in (DocAction.ACKNOWLEDGE, DocAction.SERVE, DocAction.EXECUTE, DocAction.REFUSE):
        add(
            "POST",
            f"/api/documents/{{document_id}}/{action}",
            _officer_step(action),
            summary=f"{action.capitalize()} an order (an officer, with their PIN)",
            body=OfficerIn,
            response=DocumentOut,
            auth="any",
            tag=tag,
        )
    add(
        "POST",
        "/api/documents/settlements",
        draft_settlement,
        summary="Draft a settlement agreement (the case's judge)",
        body=SettlementIn,
        response=DocumentOut,
        status=201,
        tag=tag,
    )
    add(
        "POST",
        "/api/documents/transcripts",
        draft_transcript,
        summary="Start a session's transcript (笔录; a clerk or the case's judge)",
        body=TranscriptIn,
        response=DocumentOut,
        status=201,
        tag=tag,
    )
    add(
        "PUT",
        "/api/documents/{document_id}/transcript",
        save_transcript,
        summary="Save a transcript's text (a clerk or the case's judge; until the first signature)",
        body=TranscriptTextIn,
        response=DocumentOut,
        auth="any",
        tag=tag,
    )
    add(
        "POST",
        "/api/documents/{document_id}/sign",
        sign,
        summary="Sign a settlement agreement or a transcript (debtor, creditor)",
        body=SignIn,
        response=DocumentOut,
        auth="any",
        tag=tag,
    )
    add(
        "POST",
        "/api/documents/{document_id}/confirm",
        confirm,
        summary="Confirm a signed settlement or transcript (the case's judge)",
        response=DocumentOut,
        tag=tag,
    )
    add(
        "POST",
        "/api/documents/{document_id}/share",
        share,
        summary="Send a document to more inboxes (the case's judge)",
        body=ShareIn,
        response=list[InboxItemOut],
        tag=tag,
    )
    add(
        "POST",
        "/api/cases/{case_id}/payments",
        confirm_payment,
        summary="Confirm a payment received (the creditor)",
        body=PaymentIn,
        response=DocumentOut,
        status=201,
        auth="any",
        tag=tag,
    )
    add(
        "POST",
        "/api/cases/{case_id}/uploads",
        upload,
        summary="Upload a PDF, PNG or JPEG (multipart, field 'file')",
        response=DocumentOut,
        status=201,
        auth="any",
        tag=tag,
    )
    add(
        "GET",
        "/api/inbox",
        inbox,
        summary="This principal's inbox",
        response=list[InboxEntryOut],
        auth="any",
        tag=tag,
    )
    add(
        "POST",
        "/api/inbox/{item_id}/received",
        received,
        summary="The file arrived and its SHA-256 is this",
        body=ReceivedIn,
        response=InboxItemOut,
        auth="any",
        tag=tag,
    )
    add(
        "GET",
        "/api/keys",
        keys,
        summary="The court's seal certificates and the audit keys (public)",
        response=KeysOut,
        auth="none",
        tag=tag,
    )
    add(
        "GET",
        "/api/documents/{document_id}/file",
        document_file,
        summary="The file; Range requests resume a download; X-Content-SHA256: its SHA-256",
        auth="any",
        tag=tag,
    )
