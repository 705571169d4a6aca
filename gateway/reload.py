"""Hot reload of routes and plans (SIGHUP, or `POST /admin/reload`) without dropping a request.

A reload reads the same file again, validates all of it, and only then swaps in the new route
table and plan limits: a request already routed finishes on the table it matched, the next one
uses the new table. A broken file changes nothing and reports every problem. Other sections
(listeners, store, TLS, ...) need a restart; a reload that finds them changed says so.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from typing import Any

from gateway.config import Config, ConfigError, load_config
from gateway.tls import TLSError

log = logging.getLogger("gateway.reload")

RELOADABLE = frozenset({"routes", "plans", "source"})


@dataclasses.dataclass(frozen=True)
class Reloaded:
    routes: int
    plans: list[str]
    not_applied: list[str]   # changed sections that only a restart applies


class Reloader:
    def __init__(self, current: Callable[[], Config], apply: Callable[[Config], None], *,
                 others: Callable[[], None] | None = None) -> None:
        self._current = current
        self._apply = apply
        self._others = others  # several workers: has the supervisor reload every worker (SIGHUP)

    def reload(self) -> Reloaded:
        """Raise ConfigError (nothing changed) or apply and describe the new configuration."""
        old = self._current()
        if old.source is None:
            raise ConfigError(["(config): this gateway was not started from a file"])
        new = load_config(old.source)
        try:
            self._apply(dataclasses.replace(old, routes=new.routes, plans=new.plans))
        except TLSError as exc:  # an upstream's TLS file changed since it was checked: nothing applied
            raise ConfigError([str(exc)]) from None
        skipped = [f.name for f in dataclasses.fields(Config)
                   if f.name not in RELOADABLE and getattr(old, f.name) != getattr(new, f.name)]
        result = Reloaded(routes=len(new.routes), plans=sorted(new.plans), not_applied=skipped)
        log.info("config reloaded", extra={"routes": result.routes, "plans": result.plans,
                                           "not_applied": skipped})
        if skipped:
            log.warning("reload applies routes and plans only; restart to apply the rest",
                        extra={"sections": skipped})
        return result

    def reload_all(self) -> Reloaded:
        """For `POST /admin/reload`, which reaches one worker: this process (its result is the
        answer), then, once the file proved good, every worker through the supervisor."""
        result = self.reload()
        if self._others is not None:
            self._others()
        return result

    def reload_logged(self) -> None:
        """For SIGHUP: a broken file is logged, field by field, and the running config stays."""
        try:
            self.reload()
        except ConfigError as err:
            log.error("config reload refused; the running configuration stays",
                      extra={"problems": err.problems})


def problems_as_details(err: ConfigError) -> list[dict[str, Any]]:
    details = []
    for problem in err.problems:
        field, _, issue = problem.partition(": ")
        details.append({"field": field, "issue": issue or problem})
    return details
