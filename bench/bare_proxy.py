"""The obvious aiohttp reverse proxy, for comparison: TLS, uvloop, streaming, nothing else.

    python bench/bare_proxy.py PORT UPSTREAM_URL CERT KEY
"""

import asyncio
import ssl
import sys

import aiohttp
import uvloop
from aiohttp import web

HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "host"}


async def main(port: int, upstream: str, cert: str, key: str) -> None:
    session = aiohttp.ClientSession(auto_decompress=False, connector=aiohttp.TCPConnector(limit=0))

    async def proxy(request: web.Request) -> web.StreamResponse:
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP}
        async with session.request(request.method, upstream + request.path_qs, headers=headers,
                                   data=request.content if request.body_exists else None) as up:
            response = web.StreamResponse(status=up.status, headers={
                k: v for k, v in up.headers.items() if k.lower() not in HOP})
            await response.prepare(request)
            async for chunk in up.content.iter_chunked(65536):
                await response.write(chunk)
            await response.write_eof()
            return response

    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(cert, key)
    runner = web.ServerRunner(web.Server(proxy), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port, ssl_context=tls).start()
    await asyncio.Event().wait()


if __name__ == "__main__":
    uvloop.run(main(int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]))
