"""`gateway check-config` judges a file's shape where its secrets are absent (CI, a laptop)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
BARE_ENV = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(ROOT)}   # no secret, no GATEWAY_* variable


def check(path: Path, *extra: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gateway", "check-config", "--config", str(path), *extra], check=False,
                          cwd=cwd, capture_output=True, text=True, timeout=60, env=BARE_ENV)


def shipped_configs(tmp_path: Path) -> list[Path]:
    """config/*.yaml, deploy/config/*.yaml (compose's), deploy/docker/*.yaml (the image's default),
    and the config each Kubernetes ConfigMap embeds."""
    files = [path for folder in ("config", "deploy/config", "deploy/docker")
             for path in sorted((ROOT / folder).glob("*.yaml"))]
    for manifest in sorted((ROOT / "deploy" / "kubernetes").glob("*.yaml")):
        for doc in yaml.safe_load_all(manifest.read_text()):
            if doc and doc.get("kind") == "ConfigMap":
                for name, text in doc["data"].items():
                    embedded = tmp_path / f"{manifest.stem}-{name}"
                    embedded.write_text(text)
                    files.append(embedded)
    return files


def test_every_shipped_config_passes_without_its_environment(tmp_path: Path) -> None:
    files = shipped_configs(tmp_path)
    assert len(files) >= 6 and any(f.name.startswith("configmap-") for f in files)
    assert ROOT / "deploy" / "docker" / "gateway.yaml" in files
    for path in files:
        result = check(path)
        assert result.returncode == 0, f"{path}: {result.stderr}"
        assert result.stdout.startswith(f"{path}: ok"), result.stdout
    notes = check(tmp_path / "configmap-gateway.yaml").stdout
    assert "store.url: not checked: uses GATEWAY_STORE_URL, not set here" in notes
    assert "ratelimit.redis_url: not checked: uses GATEWAY_REDIS_URL" in notes


def test_require_env_refuses_unset_variables_as_run_does(tmp_path: Path) -> None:
    result = check(ROOT / "deploy" / "config" / "gateway.yaml", "--require-env")
    assert result.returncode == 2
    assert result.stderr.splitlines() == ["store.url: environment variable POSTGRES_PASSWORD is not set"]


@pytest.mark.parametrize("text, expected", [
    # the rest of the file is still checked beside a value left unchecked
    ("server: {port: '${PORT}', tls: {self_signed: true}, workers: 0}\n",
     ["server.workers: must be an integer between 1 and 256"]),
    # a rule that reads a placeholder is skipped, the others still run
    (("server: {tls: {self_signed: true}}\nkeys: {min_validity_days: '${MIN}'}\n"
      "routes: [{name: gateway, path: /a, upstream: 'http://${HOST}:1'}]\n"),
     ["routes[0].name: is the audience of exchange tokens (tokens.audience)"]),
])
def test_values_beside_unset_variables_are_still_checked(tmp_path: Path, text: str, expected: list[str]) -> None:
    path = tmp_path / "gateway.yaml"
    path.write_text(text)
    result = check(path, cwd=tmp_path)
    assert (result.returncode, result.stderr.splitlines()) == (2, expected)
