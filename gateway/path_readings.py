"""The readings of a normalised request path that some upstream, or a proxy in between, may route on.

The gateway matches one spelling of a path; an upstream may decode, cut, trim or fold it into
another. `RouteTable.match` refuses a path when any reading here names a route with another
policy, so a protected route is never reached through a public one. Readings are made only for
paths that have something to read differently (a `%`, `;`, `.`, `:`, or a capital letter): a
plain path costs nothing.
"""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import quote, unquote

from gateway.errors import BadRequest

_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")

# What makes a path read differently by some upstream: an encoded slash (WSGI decodes it), a path
# parameter (Tomcat and Spring drop `;...`), an encoded `;`, `?` or `#` (a proxy in between that
# decodes the path, as nginx's `proxy_pass http://app$uri` does, makes a parameter, a query or a
# fragment of them), an encoded `%` (decoded once more by such a proxy).
STRUCTURAL = ("%2F", "%3B", ";", "%25", "%3F", "%23")
MAX_STRUCTURAL = 32  # more in one path is refused: each costs readings, before any auth
MAX_WORK = 1024      # segments over all readings; a path that needs more is refused (see readings)
_MAX_EACH = 8        # look-alike segments cut one at a time up to this many; beyond, all at once

_ESCAPE = re.compile("%[0-9A-Fa-f]{2}")
_ASCII_ESCAPE = re.compile("%[0-7][0-9A-F]")
_HIGH_RUN = re.compile("(?:%[89A-F][0-9A-F])+")
_NON_ASCII = re.compile("[^\x00-\x7f]")
# every upstream decodes these before routing; the structural ones are readings of their own
_DECODED = {f"%{i:02X}": chr(i) for i in range(0x80)}
for _kept in ("%2F", "%3B", "%3F", "%23", "%25"):
    del _DECODED[_kept]
_ASCII = "".join(chr(i) for i in range(0x80))


def decoded_once_more(text: str) -> str:
    """What a proxy in between that decodes the path once makes of `%25`-escapes: `%252E` is `.`,
    `%2573` is `s`, `%252F` is `%2F` (for the upstream to decode next)."""
    if "%25" not in text:
        return text
    once = text.replace("%25", "%")
    return _ESCAPE.sub(_unreserved_or_upper, once)


def _unreserved_or_upper(m: re.Match[str]) -> str:
    char = chr(int(m.group()[1:], 16))
    return char if char in _UNRESERVED else m.group().upper()


def has_non_ascii(path: str) -> bool:
    """True when a normalised path carries percent-encoded UTF-8 (raw non-ASCII is refused)."""
    return "%" in path and _HIGH_RUN.search(path) is not None


def _fold_char(char: str) -> str:
    """A letter as case-insensitive matchers that compare one character at a time read it: Python's
    `re` with IGNORECASE, Java's `equalsIgnoreCase`, .NET's invariant upper case (`ı` and `ſ` are
    `i` and `s`, `İ` is `i`)."""
    for folded in (char.upper().lower(), char.lower(), char.casefold()):
        if len(folded) > 1 and all(unicodedata.combining(c) for c in folded[1:]):
            folded = folded[0]  # `İ` lower-cases to `i` + COMBINING DOT ABOVE
        if folded.isascii():
            return folded
    return char.lower()


def unicode_variants(path: str) -> set[str]:
    """The path with its encoded non-ASCII letters NFKC-normalised (fullwidth letters, `／`,
    ligatures) and case-folded, re-encoded; `\\` (from `＼`) read as `/`, as IIS reads it."""
    text = _HIGH_RUN.sub(lambda m: unquote(m.group()), path)
    normal = unicodedata.normalize("NFKC", text)
    out = set()
    for form in (normal, normal.casefold(), _NON_ASCII.sub(lambda m: _fold_char(m.group()), normal)):
        form = unicodedata.normalize("NFKC", form)
        out.add(quote(form, safe=_ASCII).replace("\\", "/"))
    return out


def _without_params(path: str) -> str:
    return "/".join(segment.split(";", 1)[0] for segment in path.split("/"))


def _cut_query(path: str) -> str:
    """Where a proxy that decodes `%3F` or `%23` ends the path."""
    cuts = [i for i in (path.find("%3F"), path.find("%23")) if i >= 0]
    return path[: min(cuts)] if cuts else path


