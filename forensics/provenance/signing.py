"""Make signed Content Credentials, for tests, samples and checking a pipeline end to end.

:func:`throwaway_credentials` makes a short-lived ES256 certificate chain (a root and a
signing certificate with the extensions C2PA requires) in memory with ``cryptography``;
:func:`sign_image` embeds a manifest declaring how an image was made. Files signed this way
validate (``valid``) but are not ``trusted``: the root is on no trust list.
"""

from __future__ import annotations

import datetime as dt
import io
from dataclasses import dataclass

from forensics.provenance.metadata import IPTC_DST


@dataclass(frozen=True)
class Credentials:
    """A PEM certificate chain (signing certificate first) and its PEM private key."""

    chain: bytes
    key: bytes


def throwaway_credentials(
    signer: str = "forensics test signer", org: str = "forensics", days: int = 3650
) -> Credentials:
    """A fresh root and signing certificate, valid from yesterday for ``days`` days."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn),
                          x509.NameAttribute(NameOID.ORGANIZATION_NAME, org)])  # fmt: skip

    def usage(sign_certs: bool) -> x509.KeyUsage:
        return x509.KeyUsage(True, False, False, False, False, sign_certs, sign_certs,
                             False, False)  # fmt: skip

    start = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
    end = start + dt.timedelta(days=days)
    root_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    root = (
        x509.CertificateBuilder().subject_name(name(f"{org} test root")).issuer_name(
            name(f"{org} test root")).public_key(root_key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(start).not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(usage(True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(root_key.public_key()), False)
        .sign(root_key, hashes.SHA256())
    )  # fmt: skip
    leaf = (
        x509.CertificateBuilder().subject_name(name(signer)).issuer_name(root.subject)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(start).not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(usage(False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(root_key.public_key()), False)
        .sign(root_key, hashes.SHA256())
    )  # fmt: skip
    pem = serialization.Encoding.PEM
    return Credentials(
        chain=leaf.public_bytes(pem) + root.public_bytes(pem),
        key=key.private_bytes(
            pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ),  # fmt: skip
    )


def sign_image(
    data: bytes,
    mime: str,
    credentials: Credentials,
    digital_source_type: str = "trainedAlgorithmicMedia",
    title: str = "image",
    software: str = "forensics",
) -> bytes:
    """Embed a signed C2PA manifest whose ``c2pa.created`` action declares the source type.

    Args:
        data: The encoded image (JPEG, PNG, WebP, ...).
        mime: Its MIME type, e.g. ``image/jpeg``.
        credentials: From :func:`throwaway_credentials` (or a real signing certificate).
        digital_source_type: IPTC code, e.g. ``trainedAlgorithmicMedia`` or
            ``digitalCapture``.
        title: The manifest's title.
        software: The claim generator and the action's software agent.

    Returns:
        The signed file's bytes.

    """
    import c2pa

    manifest = {
        "claim_generator_info": [{"name": software}],
        "title": title,
        "assertions": [{"label": "c2pa.actions", "data": {"actions": [{
            "action": "c2pa.created",
            "digitalSourceType": IPTC_DST + digital_source_type,
            "softwareAgent": {"name": software},
        }]}}],
    }  # fmt: skip
    info = c2pa.C2paSignerInfo(c2pa.C2paSigningAlg.ES256, credentials.chain, credentials.key, None)
    out = io.BytesIO()
    with c2pa.Signer.from_info(info) as signer, c2pa.Builder(manifest) as builder:
        builder.sign(signer, mime, io.BytesIO(data), out)
    return out.getvalue()
