"""TLS for the proxy listener (the operator's certificate, or a dev one made and reused), and the
client contexts the gateway presents to `https://` upstreams (a private CA, a client certificate)."""

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
    now = dt.datetime.now(dt.UTC)
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


class ClientContexts:
    """One client context per distinct set of files, made when a route table is compiled (at load
    and reload, never per request) and shared by the routes naming the same files."""

    def __init__(self) -> None:
        self._made: dict[tuple[str | None, str | None, str | None], ssl.SSLContext] = {}

    def get(self, files: tuple[str | None, str | None, str | None]) -> ssl.SSLContext:
        ctx = self._made.get(files)
        if ctx is None:
            ctx = self._made[files] = client_context(*files)
        return ctx


def client_context(ca_file: str | None, cert_file: str | None, key_file: str | None) -> ssl.SSLContext:
    """A verifying client context for upstreams: `ca_file` replaces the system's CAs when set (a
    private CA), `cert_file`/`key_file` is the certificate shown to an upstream that asks for one
    (mTLS). Certificates and host names are always checked; there is no way to turn that off."""
    try:
        ctx = ssl.create_default_context(cafile=ca_file) if ca_file else ssl.create_default_context()
    except (ssl.SSLError, OSError) as exc:
        raise TLSError(f"cannot load CA file {ca_file}: {_reason(exc)}") from None
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_alpn_protocols(["http/1.1"])
    if cert_file:
        try:
            ctx.load_cert_chain(cert_file, key_file, password=_encrypted)  # never OpenSSL's prompt on stdin
        except (ssl.SSLError, OSError) as exc:
            with_key = f" with key {key_file}" if key_file else ""
            reason = _reason(exc) if not isinstance(exc, ssl.SSLError) or exc.reason else "no PEM certificate and key"
            raise TLSError(f"cannot load client certificate {cert_file}{with_key}: {reason}") from None
    return ctx


def _encrypted() -> bytes:
    raise OSError(0, "the key is encrypted (give an unencrypted key file, readable by the gateway only)")


def _reason(exc: BaseException) -> str:
    """One line: OpenSSL's reason, or the OS's."""
    if isinstance(exc, ssl.SSLError):
        return (exc.reason or str(exc)).replace("_", " ").lower()
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc)