def _structural(base: str) -> set[str]:
    """Each combination of: `%2F` decoded, `%3B` decoded, the path cut at a decoded `%3F`/`%23`,
    `;params` dropped (only the steps the path gives a reason for)."""
    out = {base}
    if "%2F" in base:
        out |= {r.replace("%2F", "/") for r in out}
    if "%3B" in base:
        out |= {r.replace("%3B", ";") for r in out}
    query = "%3F" in base or "%23" in base
    if query:
        out |= {_cut_query(r) for r in out}
    if ";" in base or "%3B" in base:
        out |= {_without_params(r) for r in out}
        if query:  # `/a;x%3F/b%3F`: the parameter dropped first, then cut at the next mark
            out |= {_cut_query(r) for r in out}
    return out


def _decoded(text: str) -> str:
    """Printable escapes decoded as every upstream decodes them (`%20`, `%3A`, `%24`)."""
    if "%" not in text:
        return text
    return _ASCII_ESCAPE.sub(lambda m: _DECODED.get(m.group(), m.group()), text)


def _resolved(segments: list[str]) -> list[str]:
    """Dot segments resolved and empty ones merged, as upstreams do after decoding."""
    stack: list[str] = []
    for segment in segments:
        if segment == "..":
            if stack:
                stack.pop()
        elif segment and segment != ".":
            stack.append(segment)
    return stack


def _trimmed(segment: str) -> str:
    """A segment as Windows (IIS) and trimming frameworks read it: an NTFS stream cut off
    (`visitors::$DATA`, `visitors:x`), then trailing spaces and dots (`visitors. .`)."""
    colon = segment.find(":")
    if colon >= 0:
        segment = segment[:colon]
    segment = segment.rstrip(" ")
    return segment if segment in (".", "..") else segment.rstrip(" .")


def _unsuffixed(segment: str) -> str:
    """A segment without a format suffix, from its first dot (Rails' `(.:format)`, Spring's suffix
    matching, Apache's MultiViews: `visitors.xml` is `visitors`); a leading dot is a name."""
    segment = _trimmed(segment)
    if segment in (".", ".."):
        return segment
    dot = segment.find(".", 1)
    return segment[:dot] if dot > 0 else segment


def _lookalikes(segments: list[str], start: int) -> list[list[str]]:
    """The segments from `start` on trimmed, or cut at a suffix: all at once, and one at a time."""
    changed = [i for i in range(start, len(segments)) if _unsuffixed(segments[i]) != segments[i]]
    if not changed:
        return []
    out = []
    for cut in (_trimmed, _unsuffixed):
        out.append([cut(s) if i >= start else s for i, s in enumerate(segments)])
        if len(changed) <= _MAX_EACH:
            for i in changed:
                out.append(segments[:i] + [cut(segments[i])] + segments[i + 1 :])
    return out


def readings(path: str, literal_prefix: int) -> tuple[set[str], bool]:
    """The path as upstreams may read it. `literal_prefix` is how many of the path's first segments
    the matched route names literally: those are the route's own (`/v1/openapi.json` as a route
    of its own), so only the segments after them are read without suffix or trailing dots. The
    flag says the readings include case-folded Unicode ones, to be matched ignoring case."""
    if ("%" in path or ";" in path) and sum(path.count(m) for m in STRUCTURAL) > MAX_STRUCTURAL:
        raise BadRequest("too many encoded separators or path parameters")
    bases = {path, decoded_once_more(path)}
    folded = any(map(has_non_ascii, bases))
    if folded:
        bases |= {v for base in bases for v in unicode_variants(base)}
    own = path.split("/")[1 : literal_prefix + 1]
    out: set[str] = set()
    work = 0  # segments looked at: bounded, so no path costs more than a few milliseconds
    for base in bases:
        for reading in _structural(base):
            segments = _resolved(_decoded(reading).replace("\\", "/").split("/"))
            work += len(segments) + 1
            if work <= MAX_WORK:
                start = literal_prefix if segments[:literal_prefix] == own else 0
                variants = _lookalikes(segments, start)
                work += (len(segments) + 1) * len(variants)
            if work > MAX_WORK:  # no API's paths come near: made to cost, not to be served
                raise BadRequest("too many ways to read this path (encoded separators, suffixes, letters)")
            out.add("/" + "/".join(segments))
            out.update("/" + "/".join(_resolved(variant)) for variant in variants)
    return out, folded
