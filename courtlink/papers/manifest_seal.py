"""The court's seal on files that are not PDFs: a detached CMS (PKCS#7, DER) signature.

A recording's ``manifest.json`` and an exported archive's ``archive.json`` are sealed this way:
``manifest.p7s`` (``archive.p7s``) is a CMS SignedData without the content, signed by the same
key and certificate as the PDFs (papers/seal.py's ``CourtSeal``), ECDSA P-256 over SHA-256 with
signed attributes (content type, signing time, the message digest), and the certificate inside.
Any tool that reads CMS checks it, e.g. ``openssl cms -verify -binary -inform DER -in
manifest.p7s -content manifest.json -CAfile court.pem -purpose any``.

Signing uses ``cryptography``'s PKCS#7 builder; checking uses pyHanko's CMS validation (the
same validator as the PDFs' seals) with the court's certificates as the only trust roots and no
network fetching. Nothing here is home-made cryptography.
"""

from __future__ import annotations

from pathlib import Path

from asn1crypto import cms
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs7
from pyhanko.sign.validation.generic_cms import async_validate_detached_cms
from pyhanko_certvalidator import ValidationContext

from courtlink.court.recordings import SignatureCheck
from courtlink.errors import ConfigError
from courtlink.papers.files import write_durably
from courtlink.papers.seal import CourtSeal, _kid

__all__ = ["CmsSeal"]


class CmsSeal:
    """Detached CMS signatures by the court's seal (``court.recordings.Sealer``).

    Built on a ``CourtSeal``: with its key directory it signs and checks; built on certificates
    alone (``CourtSeal(None, certificates)``, offline) it only checks.
    """

    def __init__(self, seal: CourtSeal) -> None:
        self.seal = seal

    def sign(self, data: bytes) -> tuple[bytes, str]:
        """(DER signature of ``data``, key id) by the current key."""
        seal = self.seal
        if seal.directory is None or seal.current is None:
            raise ConfigError("this seal cannot sign (no private key)")
        kid = seal.current
        key = serialization.load_pem_private_key(
            (seal.directory / f"{kid}.key.pem").read_bytes(), password=None
        )
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ConfigError(f"the court key {kid} is not an EC key")
        cert = x509.load_der_x509_certificate(seal.certificates[kid])
        signature = (
            pkcs7.PKCS7SignatureBuilder()
            .set_data(data)
            .add_signer(cert, key, hashes.SHA256())
            .sign(
                serialization.Encoding.DER,
                [pkcs7.PKCS7Options.DetachedSignature, pkcs7.PKCS7Options.Binary],
            )
        )
        return signature, kid

    async def sign_to(self, data: bytes, path: Path) -> str:
        """Sign ``data`` and write the signature durably to ``path``; the key id."""
        signature, kid = self.sign(data)
        write_durably(path, signature, mode=0o644)
        return kid

    async def check(self, data: bytes, signature: bytes) -> SignatureCheck:
        """Is ``signature`` a valid detached signature of exactly ``data`` by one of the court's
        certificates? The problem is worded for people ("signature does not match")."""
        try:
            info = cms.ContentInfo.load(signature)
            if info["content_type"].native != "signed_data":
                return SignatureCheck(problem="not a CMS signature")
            signed_data = info["content"]
            signed_data.native  # noqa: B018 - parse it all now, so a broken file fails here
        except Exception:  # asn1crypto raises many kinds of error on broken input
            return SignatureCheck(problem="not a CMS signature")
        roots = [asn1_x509.Certificate.load(der) for der in self.seal.certificates.values()]
        try:
            status = await async_validate_detached_cms(
                data,
                signed_data,
                signer_validation_context=ValidationContext(
                    trust_roots=roots, allow_fetching=False
                ),
            )
        except Exception as exc:
            return SignatureCheck(problem=f"signature cannot be checked ({type(exc).__name__})")
        signer = status.signing_cert
        kid = _kid(signer.dump()) if signer is not None else None
        when = status.signer_reported_dt
        if not (status.intact and status.valid):
            return SignatureCheck(kid=kid, signed_at=when, problem="signature does not match")
        if not status.trusted or kid not in self.seal.certificates:
            return SignatureCheck(
                kid=kid, signed_at=when, problem="not signed with a certificate of this court"
            )
        return SignatureCheck(kid=kid, signed_at=when)
