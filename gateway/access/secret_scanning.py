"""The secret-scanning receiver: leaked-key reports in GitHub's partner program format.

A scanner that finds strings matching the published key pattern POSTs them here, signed; each
one that is a key of this gateway is marked exposed (`reason: secret_scanning`, with the report's
URL), so with `keys.on_exposure: revoke` a key pushed to a public repository stops working
within seconds. Only signed reports are read. The answer labels each token `true_positive` (a
key of this gateway) or `false_positive` and says nothing else: no tenant, key id or state.
A token whose checksum fails is `false_positive` without a store lookup, so a flood of made-up
tokens costs no queries. Only a signed report gets that far, and its answer's timing tells its
signer nothing the labels do not: anyone can check a checksum, and a key that exists is labelled
`true_positive` anyway.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from gateway.credentials.keyformat import hash_key, parse_key
from gateway.credentials.scanner_signatures import ScannerKeys
from gateway.errors import BadRequest, InvalidCredentials, MethodNotAllowed, MissingCredentials, StoreUnavailable
from gateway.exchange import RequestScope
from gateway.http.body import read_body
from gateway.http.messages import Request, Response, json_response
from gateway.keystore.base import KeyStore, StoreError

KEY_ID_HEADER = "Github-Public-Key-Identifier"
SIGNATURE_HEADER = "Github-Public-Key-Signature"
_FIELDS = ("token", "type", "url", "source")  # GitHub's; any other field is ignored (they may add some)

Expose = Callable[[str, str | None, str], Awaitable[Any]]  # (key id, where it was found, the reporter's address)


@dataclass(frozen=True, slots=True)
class Finding:
    token: str
    type: str
    url: str | None


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    names = [name for name, _ in pairs]
    if len(set(names)) != len(names):
        raise ValueError("duplicate field")
    return dict(pairs)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse_report(body: bytes) -> list[Finding]:
    """The report's findings; BadRequest unless it is strict JSON in GitHub's shape."""
    try:
        report = json.loads(body.decode("utf-8"), object_pairs_hook=_no_duplicates, parse_constant=_no_constant)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise BadRequest("the report must be JSON (UTF-8, no duplicate fields)") from None
    if not isinstance(report, list):
        raise BadRequest("the report must be a JSON array of {token, type, url, source}")
    findings = []
    for i, item in enumerate(report):
        if not isinstance(item, dict):
            raise BadRequest("each finding must be an object", details=[{"field": f"[{i}]", "issue": "not an object"}])
        for name in _FIELDS:
            required = name in ("token", "type")
            value = item.get(name)
            if not isinstance(value, str) and (required or value is not None):
                issue = "must be a string" if required else "must be a string or null"
                raise BadRequest(f"{name} {issue}", details=[{"field": f"[{i}].{name}", "issue": issue}])
        findings.append(Finding(item["token"], item["type"], item.get("url")))
    return findings


def token_hash(token: str) -> str:
    """What GitHub matches the answer by: hex SHA-256 of the token as sent."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


class SecretScanningReceiver:
    """`POST <secret_scanning.path>` on the proxy listener."""

    def __init__(self, keys: ScannerKeys, store: KeyStore, expose: Expose, *, key_prefix: str, max_body: int,
                 body_timeout: float) -> None:
        self._keys = keys
        self._store = store
        self._expose = expose
        self._prefix = key_prefix
        self._max_body = max_body
        self._body_timeout = body_timeout

    def _verified(self, request: Request, body: bytes) -> None:
        identifiers = request.headers.getall(KEY_ID_HEADER, [])
        signatures = request.headers.getall(SIGNATURE_HEADER, [])
        if not identifiers and not signatures:
            raise MissingCredentials("the report is not signed (Github-Public-Key-Identifier, -Signature)")
        if len(identifiers) != 1 or len(signatures) != 1 or not self._keys.verify(identifiers[0], signatures[0], body):
            raise InvalidCredentials("the report's signature does not hold for a configured public key")

    async def __call__(self, request: Request, scope: RequestScope) -> Response:
        if request.method != "POST":
            raise MethodNotAllowed(["POST"])
        body = await read_body(request, self._max_body, self._body_timeout)
        self._verified(request, body)
        findings = parse_report(body)
        labels = await self._labels(findings, scope.client_ip)
        answer = [{"token_hash": token_hash(f.token), "token_type": f.type, "label": label}
                  for f, label in zip(findings, labels, strict=True)]
        payload = json.dumps(answer, separators=(",", ":")).encode()
        return json_response(200, payload, [("Cache-Control", "no-store"), *scope.response_headers], scope.request_id)

    async def _labels(self, findings: Sequence[Finding], reporter: str) -> list[str]:
        # a well-formed token is looked up once however often it is reported; the lookups of
        # one report share the store's batched query
        hashes = {f.token: hash_key(f.token) for f in findings if parse_key(f.token, self._prefix) is not None}
        try:
            principals = await asyncio.gather(*(self._store.get_principal_by_hash(h) for h in hashes.values()))
            known = {token: p.key.id for token, p in zip(hashes, principals, strict=True) if p is not None}
            exposed: set[str] = set()  # the first finding of a key gives its url; a key marked before keeps its own
            for finding in findings:
                key_id = known.get(finding.token)
                if key_id is not None and key_id not in exposed:
                    exposed.add(key_id)
                    await self._expose(key_id, finding.url, reporter)
        except StoreError:
            raise StoreUnavailable() from None
        return ["true_positive" if f.token in known else "false_positive" for f in findings]
