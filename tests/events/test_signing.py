"""Deliveries verify with the `standardwebhooks` library, as a receiver would check them."""

from __future__ import annotations

import base64
import time

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from gateway.events.signing import new_secret, signed_headers


def test_a_signed_delivery_verifies_with_the_standard_library() -> None:
    secret = new_secret()
    assert secret.startswith("whsec_") and len(base64.b64decode(secret[6:])) == 32
    body = b'{"type":"key.revoked","timestamp":"2026-01-01T00:00:00Z","data":{"key":{"id":"key_1"}}}'
    headers = signed_headers(secret, "evt_123", int(time.time()), body)
    assert headers["webhook-id"] == "evt_123"
    assert headers["webhook-signature"].startswith("v1,")
    assert Webhook(secret).verify(body, headers)["type"] == "key.revoked"


@pytest.mark.parametrize("change", ["body", "id", "timestamp", "secret"])
def test_any_change_breaks_the_signature(change: str) -> None:
    secret, body, now = new_secret(), b'{"type":"webhook.test"}', int(time.time())
    headers = signed_headers(secret, "evt_1", now, body)
    if change == "body":
        body = b'{"type":"webhook.tesT"}'
    elif change == "id":
        headers["webhook-id"] = "evt_2"
    elif change == "timestamp":
        headers["webhook-timestamp"] = str(now - 1)
    else:
        secret = new_secret()
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(body, headers)


def test_secrets_differ() -> None:
    assert len({new_secret() for _ in range(100)}) == 100
