"""The API key format: `<prefix>_<live|test>_<32 base62 random><6 base62 CRC32>`.

Like GitHub's tokens, the checksum tail lets the gateway refuse a mistyped or truncated key
without any lookup, and lets secret scanners recognise a key with few false positives.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import zlib
from dataclasses import dataclass

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_ALPHABET_SET = frozenset(ALPHABET)
RANDOM_CHARS = 32        # 32 base62 characters: about 190 bits of entropy
CHECKSUM_CHARS = 6       # 62**6 > 2**32, so any CRC32 fits
ENVIRONMENTS = ("live", "test")
ID_CHARS = 20
PREFIX_PATTERN = "[a-z0-9]{1,16}"  # what `keys.prefix` may be


@dataclass(frozen=True, slots=True)
class ParsedKey:
    environment: str
    secret: str


def _base62(value: int, width: int) -> str:
    out = []
    for _ in range(width):
        value, digit = divmod(value, 62)
        out.append(ALPHABET[digit])
    return "".join(reversed(out))


def _checksum(body: str) -> str:
    return _base62(zlib.crc32(body.encode("ascii")), CHECKSUM_CHARS)


def _random(n: int) -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(n))


def generate_key(prefix: str, environment: str) -> str:
    if environment not in ENVIRONMENTS:
        raise ValueError(f"environment must be live or test, not {environment!r}")
    body = f"{prefix}_{environment}_{_random(RANDOM_CHARS)}"
    return body + _checksum(body)


def key_length(prefix: str) -> int:
    return len(prefix) + 6 + RANDOM_CHARS + CHECKSUM_CHARS  # "_live_" / "_test_" are 6 chars


def parse_key(candidate: str, prefix: str) -> ParsedKey | None:
    """The key's parts when its shape and checksum are right; constant work, no lookup."""
    if len(candidate) != key_length(prefix) or not candidate.startswith(prefix):
        return None
    head = len(prefix)
    environment = candidate[head + 1 : head + 5]
    if candidate[head] != "_" or candidate[head + 5] != "_" or environment not in ENVIRONMENTS:
        return None
    tail = candidate[head + 6 :]
    if not _ALPHABET_SET.issuperset(tail):
        return None
    if _checksum(candidate[:-CHECKSUM_CHARS]) != candidate[-CHECKSUM_CHARS:]:
        return None
    return ParsedKey(environment, candidate)


def key_pattern(prefix: str | None = None) -> str:
    """The regular expression of a key, published for secret scanners (README, Leaked keys).

    With a prefix, that gateway's keys; without, a key of any gateway (any prefix `keys.prefix`
    may be), for scanners that check the checksum (`well_formed`), as the detect-secrets plugin does.
    """
    head = PREFIX_PATTERN if prefix is None else re.escape(prefix)
    return f"{head}_(?:{'|'.join(ENVIRONMENTS)})_[0-9A-Za-z]{{{RANDOM_CHARS + CHECKSUM_CHARS}}}"


def well_formed(candidate: str) -> bool:
    """Whether a string is a key of some gateway, whatever its prefix: shape and checksum hold."""
    prefix = candidate.partition("_")[0]
    return re.fullmatch(PREFIX_PATTERN, prefix) is not None and parse_key(candidate, prefix) is not None


def hash_key(secret: str) -> str:
    """SHA-256 of the whole key, hex.

    A fast hash is right here, unlike for passwords: the key carries ~190 random bits, so no
    amount of hashing speed makes guessing feasible, while a slow hash (bcrypt, argon2) would
    add milliseconds to every single request.
    """
    return hashlib.sha256(secret.encode("ascii", "surrogateescape")).hexdigest()


def display_prefix(secret: str) -> str:
    """What the console may show: prefix, environment and the first 4 random characters."""
    head = secret.index("_", secret.index("_") + 1) + 1
    return secret[: head + 4]


def last4(secret: str) -> str:
    return secret[-4:]


def new_id(kind: str) -> str:
    """A public identifier (`key_...`, `ten_...`, `usr_...`), unrelated to any secret."""
    return f"{kind}_{_random(ID_CHARS)}"
