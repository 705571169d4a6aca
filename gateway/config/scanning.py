"""The `secret_scanning` section: leaked-key reports taken from secret scanners, and the keys they are signed with."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from gateway.config.fields import (
    P256_PEM,
    Int,
    List,
    Pattern,
)
from gateway.config.keytypes import SECTION, Flag


@dataclass(frozen=True, slots=True)
class ScannerKeyConfig:
    """A secret scanner's public key, as GitHub publishes them at
    `https://api.github.com/meta/public_keys/secret_scanning`."""

    __pydantic_config__ = SECTION
    key_identifier: Annotated[str, Pattern("[!-~]{1,256}", "must be 1-256 printable ASCII characters, no spaces")]
    """What the scanner names this key in `Github-Public-Key-Identifier`."""
    key: Annotated[str, P256_PEM]
    """The public key, PEM text (a YAML block: `key: |`)."""


@dataclass(frozen=True, slots=True)
class SecretScanningConfig:
    """Leaked keys reported by secret scanners: GitHub's partner program format, signed reports
    only (the README's Leaked keys section)."""

    __pydantic_config__ = SECTION
    enabled: Flag = False
    """true: reports are taken at `path` on the proxy listener (at least one of `public_keys` needed)."""
    path: Annotated[str, Pattern(r"(/[A-Za-z0-9._~-]+)+", "must be a path of one or more segments "
                                 "(letters, digits, '.', '_', '~', '-'), without a trailing /")] = "/gateway/v1/secret-scanning"
    """Where the reports are POSTed (no route may be at or below it)."""
    public_keys: Annotated[tuple[ScannerKeyConfig, ...], List("must be a list of {key_identifier, key}")] = ()
    """The keys a report may be signed with, each `{key_identifier, key}`: the name the scanner
    gives it in `Github-Public-Key-Identifier`, and the public key's PEM text (ECDSA P-256). A
    report signed with any other key, or unsigned, is refused (401)."""
    max_body: Annotated[int, Int(1024, 64 * 1024 * 1024)] = 1024 * 1024
    """Largest report accepted, in bytes (413 above)."""
