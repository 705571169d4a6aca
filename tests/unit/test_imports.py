"""Every module of the package imports on its own, in a fresh interpreter (no import cycle bites)."""

from __future__ import annotations

import os
import pkgutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import gateway


def modules() -> list[str]:
    """Every module but `gateway.__main__`, which runs the command line when imported."""
    return sorted(m.name for m in pkgutil.walk_packages(gateway.__path__, "gateway.") if m.name != "gateway.__main__")


def test_every_module_imports_alone_in_a_fresh_interpreter() -> None:
    names = modules()
    assert "gateway.config.sections" in names and len(names) > 50

    def attempt(name: str) -> tuple[str, int, str]:
        run = subprocess.run([sys.executable, "-c", f"import {name}"], check=False, capture_output=True, text=True, timeout=120)
        return name, run.returncode, run.stderr.strip()[-300:]

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        failed = [(name, err) for name, rc, err in pool.map(attempt, names) if rc != 0]
    assert failed == []
