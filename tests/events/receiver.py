"""A webhook receiver as a customer would write one: a real aiohttp server that verifies every
delivery with the `standardwebhooks` library (never the gateway's own signing code)."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from standardwebhooks.webhooks import Webhook, WebhookVerificationError


@dataclass
class Received:
    id: str
    timestamp: str
    signature: str
    body: bytes
    verified: bool
    status: int  # what the receiver answered

    @property
    def payload(self) -> dict[str, Any]:
        return json.loads(self.body)  # type: ignore[no-any-return]


@dataclass
class Receiver:
    """`answers`: the statuses of the first requests, in order (then 200 for ever); `hang`
    holds requests until released."""

    secret: str | None = None
    answers: list[int] = field(default_factory=list)
    redirect_to: str | None = None
    hang: bool = False
    got: list[Received] = field(default_factory=list)
    url: str = ""
    _changed: asyncio.Event = field(default_factory=asyncio.Event)
    release: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        headers = dict(request.headers)
        verified = False
        if self.secret is not None:
            try:
                Webhook(self.secret).verify(body, headers)
                verified = True
            except WebhookVerificationError:
                verified = False
        status = self.answers.pop(0) if self.answers else 200
        if self.redirect_to is not None:
            status = 307
        received = Received(headers.get("webhook-id", ""), headers.get("webhook-timestamp", ""),
                            headers.get("webhook-signature", ""), body, verified,
                            0 if self.hang else status)  # 0: no answer (yet)
        self.got.append(received)
        self._changed.set()
        if self.hang:
            await self.release.wait()
            received.status = status
        if self.redirect_to is not None:
            raise web.HTTPTemporaryRedirect(self.redirect_to)
        return web.Response(status=status, text="ok" if status < 300 else "not now")

    async def wait_for(self, predicate: Any, timeout: float = 20.0) -> None:
        async def until() -> None:
            while not predicate(self):
                self._changed.clear()
                await self._changed.wait()

        try:
            await asyncio.wait_for(until(), timeout)
        except TimeoutError:
            raise AssertionError(f"receiver: condition not met within {timeout} s; got {len(self.got)}: "
                                 f"{[(r.id, r.status) for r in self.got[-5:]]}") from None

    async def wait_count(self, count: int, timeout: float = 20.0) -> None:
        await self.wait_for(lambda r: len(r.got) >= count, timeout)

    def delivered(self) -> list[Received]:
        return [r for r in self.got if 200 <= r.status < 300]

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("POST", "/{tail:.*}", self.handle)
        return app


async def start_receiver(aiohttp_server: Any, receiver: Receiver | None = None) -> Receiver:
    receiver = receiver or Receiver()
    server = await aiohttp_server(receiver.app())
    receiver.url = f"http://127.0.0.1:{server.port}/hooks"
    return receiver
