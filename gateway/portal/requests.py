"""The shapes of the portal's own request bodies (sign-in, invitations, password links), declared
once for its OpenAPI document (`openapi.py`). The handlers check the same rules themselves
(`api_session.py`, `accounts/people.py`) and schemathesis holds the running API to this document;
the bodies the portal shares with the admin API are that API's models (`accounts/requests.py`,
`events/requests.py`).
"""

from __future__ import annotations

from typing import Annotated

from gateway.accounts.passwords import MAX_LENGTH, MIN_LENGTH
from gateway.accounts.requests import Email, Request, Role, Text
from gateway.config.fields import Rule

Password = Annotated[str, Rule(f"must be {MIN_LENGTH} to {MAX_LENGTH} characters",
                               {"strict": True, "min_length": MIN_LENGTH, "max_length": MAX_LENGTH})]


class SignIn(Request):
    """A wrong password and an unknown email get the same 401."""

    email: str
    password: str


class Invitation(Request):
    """A new member of the caller's tenant; the answer's `invitation_url` is shown once."""

    email: Email
    name: Text | None = None
    role: Role
    """Owners may invite owners; admins everyone below."""


class PasswordSet(Request):
    """Accepting an invitation, or a password reset, through its single-use link."""

    password: Password
    name: Text | None = None


class ResetRequest(Request):
    """A reset link goes out by mail if the email signs someone in (the answer is the same either way)."""

    email: str


# The admin API's query parameters (admin/queries.py) that the portal's lists take: its reader
# refuses any other one (422 naming it) and its OpenAPI document states these. (Its webhook
# lists take all of theirs: queries.Paging and queries.DeliveryLog have no tenant_id.)
KEY_QUERY = ("page", "per_page", "sort", "status")
AUDIT_QUERY = ("after", "limit", "order", "action")
CALL_QUERY = ("after", "limit", "order", "key_id", "status")
USAGE_QUERY = ("key_id", "granularity", "from", "to")
