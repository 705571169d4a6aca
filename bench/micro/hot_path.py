"""Micro-benchmarks of the per-request work, on a real gateway's own objects (run by hand).

    python bench/micro/hot_path.py            # memory limiter, cached auth, token verification
    python bench/micro/hot_path.py --redis    # also the Redis limiter against 127.0.0.1:6379

Each line is the mean cost of one operation over many repetitions in one process, so it measures
the gateway's code, not the network. The targets from the issues are printed beside the numbers.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from aiohttp.test_utils import make_mocked_request  # noqa: E402

from gateway.accounts.actors import Actor  # noqa: E402
from gateway.app import Gateway  # noqa: E402
from gateway.config import parse_config  # noqa: E402
from gateway.credentials.parse import Credential, extract  # noqa: E402
from gateway.exchange import RequestScope  # noqa: E402
from gateway.observability.accesslog import AccessLog  # noqa: E402
from gateway.observability.observer import RequestObserver  # noqa: E402
from gateway.ratelimit.memory import MemoryRateLimiter  # noqa: E402
from gateway.routing import Upstream  # noqa: E402

BENCH = Actor("bench")
ADMIN_TOKEN = "bench-admin-token-0123456789abcdef"


def report(name: str, seconds: float, n: int, target: str = "") -> None:
    per_op = seconds / n * 1e6
    print(f"{name:<48} {per_op:9.2f} µs/op {n / seconds:12,.0f} op/s   {target}")


def timed(fn: Callable[[], object], n: int) -> float:
    gc.collect()
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return time.perf_counter() - start


async def timed_async(fn: Callable[[], Awaitable[object]], n: int) -> float:
    gc.collect()
    start = time.perf_counter()
    for _ in range(n):
        await fn()
    return time.perf_counter() - start


def bench_memory_limiter(n: int) -> None:
    limiter = MemoryRateLimiter()
    keys = [f"k:{i}" for i in range(10_000)]
    one = [[(k, 1_000_000)] for k in keys]
    two = [[(k, 1_000_000), (f"r:{k}:route", 1_000_000)] for k in keys]
    it = iter(range(n * 3))
    report("memory limiter, one bucket", timed(lambda: limiter.hit_sync(one[next(it) % 10_000]), n), n,
           "target ≤ 3 µs")
    report("memory limiter, key + route buckets", timed(lambda: limiter.hit_sync(two[next(it) % 10_000]), n), n,
           "target ≤ 3 µs")


async def bench_redis_limiter(n: int, concurrency: int) -> None:
    """Each caller cycles over 100 keys of its own, as the 64 connections of 64 clients would."""
    from gateway.ratelimit.leased import LeasedRedisRateLimiter
    from gateway.ratelimit.redis import RedisRateLimiter

    per_task = n // concurrency
    for name, kind in (("a Redis step per decision", RedisRateLimiter), ("leased permits", LeasedRedisRateLimiter)):
        limiter = kind(url="redis://127.0.0.1:6379/0", prefix=f"gw:bench:{os.getpid()}:{kind.__name__}:")
        try:
            await limiter.ping()
            if isinstance(limiter, LeasedRedisRateLimiter):
                await limiter.listening()

            async def worker(w: int, limiter: RedisRateLimiter = limiter, keys: int = 100) -> None:
                for i in range(per_task):
                    await limiter.hit([(f"k:{w}:{i % keys}", 10_000_000)])

            for keys, label in ((100, "100 keys each"), (1, "one busy key each")):
                start = time.perf_counter()
                await asyncio.gather(*(worker(w, keys=keys) for w in range(concurrency)))
                elapsed = time.perf_counter() - start
                report(f"redis limiter, {name}, {concurrency} callers, {label}", elapsed, per_task * concurrency,
                       str(getattr(limiter, "lease_stats", "")))
        finally:
            await limiter.close()


async def start_gateway(data_dir: str) -> Gateway:
    cfg = parse_config(
        {
            "server": {"host": "127.0.0.1", "port": 0, "tls": {"self_signed": True}},
            "data_dir": data_dir,
            "admin": {"host": "127.0.0.1", "port": 0},
            "store": {"url": f"sqlite:///{data_dir}/gateway.db"},
            "plans": {"bench": {"requests_per_minute": 10_000_000}},
            "routes": [{"name": "api", "path": "/api/v1/items/{item}", "upstream": "http://127.0.0.1:9"}],
        },
        env={},
    )
    gateway = Gateway(cfg, admin_token=ADMIN_TOKEN)
    await gateway.start()
    return gateway


async def bench_gateway(n: int) -> None:
    with tempfile.TemporaryDirectory() as data_dir:
        gw = await start_gateway(data_dir)
        try:
            accounts, guard, tokens = gw.accounts, gw.guard, gw.tokens
            assert accounts and guard and tokens
            await accounts.create_tenant({"id": "bench", "name": "Bench", "plan": "bench"}, BENCH)
            key, secret = await accounts.create_key({"tenant_id": "bench", "name": "bench", "scope": "read_write"},
                                                    BENCH)
            request = make_mocked_request("GET", "/api/v1/items/42", headers={"X-API-Key": secret})
            match = gw.routes.match("GET", "/api/v1/items/42")
            credential = extract(request.headers, match.route.auth)
            await guard.identify(credential)  # warm the cache: the hot path is a cache hit

            def one_request() -> object:
                return guard(request, RequestScope("r", 0.0), match)  # the upstream itself: nothing awaited

            assert isinstance(one_request(), Upstream)
            report("cached API-key auth: identify", await timed_async(lambda: guard.identify(credential), n), n)
            report("cached API-key auth: whole access step", timed(one_request, n), n,
                   "(header, hash, cache, scope, limit, headers, identity JWT)")

            scope = RequestScope("r" * 32, time.perf_counter(), method="GET", path="/api/v1/items/42",
                                 client_ip="127.0.0.1", route=match.route, auth_method="api_key", status=200,
                                 upstream_started=time.perf_counter())
            scope.identity = await guard.identify(credential)
            report("metrics: one request observed", timed(lambda: gw.metrics.observe(scope, time.perf_counter()), n), n)
            assert gw.recorder is not None
            access_log = AccessLog(write=lambda text: None)  # rendered and batched as shipped, written nowhere
            observer = RequestObserver(None, gw.recorder, gw.cfg.logging, access_log)
            report("request record: made once for both logs",
                   timed(lambda: observer.record(scope, time.perf_counter()), n), n)
            record = observer.record(scope, time.perf_counter())
            report("access log: one line rendered and buffered", timed(lambda: access_log.request(record), n), n)
            report("call log: one row buffered", timed(lambda: gw.recorder.call(record), n), n)

            token, _ = tokens.mint({"sub": key.id}, ttl=3600)
            jwt_credential = Credential("bearer", token, is_jwt=True)
            await guard.identify(jwt_credential)
            report("JWT, repeated token: verify + revocation check",
                   await timed_async(lambda: guard.identify(jwt_credential), n), n, "target ≤ 60 µs")
            fresh = [Credential("bearer", tokens.mint({"sub": key.id}, ttl=3600)[0], is_jwt=True)
                     for _ in range(min(n, 5_000))]
            it = iter(fresh)
            report(f"JWT, new token ({tokens.algorithm}): verify + revocation check",
                   await timed_async(lambda: guard.identify(next(it)), len(fresh)), len(fresh), "target ≤ 60 µs")
        finally:
            await gw.stop()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=200_000, help="repetitions per measurement")
    parser.add_argument("--redis", action="store_true", help="also measure the Redis limiter")
    args = parser.parse_args()
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cpus, n={args.n}")
    bench_memory_limiter(args.n)
    await bench_gateway(args.n // 4)
    if args.redis:
        await bench_redis_limiter(min(args.n, 100_000), 64)


if __name__ == "__main__":
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(main())
