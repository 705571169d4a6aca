"""Standard Webhooks signatures (https://www.standardwebhooks.com): what a receiver verifies.

`webhook-signature: v1,<base64 HMAC-SHA256(key, "<id>.<timestamp>.<body>")>`, the key being the
base64 text after `whsec_`. The timestamp is the attempt's (receivers reject old ones), the id
the event's (the same on every retry, so receivers can drop duplicates). During a secret's
rotation the header carries one signature per secret, space-separated (`v1,<new> v1,<old>`), as
the specification allows: a receiver verifying with either one accepts the delivery.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Sequence

SECRET_PREFIX = "whsec_"
_KEY_BYTES = 32


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(_KEY_BYTES)).decode()


def _key(secret: str) -> bytes:
    if not secret.startswith(SECRET_PREFIX):
        raise ValueError("a webhook secret starts with whsec_")
    return base64.b64decode(secret[len(SECRET_PREFIX):])


def signature(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(_key(secret), f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def signed_headers(keys: str | Sequence[str], msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The headers of one attempt (`timestamp` in whole Unix seconds), signed with each secret."""
    signers = (keys,) if isinstance(keys, str) else tuple(keys)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(signature(key, msg_id, timestamp, body) for key in signers),
        "Content-Type": "application/json",
    }
