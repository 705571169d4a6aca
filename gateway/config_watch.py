"""`server.watch_config`: reload when the config file changes, as SIGHUP does, without a signal.

How it notices: every `server.watch_interval` seconds the event loop `stat`s the watched files
(the config file and the upstream TLS files it names) and compares their identity and metadata
(device, inode, size, modification and change times). No thread, no read of the file, microseconds
per look: cheaper than a thread blocked on inotify, which the standard library does not offer, and
the same on every platform and filesystem (inotify misses changes on NFS and some container
mounts). `stat` follows symbolic links, so the two ways files are replaced are both seen: an
editor's or `kubectl`'s write-then-rename (a new inode), and a Kubernetes ConfigMap or Secret
volume's swap of its `..data` link (the target changes), as well as a write in place.

Debounced: a change is applied only once the files have stayed as they are for one more look, so
a file caught half-written is not loaded (and an editor's several writes make one reload). The
reload is the SIGHUP one (`Reloader.reload_logged`): a broken file is logged with every problem
and the running configuration stays; it is not retried until the files change again.

With `server.workers` > 1 each worker is a whole gateway and watches for itself: no signal has to
reach it from the supervisor, and each one refuses a broken file on its own, as it would on SIGHUP.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable, Iterable, Mapping

from gateway.config import Config
from gateway.reload import Reloader
from gateway.tasks import cancel_and_wait

log = logging.getLogger("gateway.reload")

Stamp = tuple[int, int, int, int, int] | None  # (dev, ino, size, mtime_ns, ctime_ns); None: missing
Stamps = Mapping[str, Stamp]


def stamp(path: str) -> Stamp:
    try:
        st = os.stat(path)
    except OSError:  # missing (mid-replace by some tools) or unreadable: a state like any other
        return None
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def watched_files(cfg: Config) -> list[str]:
    """The config file and the files a reload reads again (the upstream TLS files)."""
    paths = [cfg.source] if cfg.source else []
    for route in cfg.routes:
        for tls in (route.upstream_tls, route.sandbox_upstream_tls):
            if tls is not None:
                paths += [p for p in tls.files if p]
    return list(dict.fromkeys(paths))


def stamps(paths: Iterable[str]) -> dict[str, Stamp]:
    return {path: stamp(path) for path in paths}


class ConfigWatcher:
    """Looks at the files every `interval` seconds and reloads once a change has settled."""

    def __init__(self, reloader: Reloader, current: Callable[[], Config], interval: float) -> None:
        self._reloader = reloader
        self._current = current
        self._interval = interval
        self._seen: Stamps = stamps(watched_files(current()))
        self._pending: Stamps | None = None   # a change seen at the last look, not applied yet
        self._task: asyncio.Task[None] | None = None

    def look(self) -> bool:
        """One look; True when it reloaded (or tried to). A change is applied at the first look
        that finds the files as the previous look did."""
        now = stamps(watched_files(self._current()))
        if now == self._seen:
            self._pending = None
            return False
        if now != self._pending:
            self._pending = now  # still changing, or just changed: one more look first
            return False
        changed = sorted(p for p in now.keys() | self._seen.keys() if now.get(p) != self._seen.get(p))
        log.info("config files changed: reloading", extra={"files": changed})
        self._reloader.reload_logged()
        self._pending = None
        # what the configuration now running names: the stamps just judged for the files it shares
        # with the old one (a change since then is seen at the next look), fresh ones for the rest
        self._seen = {p: now[p] if p in now else stamp(p) for p in watched_files(self._current())}
        return True

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        await cancel_and_wait(self._task)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)  # a period, not synchronisation
            try:
                self.look()
            except Exception:  # the watch must not die of one bad look; the next one tries again
                log.exception("watching the config file failed")
