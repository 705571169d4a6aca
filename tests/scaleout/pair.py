"""Two gateway processes as a scaled-out deployment runs them: one store, one Redis, each its own ports."""

from __future__ import annotations

import json
from contextlib import AsyncExitStack
from pathlib import Path

from tests.cli.test_run import ENV, free_port
from tests.conftest import base_config
from tests.processes import GatewayProcess, start_gateway_process
from tests.services import REDIS, postgres_url


async def start_pair(stack: AsyncExitStack, tmp_path: Path, server_cert: tuple[str, str], upstream_url: str, tag: str, *,
                     workers: int = 1) -> tuple[list[tuple[int, int]], list[GatewayProcess]]:
    """Instances a and b (killed when `stack` closes), sharing the store's invalidation channel and the
    rate limits' Redis prefix under `tag`, routing `/api` to the upstream: their (proxy, admin) ports."""
    ports = []
    procs = []
    for name in ("a", "b"):
        port, admin = free_port(), free_port()
        ports.append((port, admin))
        cfg = base_config(tmp_path / name, server_cert, server={"port": port, "workers": workers},
                          admin={"port": admin},
                          store={"url": postgres_url(tmp_path), "invalidation_channel": f"gwtest:{tag}:inv"},
                          ratelimit={"backend": "redis", "redis_url": REDIS, "redis_prefix": f"gwtest:{tag}:"},
                          routes=[{"name": "api", "path": "/api", "upstream": upstream_url}])
        (tmp_path / name).mkdir()
        path = tmp_path / name / "gateway.yaml"
        path.write_text(json.dumps(cfg))
        running = await start_gateway_process(path, path.parent, ENV, workers=workers)
        procs.append(running)
        stack.push_async_callback(running.kill)
    return ports, procs
