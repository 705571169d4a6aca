"""The floor: what a CPython proxy costs per request here when it does nothing but forward.

    python bench/floor_proxy.py PORT UPSTREAM_PORT CERT KEY

asyncio Protocols and httptools on both sides, uvloop, TLS on the listener, keep-alive to the
upstream: the shape of the gateway's own forwarding path with every feature taken out, and with
the corners cut that only a benchmark may cut (GET-style requests without bodies, responses with
a Content-Length, no timeouts, no pipelining, no header checks). Not a proxy to run: a measure of
how much of the gateway's CPU per request is CPython and the event loop rather than its work.
"""

import asyncio
import ssl
import sys

import httptools
import uvloop

HOP = frozenset({b"connection", b"keep-alive", b"transfer-encoding", b"te", b"trailer", b"upgrade", b"host"})


class Upstream(asyncio.Protocol):
    def __init__(self, pool: list["Upstream"]) -> None:
        self.pool = pool
        self.parser = httptools.HttpResponseParser(self)
        self.client: Client | None = None
        self.transport: asyncio.Transport | None = None
        self.fields: list[bytes] = []
        self.body: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.parser.feed_data(data)

    def on_header(self, name: bytes, value: bytes) -> None:
        if name.lower() not in HOP:
            self.fields.append(name + b": " + value)

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        client, self.client = self.client, None
        head = b"HTTP/1.1 %d OK\r\n" % self.parser.get_status_code() + b"\r\n".join(self.fields)
        body = b"".join(self.body)
        self.fields, self.body = [], []
        self.pool.append(self)
        if client is not None and client.transport is not None:
            client.transport.write(head + b"\r\n\r\n" + body)

    def connection_lost(self, exc: Exception | None) -> None:
        if self in self.pool:
            self.pool.remove(self)


class Client(asyncio.Protocol):
    def __init__(self, proxy: "Proxy") -> None:
        self.proxy = proxy
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.url = b""
        self.fields: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None

    def data_received(self, data: bytes) -> None:
        self.parser.feed_data(data)

    def on_url(self, url: bytes) -> None:
        self.url = url

    def on_header(self, name: bytes, value: bytes) -> None:
        if name.lower() not in HOP:
            self.fields.append(name + b": " + value)

    def on_message_complete(self) -> None:
        head = b"%s %s HTTP/1.1\r\nHost: upstream\r\n%s\r\n\r\n" % (
            self.parser.get_method(), self.url, b"\r\n".join(self.fields))
        self.fields = []
        self.proxy.forward(self, head)


class Proxy:
    def __init__(self, upstream_port: int) -> None:
        self.port = upstream_port
        self.pool: list[Upstream] = []

    def forward(self, client: Client, head: bytes) -> None:
        if self.pool:
            self._send(self.pool.pop(), client, head)
        else:
            asyncio.get_running_loop().create_task(self._connect(client, head))

    async def _connect(self, client: Client, head: bytes) -> None:
        _, upstream = await asyncio.get_running_loop().create_connection(
            lambda: Upstream(self.pool), "127.0.0.1", self.port)
        self._send(upstream, client, head)

    @staticmethod
    def _send(upstream: Upstream, client: Client, head: bytes) -> None:
        upstream.client = client
        assert upstream.transport is not None
        upstream.transport.write(head)


async def main(port: int, upstream_port: int, cert: str, key: str) -> None:
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(cert, key)
    proxy = Proxy(upstream_port)
    server = await asyncio.get_running_loop().create_server(lambda: Client(proxy), "127.0.0.1", port, ssl=tls)
    await server.serve_forever()


if __name__ == "__main__":
    uvloop.run(main(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]))
