"""A public `/` route must never carry a request to a protected route's view on a real upstream
that reads the path leniently: Django routing with `(?i)` (Unicode case folding in Python's `re`),
and nginx in between passing the decoded path (`%3F`, `%23` become a query or a fragment)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import aiohttp
import pytest
from aiohttp import web
from yarl import URL

from tests.conftest import proxy_url, read_json
from tests.lenient_upstreams import DJANGO_VIEWS, django_site, nginx_in_front_of


def site_and_visitors(site_upstream: str, visitors_upstream: str) -> list[dict[str, Any]]:
    return [
        {"name": "site", "path": "/", "upstream": site_upstream, "auth": []},
        {"name": "visitors", "path": "/api/v1/visitors", "upstream": visitors_upstream},
    ]


async def get(session: aiohttp.ClientSession, url: str) -> tuple[int, Any]:
    async with session.get(URL(url, encoded=True)) as resp:
        return resp.status, await read_json(resp)


@pytest.fixture(scope="module")
def django() -> Iterator[str]:
    yield from django_site()


# ſ (U+017F) and ı (U+0131) are `s` and `i` to Python's re ignoring case; İ (U+0130) is `i` too
UNICODE_SPELLINGS = ["/api/v1/vi%C5%BFitors", "/api/v1/vis%C4%B1tors", "/api/v1/v%C4%B0sitors",
                     "/api/v1/VI%C5%BFITORS/42"]


@pytest.mark.parametrize("path", UNICODE_SPELLINGS)
async def test_django_serves_the_protected_view_for_a_unicode_spelling_the_gateway_refuses(
    start_gateway, https, django, path
) -> None:
    async with aiohttp.ClientSession() as direct:  # what the attack reaches without the fix
        assert await get(direct, django + path) == (200, {"view": "visitors", "path": unquote(path)})
    gw = await start_gateway(routes=site_and_visitors(django, django))
    DJANGO_VIEWS.clear()
    status, body = await get(https, proxy_url(gw, path))
    assert (status, body["error"]["code"]) == (400, "BAD_REQUEST")
    assert DJANGO_VIEWS == []
    # the same site still serves what is public, and the protected view still wants a key
    assert await get(https, proxy_url(gw, "/about/caf%C3%A9")) == (200, {"view": "site", "path": "/about/café"})
    status, body = await get(https, proxy_url(gw, "/api/v1/visitors"))
    assert (status, body["error"]["code"]) == (401, "MISSING_CREDENTIALS")
    assert DJANGO_VIEWS == ["site"]


class App:
    """The application behind nginx: which of its views answered, and the path it saw."""

    def __init__(self) -> None:
        self.views: list[tuple[str, str]] = []

    def make(self) -> web.Application:
        def view(name: str) -> Any:
            async def handle(request: web.Request) -> web.Response:
                self.views.append((name, request.path))
                return web.json_response({"view": name, "path": request.path})
            return handle

        app = web.Application()
        app.router.add_route("*", "/api/v1/visitors", view("visitors"))
        app.router.add_route("*", "/api/v1/visitors/{tail:.*}", view("visitors"))
        app.router.add_route("*", "/{tail:.*}", view("site"))
        return app


@pytest.fixture
async def behind_nginx(aiohttp_server: Any, tmp_path: Path) -> AsyncIterator[tuple[str, App]]:
    app = App()
    server = await aiohttp_server(app.make())
    nginx = nginx_in_front_of(f"127.0.0.1:{server.port}", tmp_path / "nginx")
    url = await asyncio.to_thread(next, nginx)
    yield url, app
    await asyncio.to_thread(nginx.close)


@pytest.mark.parametrize("path", ["/api/v1/visitors%3Fa=1", "/api/v1/visitors%23x", "/api/v1/visitors%3F",
                                  "/api/v1/visitors%253Fa=1"])
async def test_an_encoded_query_or_fragment_mark_decoded_by_nginx_in_between_is_refused(
    start_gateway, https, behind_nginx, path
) -> None:
    nginx, app = behind_nginx
    if "%25" not in path:  # nginx decodes once: the doubly encoded one needs a second decoder
        async with aiohttp.ClientSession() as direct:
            status, body = await get(direct, nginx + path)
        assert (status, body["view"]) == (200, "visitors")  # what the attack reaches without the fix
        app.views.clear()
    gw = await start_gateway(routes=site_and_visitors(nginx, nginx))
    status, body = await get(https, proxy_url(gw, path))
    assert (status, body["error"]["code"]) == (400, "BAD_REQUEST")
    assert app.views == []
    # `?` anywhere else in a public path still goes through, and reaches the app as nginx reads it
    status, body = await get(https, proxy_url(gw, "/search/what%3Fq=1"))
    assert (status, body) == (200, {"view": "site", "path": "/search/what"})


@pytest.mark.parametrize("path", ["/api/v1/visitors%20", "/api/v1/visitors.", "/api/v1/visitors.xml/1",
                                  "/api/v1/visitors::$DATA", "/api/v1/visitors%3A%3A%24DATA"])
async def test_trailing_and_look_alike_segments_are_refused_end_to_end(start_gateway, https, upstream, path) -> None:
    url, state = upstream
    gw = await start_gateway(routes=site_and_visitors(url, url))
    status, body = await get(https, proxy_url(gw, path))
    assert (status, body["error"]["code"]) == (400, "BAD_REQUEST")
    assert state.hits == 0
