"""Real upstreams that read paths leniently, on 127.0.0.1: a Django site routing with
`re_path(r"(?i)...")` (Python's `re` ignoring case, Unicode-aware) served by wsgiref in a thread,
and nginx in front of an app with `proxy_pass http://app$uri$is_args$args` (the decoded path)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from tests.services import require_service

# the views Django served, by name, for the tests to read
DJANGO_VIEWS: list[str] = []


def _view(name: str) -> Any:
    from django.http import JsonResponse

    def view(request: Any, *args: Any, **kwargs: Any) -> Any:
        DJANGO_VIEWS.append(name)
        return JsonResponse({"view": name, "path": request.path})

    return view


def _urlpatterns() -> list[Any]:
    from django.urls import re_path

    return [
        re_path(r"(?i)^api/v1/visitors(?:/.*)?$", _view("visitors")),  # the protected API
        re_path(r"^", _view("site")),                                  # everything else is public
    ]


urlpatterns: list[Any] = []  # this module is Django's ROOT_URLCONF; filled at setup


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        pass


class _Threaded(ThreadingMixIn, WSGIServer):
    daemon_threads = True


def django_site() -> Iterator[str]:
    """A Django site on an ephemeral port; yields its base URL."""
    import django
    from django.conf import settings

    if not settings.configured:
        settings.configure(
            DEBUG=False, ALLOWED_HOSTS=["*"], ROOT_URLCONF=__name__, SECRET_KEY="tests-only-" + "x" * 40,
            MIDDLEWARE=[], INSTALLED_APPS=[], USE_TZ=True,
        )
        urlpatterns[:] = _urlpatterns()
        django.setup()
    from django.core.wsgi import get_wsgi_application

    server = make_server("127.0.0.1", 0, get_wsgi_application(), server_class=_Threaded, handler_class=_Quiet)
    thread = threading.Thread(target=server.serve_forever, name="django-site", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def _free_port() -> int:
    from tests.services import free_port

    return free_port()  # below the ephemeral range: see there why


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


NGINX_CONF = """
daemon off;
master_process off;
worker_processes 1;
pid {base}/nginx.pid;
error_log {base}/error.log warn;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {base}/body;
    proxy_temp_path {base}/proxy;
    fastcgi_temp_path {base}/fastcgi;
    uwsgi_temp_path {base}/uwsgi;
    scgi_temp_path {base}/scgi;
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://{app}$uri$is_args$args;
        }}
    }}
}}
"""


def nginx_in_front_of(app: str, base: Path) -> Iterator[str]:
    """nginx on an ephemeral port passing the decoded path (`$uri`) to `app` (host:port); yields
    its base URL. Skipped where nginx is not installed, unless GATEWAY_REQUIRE_SERVICES=1."""
    binary = shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if Path(p).exists()), None)
    require_service("nginx", binary is not None, "no nginx binary on PATH or in /usr/sbin")
    assert binary is not None
    base.mkdir(parents=True, exist_ok=True)
    for _attempt in range(3):  # the port is picked free, then bound by nginx: another may take it between
        port = _free_port()
        conf = base / "nginx.conf"
        conf.write_text(NGINX_CONF.format(base=base, port=port, app=app))
        proc = subprocess.Popen([binary, "-p", str(base), "-c", str(conf), "-e", str(base / "error.log")],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 10
        while proc.poll() is None and not _answers(port) and time.monotonic() < deadline:
            time.sleep(0.02)  # polling for readiness, not standing in for it
        if proc.poll() is None and _answers(port):
            break
        proc.kill()
        proc.wait()
    else:
        raise RuntimeError(f"nginx did not start: {(base / 'error.log').read_text(errors='replace')}")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
