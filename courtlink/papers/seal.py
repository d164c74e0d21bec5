"""The court's seal on PDFs: PAdES signatures (pyHanko) with the court's key and certificate.

**What is signed.** Each issued PDF (orders, receipts, settlement agreements, payment
confirmations) carries one PAdES B-B signature (ETSI.CAdES.detached). It covers the whole file
except the signature value itself (the /ByteRange), so any changed byte breaks it. The signed
attributes include the SHA-256 digest of those bytes and the signing time. The signer is the
court certificate whose key id (``kid``, the first 16 hex digits of the SHA-256 of the
certificate) is named in the PDF's signature field and in the document's record. The PDF's
/Subject is ``courtlink:document:<id>``, tying the file to its record; the record keeps the
SHA-256 of the final file. A verifier therefore checks (1) the signature is intact and covers
the entire file, (2) the certificate is one of the court's (published at /api/keys), and, when
it can reach the records, (3) the record's hash equals the file's.

**Keys.** ``keys/court/<kid>.key.pem`` (0600) and ``<kid>.crt.pem``, made on first start;
``current`` names the one that signs. Rotation makes a new one; old certificates stay published
so older documents keep verifying.
"""

from __future__ import annotations

import asyncio
import datetime
import hashlib
import io
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from asn1crypto import pem
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign import fields, signers
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko_certvalidator import ValidationContext

from courtlink.errors import ConfigError

__all__ = ["CourtSeal", "SealReport", "load_certificates"]

SUBJECT_PREFIX = "courtlink:document:"


def _kid(cert_der: bytes) -> str:
    return hashlib.sha256(cert_der).hexdigest()[:16]


def load_certificates(pem_text: str) -> dict[str, bytes]:
    """{kid: DER} from PEM text holding one or more certificates."""
    found: dict[str, bytes] = {}
    for _, _, der in pem.unarmor(pem_text.encode(), multiple=True):
        found[_kid(der)] = der
    return found


@dataclass
class SealReport:
    """The result of checking a sealed PDF (the record is checked by the caller)."""

    signed: bool = False
    intact: bool = False
    covers_whole_file: bool = False
    trusted: bool = False
    kid: str | None = None
    signing_time: datetime.datetime | None = None
    document_id: str | None = None
    sha256: str = ""
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return (
            self.signed
            and self.intact
            and self.covers_whole_file
            and self.trusted
            and not self.problems
        )


class CourtSeal:
    def __init__(
        self, directory: Path | None, certificates: dict[str, bytes] | None = None
    ) -> None:
        self.directory = directory
        self.certificates: dict[str, bytes] = dict(certificates or {})  # kid -> DER
        self.current: str | None = None
        self.court = "人民法院"

    @classmethod
    def load_or_create(cls, directory: Path, court: str = "人民法院") -> CourtSeal:
        seal = cls(directory)
        seal.court = court
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        for crt in sorted(directory.glob("*.crt.pem")):
            seal.certificates.update(load_certificates(crt.read_text()))
        current = directory / "current"
        seal.current = current.read_text().strip() if current.exists() else None
        if (
            seal.current not in seal.certificates
            or not (directory / f"{seal.current}.key.pem").exists()
        ):
            seal.rotate()
        return seal

    def rotate(self) -> str:
        """A new signing key and self-issued certificate; the old ones stay for verifying."""
        if self.directory is None:
            raise ConfigError("this seal has no key directory")
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name(
            [
                x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, self.court),
                x509.NameAttribute(NameOID.COMMON_NAME, f"{self.court} 电子文书签章 (Courtlink)"),
            ]
        )
        now = datetime.datetime.now(datetime.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=True,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .sign(key, hashes.SHA256())
        )
        der = cert.public_bytes(serialization.Encoding.DER)
        kid = _kid(der)
        key_path = self.directory / f"{kid}.key.pem"
        fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(
                key.private_bytes(
                    serialization.Encoding.PEM,
                    serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption(),
                )
            )
        (self.directory / f"{kid}.crt.pem").write_bytes(
            cert.public_bytes(serialization.Encoding.PEM)
        )
        (self.directory / "current").write_text(kid + "\n")
        self.certificates[kid] = der
        self.current = kid
        return kid

    def public_pem(self) -> str:
        """Every court certificate, PEM, for /api/keys and offline verification."""
        return "".join(pem.armor("CERTIFICATE", der).decode() for der in self.certificates.values())

    def seal(self, pdf: bytes, *, reason: str = "人民法院电子文书") -> tuple[bytes, str]:
        """Sign ``pdf`` with the current key (synchronous; run it in a thread)."""
        if self.directory is None or self.current is None:
            raise ConfigError("this seal cannot sign (no private key)")
        kid = self.current
        signer = signers.SimpleSigner.load(
            str(self.directory / f"{kid}.key.pem"), str(self.directory / f"{kid}.crt.pem")
        )
        if signer is None:
            raise ConfigError(f"cannot load the court key {kid}")
        writer = IncrementalPdfFileWriter(io.BytesIO(pdf))
        meta = signers.PdfSignatureMetadata(
            field_name=f"CourtSeal-{kid}",
            md_algorithm="sha256",
            subfilter=fields.SigSeedSubFilter.PADES,
            reason=reason,
            location=self.court,
        )
        out = signers.sign_pdf(writer, meta, signer=signer)
        return out.getvalue(), kid

    async def averify(self, pdf: bytes) -> SealReport:
        """``verify`` from async code (pyHanko runs its own event loop, so in a thread)."""
        return await asyncio.to_thread(self.verify, pdf)

    def verify(self, pdf: bytes) -> SealReport:
        """Check the seal of ``pdf`` against the court's certificates (no network). Not from a
        running event loop: use ``averify`` there."""
        report = SealReport(sha256=hashlib.sha256(pdf).hexdigest())
        try:
            reader = PdfFileReader(io.BytesIO(pdf), strict=False)
        except Exception as exc:  # pyHanko raises many kinds of error on broken files
            report.problems.append(f"not a readable PDF ({type(exc).__name__})")
            return report
        try:
            subject = str(reader.trailer_view["/Info"].get("/Subject", ""))
        except Exception:
            subject = ""
        if subject.startswith(SUBJECT_PREFIX):
            report.document_id = subject[len(SUBJECT_PREFIX) :]
        sigs = reader.embedded_signatures
        if not sigs:
            report.problems.append("no signature in the file")
            return report
        report.signed = True
        sig = sigs[-1]
        match = re.match(r"CourtSeal-([0-9a-f]{16})$", sig.field_name or "")
        report.kid = match.group(1) if match else None
        roots = [asn1_x509.Certificate.load(der) for der in self.certificates.values()]
        try:
            status = validate_pdf_signature(
                sig, ValidationContext(trust_roots=roots, allow_fetching=False)
            )
        except Exception as exc:
            report.problems.append(f"signature cannot be validated ({type(exc).__name__})")
            return report
        report.intact = bool(status.intact and status.valid)
        report.trusted = bool(status.trusted)
        report.covers_whole_file = (
            status.coverage is not None and status.coverage.name == "ENTIRE_FILE"
        )
        report.signing_time = status.signer_reported_dt
        signer_der = status.signing_cert.dump() if status.signing_cert is not None else b""
        if signer_der and _kid(signer_der) != report.kid:
            report.problems.append("the signing certificate is not the one the seal names")
        if not report.intact:
            report.problems.append("the file was changed after it was sealed")
        elif not report.covers_whole_file:
            report.problems.append("the seal does not cover the whole file (something was added)")
        if not report.trusted:
            report.problems.append("not sealed with a certificate of this court")
        return report
