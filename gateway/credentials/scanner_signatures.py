"""Secret scanners' signatures over their reports, as GitHub's partner program makes them.

GitHub signs each report's raw body with ECDSA P-256 / SHA-256 and names the key it used in
`Github-Public-Key-Identifier`; the signature (base64 of its DER encoding) is in
`Github-Public-Key-Signature`. The gateway cannot fetch GitHub's public keys (it may have no way
out), so they come from the config, loaded once here.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_pem_public_key

_MAX_SIGNATURE = 200  # base64 of a DER P-256 signature is at most 96 characters


def load_p256_public_key(pem: str) -> ec.EllipticCurvePublicKey:
    """The key in a PEM text; ValueError unless it is one ECDSA P-256 public key."""
    try:
        key = load_pem_public_key(pem.encode())
    except (ValueError, TypeError, UnicodeEncodeError) as exc:
        raise ValueError("not a PEM public key") from exc
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise ValueError("not an ECDSA P-256 public key")
    return key


class ScannerKeys:
    """The scanners' public keys by identifier: verifies a report's signature."""

    def __init__(self, keys: Iterable[tuple[str, str]]) -> None:
        self._keys = {identifier: load_p256_public_key(pem) for identifier, pem in keys}

    def verify(self, identifier: str, signature: str, body: bytes) -> bool:
        """Whether `signature` (base64 DER) by the key named `identifier` holds over `body`."""
        key = self._keys.get(identifier)
        if key is None or len(signature) > _MAX_SIGNATURE:
            return False
        try:
            der = base64.b64decode(signature, validate=True)
            key.verify(der, body, ec.ECDSA(hashes.SHA256()))
        except (binascii.Error, ValueError, InvalidSignature):
            return False
        return True
