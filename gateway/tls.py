"""TLS for the proxy listener: load the operator's certificate, or make and reuse a dev one."""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import ssl
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from gateway.files import exclusive, write_atomically

SELF_SIGNED_DIR = "tls"
SELF_SIGNED_CERT = "self-signed.crt"
SELF_SIGNED_KEY = "self-signed.key"


class TLSError(Exception):
    """A certificate or key that cannot be used; its message is one line for the operator."""


def self_signed_paths(data_dir: str) -> tuple[Path, Path]:
    base = Path(data_dir) / SELF_SIGNED_DIR
    return base / SELF_SIGNED_CERT, base / SELF_SIGNED_KEY


def ensure_self_signed(data_dir: str, hostnames: tuple[str, ...] = ("localhost",)) -> tuple[Path, Path]:
    """Create the dev certificate once and reuse it, so clients can pin it with --cacert."""
    cert_path, key_path = self_signed_paths(data_dir)
    if cert_path.exists() and key_path.exists():
        return cert_path, key_path
    try:
        cert_path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise TLSError(f"cannot create {cert_path.parent}: {exc.strerror}") from None
    with exclusive(cert_path.parent / ".lock"):  # workers starting together make one certificate
        if cert_path.exists() and key_path.exists():
            return cert_path, key_path
        create_self_signed(cert_path, key_path, hostnames)
    return cert_path, key_path


def create_self_signed(cert_path: Path, key_path: Path, hostnames: tuple[str, ...]) -> None:
    """A self-signed certificate for `hostnames` (DNS names or IP addresses) and the loopback
    addresses; it is its own CA, so clients trust it by naming it (`curl --cacert`)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "gateway self-signed")])
    now = dt.datetime.now(dt.timezone.utc)
    alt_names: list[x509.GeneralName] = []
    for host in dict.fromkeys((*hostnames, "127.0.0.1", "::1")):  # in order, once each
        try:
            alt_names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            alt_names.append(x509.DNSName(host))
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=825))
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_bytes = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    write_atomically(key_path, key_bytes)
    write_atomically(cert_path, cert.public_bytes(serialization.Encoding.PEM), 0o644)


def server_context(cert_file: str | os.PathLike[str], key_file: str | os.PathLike[str]) -> ssl.SSLContext:
    """A modern server context: TLS 1.2+, HTTP/1.1 by ALPN, no compression or renegotiation."""
    for label, path in (("certificate", cert_file), ("key", key_file)):
        if not Path(path).is_file():
            raise TLSError(f"TLS {label} file not found: {path}")
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_alpn_protocols(["http/1.1"])
    ctx.options |= ssl.OP_NO_COMPRESSION | ssl.OP_NO_RENEGOTIATION
    try:
        ctx.load_cert_chain(str(cert_file), str(key_file))
    except (ssl.SSLError, OSError) as exc:
        raise TLSError(f"cannot load TLS certificate {cert_file} with key {key_file}: {exc}") from None
    return ctx
