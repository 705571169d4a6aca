"""The access log: one JSON line per request, written in batches rather than one write each.

A `logging` call with a JSON formatter and a stream handler costs about 20 µs and a write(2) per
request, more than the rest of the gateway's bookkeeping together. Lines here are rendered field
by field into one f-string and leave in one write per batch: when 64 KB have gathered, a fifth of a second
after the first line of a batch, and on shutdown. The format is the operational log's.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Callable

_FIXED = '"level":"info","logger":"gateway.access","msg":"request",'
_quote = json.encoder.encode_basestring_ascii  # C: quotes and escapes a string as json.dumps does
_FLUSH_AFTER = 0.2
_FLUSH_SIZE = 64 * 1024


def _stderr(text: str) -> None:
    """One write for the batch: text-mode stderr is line-buffered (a write per line), so the
    batch goes to the binary buffer underneath, after whatever the text layer still holds."""
    stream = sys.stderr
    binary = getattr(stream, "buffer", None)
    if binary is None:
        stream.write(text)
        stream.flush()
        return
    stream.flush()
    binary.write(text.encode("utf-8", "replace"))
    binary.flush()


class AccessLog:
    def __init__(self, write: Callable[[str], None] = _stderr, *, interval: float = _FLUSH_AFTER) -> None:
        self._write = write
        self._interval = interval
        self._lines: list[str] = []
        self._size = 0
        self._timer: asyncio.TimerHandle | None = None
        self._loop = asyncio.get_running_loop()
        self._second = -1
        self._stamp = ""

    def _ts(self, now: float) -> str:
        second = int(now)
        if second != self._second:  # strftime once per second, not once per line
            self._second = second
            self._stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        return f"{self._stamp}.{int((now - second) * 1000):03d}Z"

    def request(
        self, request_id: str, route: str | None, method: str, path: str, status: int, code: str | None,
        duration_ms: float, upstream_ms: float | None, key_id: str | None, tenant: str | None,
        auth_method: str | None, client_ip: str,
    ) -> None:
        """The per-request line, rendered field by field: no dict, no generic encoder walk, the
        same JSON `record` would give (strings quoted and escaped by json's C function)."""
        q = _quote
        self.line(
            f'{{"ts":"{self._ts(time.time())}",{_FIXED}"request_id":{q(request_id)},'
            f'"route":{"null" if route is None else q(route)},"method":{q(method)},"path":{q(path)},'
            f'"status":{status},"code":{"null" if code is None else q(code)},"duration_ms":{duration_ms!r},'
            f'"upstream_ms":{"null" if upstream_ms is None else repr(upstream_ms)},'
            f'"key_id":{"null" if key_id is None else q(key_id)},"tenant":{"null" if tenant is None else q(tenant)},'
            f'"auth_method":{"null" if auth_method is None else q(auth_method)},"client_ip":{q(client_ip)}}}'
        )

    def line(self, line: str) -> None:
        self._lines.append(line)
        self._size += len(line)
        if self._size >= _FLUSH_SIZE:
            self.flush()
        elif self._timer is None:
            self._timer = self._loop.call_later(self._interval, self.flush)

    def flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._lines:
            return
        text = "\n".join(self._lines) + "\n"
        self._lines.clear()
        self._size = 0
        try:
            self._write(text)
        except (OSError, ValueError):
            pass  # a closed or full stderr must not take requests down with it
