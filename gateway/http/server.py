"""The proxy listener: accepts client connections (`connection.py`) on a bound socket, with TLS
or plain behind a trusted proxy, and stops them gracefully: no new connections, idle ones closed,
requests in flight given `server.grace_period`, then whatever is left cut.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl

from gateway.http.connection import ClientConnection, Handler, Limits

log = logging.getLogger("gateway.proxy")


class HttpServer:
    """The listener: accepts connections and keeps count of them for a graceful stop."""

    def __init__(self, handler: Handler, limits: Limits) -> None:
        self.handler = handler
        self.limits = limits
        self.loop = asyncio.get_running_loop()
        self.connections: set[ClientConnection] = set()
        self._server: asyncio.Server | None = None
        self._all_closed: asyncio.Event | None = None  # set during a stop, once none is left
        self.stopping = False

    async def start(self, sock: socket.socket, ssl_context: ssl.SSLContext | None) -> None:
        self._server = await self.loop.create_server(
            lambda: ClientConnection(self), sock=sock, ssl=ssl_context, backlog=1024
        )

    def forget(self, conn: ClientConnection) -> None:
        self.connections.discard(conn)
        if not self.connections and self._all_closed is not None:
            self._all_closed.set()

    def stop_accepting(self) -> None:
        if self._server is not None:
            self._server.close()

    async def shutdown(self, grace: float) -> None:
        """Let requests in flight finish within `grace`, then cut whatever is left."""
        self.stop_accepting()
        self.stopping = True
        self._all_closed = asyncio.Event()
        for conn in list(self.connections):
            conn.stop()
        if self.connections:
            try:
                await asyncio.wait_for(self._all_closed.wait(), grace)
            except TimeoutError:
                log.warning("%d connections still busy after the %ss grace period: cut", len(self.connections), grace)
        tasks = [task for conn in list(self.connections) if (task := conn.cut()) is not None]
        if tasks:
            await asyncio.wait(tasks, timeout=5)  # their cancellation still records each request
