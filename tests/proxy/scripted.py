"""A raw-socket upstream that answers each request with the next scripted bytes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

CLOSE = None  # a scripted step: close the connection without answering


def ok(body: bytes = b'{"ok":true}', *extra: str) -> bytes:
    head = ["HTTP/1.1 200 OK", "Content-Type: application/json", f"Content-Length: {len(body)}", *extra]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


class Scripted:
    """Answers each request it reads with the next scripted reply, on whatever connection."""

    def __init__(self, *replies: bytes | tuple[bytes, str] | None) -> None:
        self.replies = list(replies)
        self.connections = 0
        self.requests: list[bytes] = []
        self.bodies: list[bytes] = []
        self.server: asyncio.Server | None = None
        self.disconnected = asyncio.Event()  # the other side closed a connection between requests

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                body = b""
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        body = await reader.readexactly(int(line.split(b":")[1]))
                    if line.lower() == b"transfer-encoding: chunked":
                        body = await reader.readuntil(b"0\r\n\r\n")  # enough for the bodies tests send
                self.requests.append(head)
                self.bodies.append(body)
                reply = self.replies.pop(0)
                if reply is CLOSE:
                    writer.close()
                    return
                data, after = reply if isinstance(reply, tuple) else (reply, "")
                writer.write(data)
                await writer.drain()
                if after == "close":
                    writer.close()
                    return
                if after == "abort":
                    writer.transport.abort()
                    return
        except (asyncio.IncompleteReadError, ConnectionError):
            self.disconnected.set()
            writer.close()


async def scripted_upstreams() -> AsyncIterator[Any]:
    made: list[Scripted] = []

    async def make(*replies: bytes | tuple[bytes, str] | None) -> Scripted:
        script = Scripted(*replies)
        script.server = await asyncio.start_server(script.handle, "127.0.0.1", 0)
        made.append(script)
        return script

    yield make
    for script in made:
        assert script.server is not None
        script.server.close()


