"""Finding this gateway's keys where they leak: anywhere in a query string, or anywhere in the
headers of a request sent over plain HTTP.

String work only, no lookup: a candidate counts when it has a key's shape and its checksum holds
(`keyformat.parse_key`), so a look costs a substring search or two, and a false alarm needs a
random string to pass a 32-bit checksum. A key is found wherever it sits: a parameter's value or
name, the whole query, inside a longer value (`token=Bearer%20gw_live_...`), and percent-encoded
(any character of it, even twice over: `%255F` is `_` after two decodings), since whatever reads
the query further on (an upstream, a log viewer) may decode it.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable
from urllib.parse import unquote

from gateway.credentials.keyformat import key_length, parse_key

DECODINGS = 3  # percent-decoding rounds looked through (%25 nests): more than anything decodes
# An escape that decodes to a character a key has (a letter, a digit, `_`) or to `%` (an escape
# escaped): only a query with one can hide a key from a plain search, so only such a query is
# decoded; `%20`, `%2F`, `%3D`, UTF-8 text (`%C3%A9`) are not worth a decoding.
_KEY_ESCAPE = re.compile("%(?:25|3[0-9]|[46][1-9A-Fa-f]|[57][0-9Aa]|5[Ff])")


def keys_in(text: str, prefix: str, found: list[str] | None = None) -> list[str]:
    """The well-formed keys of `prefix` anywhere in `text`, each once, added to `found`."""
    out = [] if found is None else found
    marker = prefix + "_"
    at = text.find(marker)
    if at < 0:
        return out
    length = key_length(prefix)
    while at >= 0:
        candidate = text[at : at + length]
        if parse_key(candidate, prefix) is not None and candidate not in out:
            out.append(candidate)
        at = text.find(marker, at + 1)
    return out


def keys_in_query(query: str, prefix: str) -> list[str]:
    """The keys in a query string (without its `?`), as sent and after each percent-decoding."""
    found = keys_in(query, prefix)
    text = query
    for _ in range(DECODINGS):
        if "%" not in text or _KEY_ESCAPE.search(text) is None:
            break
        decoded = unquote(text, errors="replace")
        if decoded == text:
            break
        text = decoded
        keys_in(text, prefix, found)
    return found


def keys_in_headers(fields: Iterable[tuple[str, str]], prefix: str) -> list[str]:
    """The keys in header values, and in Basic credentials' decoded `key_id:key`."""
    found: list[str] = []
    for name, value in fields:
        keys_in(value, prefix, found)
        if name.lower() == "authorization":
            scheme, _, rest = value.strip().partition(" ")
            if scheme.lower() == "basic":
                try:
                    decoded = base64.b64decode(rest.strip(), validate=True).decode("ascii")
                except (binascii.Error, UnicodeDecodeError, ValueError):
                    continue
                keys_in(decoded, prefix, found)
    return found
