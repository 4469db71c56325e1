"""Certificates made in the test, with ``cryptography``: a CA, a server certificate for 127.0.0.1
and localhost, a client certificate, and one certificate per service named as the service (``media``,
``intelligence``, ``tracks``, ``gateway``: its DNS name, as envoy's upstream checks expect, plus
127.0.0.1 and localhost so direct callers on loopback accept it too), all as PEM files (what the
TLS settings point at)."""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

SERVICES = ("media", "intelligence", "tracks", "gateway")


@dataclass(frozen=True)
class KeyPair:
    cert: Path
    key: Path


@dataclass(frozen=True)
class Certs:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    services: dict[str, KeyPair] = field(default_factory=dict)  # by service name

    def service(self, name: str) -> KeyPair:
        """The certificate of service ``name``: server and client usage (a family serves gRPC and
        calls other families), named ``name``, 127.0.0.1 and localhost."""
        return self.services[name]


def make_certs(folder: Path, *, name: str = "transmute-test") -> Certs:
    """A fresh CA under ``folder`` and the server, client and service certificates it signs."""
    folder.mkdir(parents=True, exist_ok=True)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{name} CA")])
    ca = (
        _builder(ca_name, ca_name, ca_key)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
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
        .sign(ca_key, hashes.SHA256())
    )
    (folder / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    loopback = x509.IPAddress(ipaddress.ip_address("127.0.0.1"))
    server = _leaf(
        folder,
        "server",
        ca,
        ca_key,
        [ExtendedKeyUsageOID.SERVER_AUTH],
        [loopback, x509.DNSName("localhost")],
    )
    client = _leaf(folder, "client", ca, ca_key, [ExtendedKeyUsageOID.CLIENT_AUTH], [x509.DNSName("client")])
    both = [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
    services = {
        service: KeyPair(
            *_leaf(
                folder,
                service,
                ca,
                ca_key,
                both,
                [x509.DNSName(service), x509.DNSName("localhost"), loopback],
            )
        )
        for service in SERVICES
    }
    return Certs(folder / "ca.pem", *server, *client, services=services)


def _builder(
    subject: x509.Name, issuer: x509.Name, key: ec.EllipticCurvePrivateKey
) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
    )


def _leaf(
    folder: Path,
    stem: str,
    ca: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    usages: list[x509.ObjectIdentifier],
    names: list[x509.GeneralName],
) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, stem)])
    cert = (
        _builder(subject, ca.subject, key)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    cert_path, key_path = folder / f"{stem}.pem", folder / f"{stem}-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path
