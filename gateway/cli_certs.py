"""`gateway certs self-signed --out DIR`: a certificate for a first real run, without openssl.

It writes `DIR/gateway.crt` and `DIR/gateway.key`, the names `config/quickstart.yaml` and
`config/gateway.yaml` expect, with the same code as `server.tls.self_signed` (gateway/tls.py).
Clients trust it by naming the certificate (`curl --cacert DIR/gateway.crt`); in production use
a certificate from your CA instead.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from gateway.tls import create_self_signed

CERT_NAME = "gateway.crt"
KEY_NAME = "gateway.key"


def cmd_self_signed(args: argparse.Namespace) -> int:
    out = Path(args.out)
    cert, key = out / CERT_NAME, out / KEY_NAME
    existing = [str(p) for p in (cert, key) if p.exists()]
    if existing and not args.force:
        print(f"gateway: error: {' and '.join(existing)} already exist (--force replaces them)", file=sys.stderr)
        return 2
    hosts = tuple(dict.fromkeys(args.host or ["localhost"]))
    try:
        out.mkdir(parents=True, exist_ok=True)
        create_self_signed(cert, key, hosts)
    except OSError as exc:
        print(f"gateway: error: cannot write to {out}: {exc.strerror}", file=sys.stderr)
        return 2
    names = ", ".join(dict.fromkeys((*hosts, "127.0.0.1", "::1")))
    print(f"wrote {cert} (valid for {names}; clients trust it with --cacert {cert})")
    print(f"wrote {key} (private key, mode 0600: keep it out of version control)")
    return 0


def add_parser(sub: Any) -> None:
    """Registers `gateway certs ...` on the top-level subcommands (one line in cli.py)."""
    certs = sub.add_parser("certs", help="make TLS certificates for the proxy listener")
    kinds = certs.add_subparsers(dest="certs_command", required=True)
    signed = kinds.add_parser(
        "self-signed", help="a self-signed certificate and key (DIR/gateway.crt, DIR/gateway.key)",
        description="Writes a self-signed certificate valid for the given host names, 127.0.0.1 and ::1.",
    )
    signed.add_argument("--out", required=True, metavar="DIR", help="directory to write gateway.crt and gateway.key into")
    signed.add_argument("--host", action="append", metavar="NAME",
                        help="a DNS name or IP address clients will use (repeatable; default: localhost)")
    signed.add_argument("--force", action="store_true", help="replace an existing certificate and key")
    signed.set_defaults(func=cmd_self_signed)
