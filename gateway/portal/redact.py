"""The single-use secrets of the portal's link paths, cut out of the path the logs record.

`<portal.path>/api/invitations/<secret>` and `.../password-reset/<secret>` carry a secret in the
path itself (the page posts it there; a person may paste or retype a link). The access log, the
call log and a canary's audit entry record a request's path, so it is redacted first, on a reading
that no spelling gets past: the path decoded until no escape is left (an encoded `%2F`, a
double-encoded `%2569`), its slashes collapsed, compared without regard to case (`/PORTAL/api/
Invitations/...` reaches no portal handler, but a route above the portal may forward it, and
every request is logged). Runs of secret-like characters after the link's segment are replaced by
`…`; a redacted path is logged as that reading. Paths outside the portal are left as they are.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from urllib.parse import unquote

_LINK = re.compile(r"(?:invitations|password-reset)(?P<rest>.*)", re.IGNORECASE | re.DOTALL)
_SECRETISH = re.compile(r"[A-Za-z0-9_-]{16,}")  # link secrets are 43; ids and words after them are shorter
_SLASHES = re.compile(r"/{2,}")
_MAX_DECODES = 8


def decoded(path: str) -> str:
    """`path` unescaped until it stops changing (bounded: each round at least shortens it)."""
    for _ in range(_MAX_DECODES):
        if "%" not in path:
            break
        once = unquote(path, errors="replace")
        if once == path:
            break
        path = once
    return _SLASHES.sub("/", path)


def link_secret_redactor(prefix: str) -> Callable[[str], str]:
    """The path as logs may show it, for a portal served under `prefix`."""
    under = re.compile(re.escape(prefix.rstrip("/")) + r"(?:/|$)", re.IGNORECASE)

    def redact(path: str) -> str:
        reading = decoded(path)
        if under.match(reading) is None:
            return path
        found = _LINK.search(reading)
        if found is None:
            return path
        rest = found.group("rest")
        cut = _SECRETISH.sub("…", rest)
        return path if cut == rest else reading[:found.start("rest")] + cut

    return redact
