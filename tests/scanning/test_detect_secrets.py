"""The detect-secrets plugin, through the real `detect-secrets scan` command: it reports a planted
key and not a near-miss whose checksum fails."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from gateway.credentials.keyformat import ALPHABET, generate_key

SECRET_TYPE = "Gateway API Key"


def near_miss(key: str) -> str:
    """The key with its last checksum character changed: the right shape, a wrong checksum."""
    return key[:-1] + ALPHABET[(ALPHABET.index(key[-1]) + 1) % len(ALPHABET)]


def plugin_path() -> str:
    run = subprocess.run([sys.executable, "-m", "gateway.scanning"], check=True, capture_output=True, text=True,
                         timeout=60)
    return run.stdout.strip()


def scan(directory: Path) -> dict[str, Any]:
    command = Path(sys.executable).with_name("detect-secrets")  # the one installed next to this interpreter
    run = subprocess.run([str(command), "scan", "--all-files", "--plugin", plugin_path(), "."], cwd=directory,
                         check=True, capture_output=True, text=True, timeout=120, env={**os.environ})
    results: dict[str, Any] = json.loads(run.stdout)["results"]
    return results


def found(results: dict[str, Any]) -> dict[str, list[tuple[int, str]]]:
    """Per file, this plugin's findings as (line, hashed secret)."""
    return {name: [(f["line_number"], f["hashed_secret"]) for f in items if f["type"] == SECRET_TYPE]
            for name, items in results.items()}


def sha1(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()  # detect-secrets' `hashed_secret`


def test_scan_finds_the_planted_key_and_not_the_near_miss(tmp_path: Path) -> None:
    live, test_key = generate_key("gw", "live"), generate_key("acme", "test")
    (tmp_path / "settings.py").write_text(f'API_KEY = "{live}"\n# a sandbox key of another gateway\nX = "{test_key}"\n')
    (tmp_path / "near_miss.py").write_text(f'API_KEY = "{near_miss(generate_key("gw", "live"))}"\n')
    (tmp_path / "longer.txt").write_text(f"token={generate_key('gw', 'live')}x\n")  # inside a longer run
    result = found(scan(tmp_path))
    assert result.get("settings.py") == [(1, sha1(live)), (3, sha1(test_key))]
    assert result.get("near_miss.py", []) == []
    assert result.get("longer.txt", []) == []


def test_the_printed_path_is_the_module() -> None:
    import gateway.scanning

    assert Path(plugin_path()) == Path(gateway.scanning.__file__)
    run = subprocess.run([sys.executable, "-m", "gateway.scanning", "--pattern", "acme"], check=True,
                         capture_output=True, text=True, timeout=60)
    assert run.stdout.strip() == "acme_(?:live|test)_[0-9A-Za-z]{38}"


def test_the_plugin_loads_none_of_the_gateways_runtime() -> None:
    """A repository's scan needs detect-secrets and the key format, not the server's dependencies."""
    runtime = ["aiohttp", "aiosqlite", "argon2", "cryptography", "jwt", "multidict", "prometheus_client", "pydantic",
               "yaml"]
    code = f"import sys, gateway.scanning; print(sorted({{m.split('.')[0] for m in sys.modules}} & set({runtime!r})))"
    run = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True, timeout=60)
    assert run.stdout.strip() == "[]"


def test_the_pattern_needs_no_detect_secrets() -> None:
    """The README prints `python -m gateway.scanning --pattern` before the `scanning` extra is
    installed: without detect-secrets it prints the pattern, and the plugin's path is refused with one
    line saying what to install, never a traceback."""
    hidden = ("import runpy, sys; sys.modules['detect_secrets'] = None; sys.argv[1:] = sys.argv[1:]; "
              "runpy.run_module('gateway.scanning', run_name='__main__', alter_sys=True)")
    run = subprocess.run([sys.executable, "-c", hidden, "--pattern", "gw"], capture_output=True, text=True,
                         timeout=60)
    assert (run.returncode, run.stdout.strip(), run.stderr) == (0, "gw_(?:live|test)_[0-9A-Za-z]{38}", "")
    run = subprocess.run([sys.executable, "-c", hidden], capture_output=True, text=True, timeout=60)
    assert run.returncode == 2 and run.stdout == "" and "Traceback" not in run.stderr, run.stderr
    assert "detect-secrets is not installed" in run.stderr and ".[scanning]" in run.stderr
