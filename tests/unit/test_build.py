"""Which build runs: `gateway --version` names it, and the compiled list names real modules.

CI runs part of the suite against the compiled build (`GATEWAY_COMPILE=1 pip install .`) with
GATEWAY_EXPECTED_BUILD=compiled; everywhere else the install is pure Python."""

from __future__ import annotations

import fnmatch
import os
import subprocess
import sys
import tomllib
from pathlib import Path

from gateway.build import HOT_MODULES

ROOT = Path(__file__).resolve().parents[2]


def test_version_says_which_build_runs(tmp_path: Path) -> None:
    # the venv's own `gateway` script, away from the checkout: the installed package, compiled or not
    script = Path(sys.executable).parent / "gateway"
    out = subprocess.run([str(script), "--version"], cwd=tmp_path, capture_output=True, text=True, timeout=60, check=True)
    expected = os.environ.get("GATEWAY_EXPECTED_BUILD", "pure")
    build = f"compiled: {len(HOT_MODULES)} modules" if expected == "compiled" else "pure Python"
    assert out.stdout == f"gateway 0.1.0 ({build})\n"


def test_each_listed_module_is_a_source_file_setup_py_can_compile() -> None:
    assert len(set(HOT_MODULES)) == len(HOT_MODULES)
    for name in HOT_MODULES:
        assert (ROOT / (name.replace(".", "/") + ".py")).is_file(), name


def test_every_file_the_package_reads_is_installed_by_a_regular_install() -> None:
    """A regular install (the compiled build, the Docker image) copies only the sources and
    package-data; an editable one reads the checkout and would not notice a file left out."""
    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["gateway"]
    package = ROOT / "gateway"
    data = [p.relative_to(package).as_posix() for p in package.rglob("*")
            if p.is_file() and p.suffix not in (".py", ".pyc", ".so") and "__pycache__" not in p.parts]
    assert data and [f for f in data if not any(fnmatch.fnmatchcase(f, pattern) for pattern in patterns)] == []
