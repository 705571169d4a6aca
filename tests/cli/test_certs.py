"""`gateway certs self-signed`: a certificate a real TLS client accepts for the names asked for."""

from __future__ import annotations

import asyncio
import ssl
import stat
from ipaddress import ip_address
from pathlib import Path

import pytest
from cryptography import x509

from gateway.tls import server_context
from tests.cli.test_run import gateway


async def handshake(cert: Path, key: Path, server_name: str, *, strict: bool = False) -> None:
    """A TLS connection to a server holding cert/key, verified by a client that trusts only cert."""
    server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0, ssl=server_context(cert, key))
    client = ssl.create_default_context(cafile=str(cert))
    if strict:  # what Python 3.13 turns on by default (OpenSSL's X509_STRICT)
        client.verify_flags |= ssl.VERIFY_X509_STRICT
    port = server.sockets[0].getsockname()[1]
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", port, ssl=client, server_hostname=server_name)
        writer.close()
    finally:
        server.close()
        await server.wait_closed()


async def test_self_signed_certificate_verifies_for_its_names(tmp_path: Path) -> None:
    made = gateway("certs", "self-signed", "--out", "certs", "--host", "gw.example.test", "--host", "10.1.2.3",
                   cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    cert, key = tmp_path / "certs" / "gateway.crt", tmp_path / "certs" / "gateway.key"
    assert "--cacert certs/gateway.crt" in made.stdout
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    for name in ("gw.example.test", "127.0.0.1", "::1"):
        await handshake(cert, key, name, strict=True)
    names = x509.load_pem_x509_certificate(cert.read_bytes()).extensions.get_extension_for_class(
        x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.IPAddress) == [ip_address("10.1.2.3"), ip_address("127.0.0.1"),
                                                          ip_address("::1")]
    with pytest.raises(ssl.SSLCertVerificationError):
        await handshake(cert, key, "other.example.test")


async def test_default_name_is_localhost_and_existing_files_are_kept(tmp_path: Path) -> None:
    assert gateway("certs", "self-signed", "--out", "c", cwd=tmp_path).returncode == 0
    cert, key = tmp_path / "c" / "gateway.crt", tmp_path / "c" / "gateway.key"
    await handshake(cert, key, "localhost")
    before = cert.read_bytes()
    again = gateway("certs", "self-signed", "--out", "c", cwd=tmp_path)
    assert again.returncode == 2 and again.stderr.count("\n") == 1 and "--force" in again.stderr
    assert cert.read_bytes() == before
    assert gateway("certs", "self-signed", "--out", "c", "--force", cwd=tmp_path).returncode == 0
    assert cert.read_bytes() != before
