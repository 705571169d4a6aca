"""Passwords of the portal's people: the length rule, and argon2id hashing off the event loop.

argon2-cffi's defaults (RFC 9106's second recommendation: 64 MiB, 3 passes, 4 lanes) cost about
0.1 s of CPU and 64 MiB per hash, so hashing runs in worker threads, a few at a time: a burst of
sign-ins queues here instead of stalling every other request or exhausting memory. A sign-in for
an email nobody uses verifies against a dummy hash made at startup with the same parameters, so
it takes as long as a wrong password does.
"""

from __future__ import annotations

import asyncio
import unicodedata

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from gateway.errors import ValidationError

MIN_LENGTH = 12
MAX_LENGTH = 256


def password_problem(password: object) -> str | None:
    """Why a password cannot be used, or None (NIST SP 800-63B: length, no composition rules)."""
    if not isinstance(password, str):
        return "must be a string"
    if not MIN_LENGTH <= len(password) <= MAX_LENGTH:
        return f"must be {MIN_LENGTH} to {MAX_LENGTH} characters"
    if not password.strip():
        return "must not be only spaces"
    return None


def check_password(password: object, field: str = "password") -> str:
    problem = password_problem(password)
    if problem is not None:
        raise ValidationError(details=[{"field": field, "issue": problem}])
    assert isinstance(password, str)
    return password


def _normal(password: str) -> bytes:
    # one spelling per password, whatever the keyboard or the browser sends (800-63B 5.1.1.2)
    return unicodedata.normalize("NFKC", password).encode("utf-8", "surrogatepass")


class Passwords:
    """argon2id hashing and verification, a bounded number at a time, in threads."""

    def __init__(self, hasher: PasswordHasher | None = None, *, concurrency: int = 2) -> None:
        self._hasher = hasher or PasswordHasher()
        self._slots = asyncio.Semaphore(concurrency)
        self._dummy = self._hasher.hash(b"no account has this password: only its timing is used")

    async def hash(self, password: str) -> str:
        async with self._slots:
            return await asyncio.to_thread(self._hasher.hash, _normal(password))

    async def verify(self, stored: str | None, password: str) -> bool:
        """True when `password` matches `stored`; with no stored hash (unknown email, invitation
        not accepted) the same work is done against the dummy and the answer is False."""
        async with self._slots:
            return await asyncio.to_thread(self._verify, stored, _normal(password))

    def _verify(self, stored: str | None, password: bytes) -> bool:
        try:
            return self._hasher.verify(stored or self._dummy, password) and stored is not None
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, stored: str) -> bool:
        """After a successful sign-in: the hash was made with weaker parameters than today's."""
        try:
            return self._hasher.check_needs_rehash(stored)
        except (InvalidHashError, ValueError):
            return True
