"""Throwaway certificate authorities and server certificates for the TLS tests.

Made with ``cryptography`` (pyOpenSSL, which Twisted's TLS uses, depends on it). Each CA's
certificate is written alone into a directory of its own, because that directory is what
Twisted's ``tls:`` endpoint takes as ``trustRoots``: it loads every ``*.pem`` file in it as
one certificate and silently skips files it cannot parse, so a stray key or a second
certificate in the same file would go unnoticed.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VALIDITY = datetime.timedelta(days=2)
"""Long enough for any test run; a leaked file is useless soon after."""


@dataclass(frozen=True)
class Authority:
    """A CA: its key and certificate in memory, its certificate alone in ``trust_roots``."""

    name: str
    key: ec.EllipticCurvePrivateKey
    certificate: x509.Certificate
    trust_roots: Path
    """A directory holding only ``ca.pem``: give it to Twisted as ``trustRoots``."""

    @property
    def certificate_path(self) -> Path:
        return self.trust_roots / "ca.pem"


@dataclass(frozen=True)
class ServerCertificate:
    """A server's certificate and key as PEM files, for Prosody's ``ssl`` option."""

    hostname: str
    certificate_path: Path
    key_path: Path


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _validity(builder: x509.CertificateBuilder) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.UTC)
    # A minute of slack in the past, so clock granularity never makes it "not yet valid".
    return builder.not_valid_before(now - datetime.timedelta(minutes=1)).not_valid_after(now + VALIDITY)


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    path.chmod(0o600)


def make_authority(directory: Path, name: str) -> Authority:
    """A self-signed CA named ``name``; its certificate goes to ``directory/ca.pem``."""
    directory.mkdir(parents=True, exist_ok=True)
    key = _key()
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    certificate = (
        _validity(x509.CertificateBuilder())
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    authority = Authority(name, key, certificate, directory)
    authority.certificate_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return authority


def make_server_certificate(authority: Authority, directory: Path, hostname: str) -> ServerCertificate:
    """A server certificate for ``hostname`` (as its only DNS name) signed by ``authority``.

    Writes ``directory/<hostname>.crt`` and ``directory/<hostname>.key``; keep ``directory``
    apart from any trust-roots directory.
    """
    directory.mkdir(parents=True, exist_ok=True)
    key = _key()
    certificate = (
        _validity(x509.CertificateBuilder())
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname)]))
        .issuer_name(authority.certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(hostname)]), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(authority.key.public_key()), critical=False)
        .sign(authority.key, hashes.SHA256())
    )
    certificate_path = directory / f"{hostname}.crt"
    key_path = directory / f"{hostname}.key"
    certificate_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    _write_key(key_path, key)
    return ServerCertificate(hostname, certificate_path, key_path)
