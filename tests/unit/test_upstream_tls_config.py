"""`upstream_tls` / `sandbox_upstream_tls`: refused when they do not fit the route or their files
cannot be used (one line each, at load, reload and check-config), and compiled into contexts that
routes naming the same files share."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import trustme
import yaml

from gateway.config import ConfigError, parse_config
from gateway.routing import RouteTable
from tests.cli.test_check_config import BARE_ENV, ROOT

MINIMAL = {"server": {"tls": {"self_signed": True}}}


def config(*routes: dict[str, Any]) -> dict[str, Any]:
    return {**MINIMAL, "routes": list(routes)}


def route(name: str, upstream: str = "https://10.0.0.5:8443", **more: Any) -> dict[str, Any]:
    return {"name": name, "path": f"/{name}", "upstream": upstream, **more}


def problems(data: object) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(data, env={})
    return info.value.problems


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    base = tmp_path_factory.mktemp("pki")
    ca = trustme.CA()
    ca.cert_pem.write_to_path(str(base / "ca.pem"))
    client = ca.issue_cert("client.example")
    client.cert_chain_pems[0].write_to_path(str(base / "client.crt"))
    client.private_key_pem.write_to_path(str(base / "client.key"))
    client.private_key_and_cert_chain_pem.write_to_path(str(base / "both.pem"))
    trustme.CA().issue_cert("x").private_key_pem.write_to_path(str(base / "other.key"))
    (base / "junk.pem").write_text("not a certificate\n")
    return {name: str(base / f"{name}") for name in ("ca.pem", "client.crt", "client.key", "both.pem",
                                                      "other.key", "junk.pem")} | {"missing": str(base / "nope.pem")}


def test_settings_that_do_not_fit_the_route_are_refused(files: dict[str, str]) -> None:
    assert problems(config(
        route("plain", "http://127.0.0.1:9000", upstream_tls={"ca_file": files["ca.pem"]}),
        route("nosandbox", sandbox_upstream_tls={"ca_file": files["ca.pem"]}),
        route("keyonly", upstream_tls={"key_file": files["client.key"]}),
        route("badname", upstream_tls={"server_name": "a b"}),
        route("typo", upstream_tls={"ca": files["ca.pem"]}),
    )) == [
        "routes[3].upstream_tls.server_name: must be a host name or IP address",
        "routes[4].upstream_tls.ca: unknown key",
        "routes[0].upstream_tls: needs an https:// upstream",
        "routes[1].sandbox_upstream_tls: needs an https:// sandbox_upstream",
        "routes[2].upstream_tls.key_file: needs cert_file",
    ]


def test_files_that_cannot_be_used_are_one_line_each(files: dict[str, str]) -> None:
    assert problems(config(
        route("missing", upstream_tls={"ca_file": files["missing"]}),
        route("junk", upstream_tls={"ca_file": files["junk.pem"]}),
        route("mismatch", upstream_tls={"cert_file": files["client.crt"], "key_file": files["other.key"]}),
        route("nokey", upstream_tls={"cert_file": files["client.crt"]}),
        route("sandbox", sandbox_upstream="https://10.0.0.6", sandbox_upstream_tls={"ca_file": files["junk.pem"]}),
    )) == [
        f"routes[0].upstream_tls: cannot load CA file {files['missing']}: No such file or directory",
        f"routes[1].upstream_tls: cannot load CA file {files['junk.pem']}: no certificate or crl found",
        f"routes[2].upstream_tls: cannot load client certificate {files['client.crt']} with key "
        f"{files['other.key']}: key values mismatch",
        f"routes[3].upstream_tls: cannot load client certificate {files['client.crt']}: no PEM certificate and key",
        f"routes[4].sandbox_upstream_tls: cannot load CA file {files['junk.pem']}: no certificate or crl found",
    ]


def test_routes_naming_the_same_files_share_one_context(files: dict[str, str]) -> None:
    mtls = {"ca_file": files["ca.pem"], "cert_file": files["client.crt"], "key_file": files["client.key"]}
    cfg = parse_config(config(
        route("a", upstream_tls=mtls),
        route("b", upstream_tls={**mtls, "server_name": "b.internal"},
              sandbox_upstream="https://10.0.0.6", sandbox_upstream_tls=mtls),
        route("c", upstream_tls={"ca_file": files["ca.pem"]}),
        route("d", upstream_tls={"cert_file": files["both.pem"]}),  # the key in the certificate's file
        route("e"),
    ), env={})
    a, b, c, d, e = RouteTable(cfg.routes).routes
    assert a.upstream.ssl_context is not None
    assert a.upstream.ssl_context is b.upstream.ssl_context is b.sandbox_upstream.ssl_context
    assert c.upstream.ssl_context not in (None, a.upstream.ssl_context)
    assert d.upstream.ssl_context is not None
    assert (e.upstream.ssl_context, e.upstream.server_name) == (None, None)  # the pool's: the system's CAs
    assert (a.upstream.server_name, b.upstream.server_name, b.sandbox_upstream.server_name) == (None, "b.internal", None)
    # a different client certificate or name is a different policy (two routes are never mixed up)
    assert len({a.policy, b.policy, c.policy}) == 3
    again = RouteTable(cfg.routes).routes[0]  # a reload: made anew, so rotated files are read
    assert again.upstream.ssl_context is not a.upstream.ssl_context


def test_check_config_names_a_broken_file_and_skips_one_named_by_an_unset_variable(
    files: dict[str, str], tmp_path: Path
) -> None:
    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump(config(
        route("broken", upstream_tls={"ca_file": files["junk.pem"]}),
        route("later", upstream_tls={"ca_file": "${UPSTREAM_CA}"}),
    )))
    result = subprocess.run([sys.executable, "-m", "gateway", "check-config", "--config", str(path)], check=False,
                            cwd=ROOT, capture_output=True, text=True, timeout=60, env=BARE_ENV)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"routes[0].upstream_tls: cannot load CA file {files['junk.pem']}: no certificate or crl found"]
