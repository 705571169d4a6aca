"""deploy/: the manifests validate, and name only what this repository builds and serves."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from gateway.config import parse_config
from tests.conftest import require_service
from tests.observability.test_metrics import scrape

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
REPO = DEPLOY.parent
K8S_VERSION = "1.30.0"
ENV = {"POSTGRES_PASSWORD": "pw", "GATEWAY_STORE_URL": "postgresql://g@db/g", "GATEWAY_REDIS_URL": "redis://r:6379/0"}


def k8s_documents(pattern: str = "**/*.yaml") -> list[dict[str, Any]]:
    """Every manifest, the examples included; "*.yaml": what `kubectl apply -f deploy/kubernetes/` applies."""
    return [doc for path in sorted((DEPLOY / "kubernetes").glob(pattern))
            for doc in yaml.safe_load_all(path.read_text()) if doc]


def by_kind(kind: str) -> list[dict[str, Any]]:
    return [d for d in k8s_documents() if d["kind"] == kind]


def test_kubernetes_manifests_validate_against_the_api_schema() -> None:
    docs = k8s_documents()
    assert {d["kind"] for d in docs} >= {"Deployment", "Service", "ConfigMap", "Secret", "PodDisruptionBudget",
                                           "HorizontalPodAutoscaler"}
    for doc in docs:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def test_kubernetes_deployment_matches_the_gateway_config() -> None:
    config = parse_config(yaml.safe_load(by_kind("ConfigMap")[0]["data"]["gateway.yaml"]), env=ENV)
    pod = by_kind("Deployment")[0]["spec"]["template"]["spec"]
    container = pod["containers"][0]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"https": config.server.port, "admin": config.admin.port}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "admin"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "admin"}
    assert container["image"] == "gateway:local" and (REPO / "Dockerfile").exists()
    assert container["args"] == ["run", "--config", "/etc/gateway/config/gateway.yaml"]
    assert pod["terminationGracePeriodSeconds"] > config.server.grace_period
    # every replica signs with the same key, mounted from a Secret
    [signing] = config.tokens.signing_keys
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volume = mounts[str(Path(signing).parent)]
    assert {v["name"]: v for v in pod["volumes"]}[volume]["secret"]["secretName"] == "gateway-signing"
    env = {e["name"] for e in container["env"]}
    assert {config.admin.token_env, "GATEWAY_STORE_URL", "GATEWAY_REDIS_URL"} <= env
    selector = by_kind("Deployment")[0]["spec"]["selector"]["matchLabels"]
    for other in by_kind("Service") + by_kind("PodDisruptionBudget"):
        chosen = other["spec"]["selector"]
        assert chosen.get("matchLabels", chosen) == selector
    targets = {p["targetPort"] for s in by_kind("Service") for p in s["spec"]["ports"]}
    assert targets <= set(ports)


def test_kubernetes_config_map_updates_reach_the_running_pods() -> None:
    """The ConfigMap is mounted as a directory, so the kubelet's updates (a new `..data` link) reach
    the pod and `server.watch_config` reloads them; a `subPath` mount is a copy taken at the pod's
    start that no update reaches (nor does one of a Secret: renewed certificates). Nothing is
    mounted inside those volumes: the kubelet writes them, read-only to the container."""
    [config_map] = by_kind("ConfigMap")
    config = parse_config(yaml.safe_load(config_map["data"]["gateway.yaml"]), env=ENV)
    assert config.server.watch_config is True
    pod = by_kind("Deployment")[0]["spec"]["template"]["spec"]
    [container] = pod["containers"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    kubelet_written = [m for m in container["volumeMounts"]
                       if {"configMap", "secret"} & set(volumes[m["name"]])]
    assert [m for m in kubelet_written if "subPath" in m or "subPathExpr" in m] == []
    config_file = Path(container["args"][container["args"].index("--config") + 1])
    [mount] = [m for m in kubelet_written if Path(m["mountPath"]) == config_file.parent]
    volume = volumes[mount["name"]]["configMap"]
    assert volume["name"] == config_map["metadata"]["name"]
    shown = {item["path"]: item["key"] for item in volume.get("items", [])} or {k: k for k in config_map["data"]}
    assert shown[config_file.name] == "gateway.yaml"
    for inner in container["volumeMounts"]:
        for outer in kubelet_written:
            assert inner is outer or not Path(inner["mountPath"]).is_relative_to(outer["mountPath"]), (inner, outer)


def test_compose_runs_two_gateways_built_here_with_healthchecks() -> None:
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    services = compose["services"]
    assert {"gateway-1", "gateway-2", "postgres", "redis", "upstream", "prometheus", "grafana"} <= set(services)
    config = parse_config(yaml.safe_load((DEPLOY / "config" / "gateway.yaml").read_text()), env=ENV)
    assert config.store.url.startswith("postgresql://") and config.ratelimit.backend == "redis"
    for name, service in services.items():
        assert "healthcheck" in service, name
        image = service["image"]
        if image == "gateway:local":
            assert (DEPLOY / service["build"]["context"] / service["build"]["dockerfile"]).exists()
        else:
            assert re.fullmatch(r"[a-z0-9./-]+:[\w.-]+", image), f"{name}: pin the image tag"
    for name in ("gateway-1", "gateway-2"):
        inside = {int(p.split(":")[-1]) for p in services[name]["ports"]}
        assert inside == {config.server.port, config.admin.port}
        mounts = dict(v.split(":")[:2] for v in services[name]["volumes"])
        assert all((DEPLOY / m).exists() for m in mounts if m.startswith("."))  # files of this repository
        # one data_dir for both: the token signing key there is shared, so a token from one passes on the other
        assert mounts.get("gateway-data") == config.data_dir and "gateway-data" in compose["volumes"]
        assert not config.tokens.signing_keys
    upstream_ports = {int(r.upstream.rsplit(":", 1)[1]) for r in config.routes}
    assert upstream_ports == {int(services["upstream"]["command"][-1])}
    scrape_targets = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())["scrape_configs"][0]
    assert scrape_targets["static_configs"][0]["targets"] == [f"{n}:{config.admin.port}" for n in ("gateway-1", "gateway-2")]


def test_alert_rules_pass_promtool() -> None:
    require_service("promtool", shutil.which("promtool") is not None, "install Debian's prometheus package")
    if shutil.which("promtool"):
        result = subprocess.run(["promtool", "check", "rules", str(DEPLOY / "prometheus" / "alerts.yml")],
                                capture_output=True, text=True)
        assert result.returncode == 0, result.stdout + result.stderr


async def test_dashboard_and_alerts_use_only_metrics_the_gateway_exports(start_gateway) -> None:
    gw = await start_gateway()
    exported: set[str] = set()
    for family in text_string_to_metric_families(await scrape(gw)):  # families exist before any sample
        suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_sum", "_count"]}.get(family.type, [""])
        exported |= {family.name + suffix for suffix in suffixes}
    dashboard = json.loads((DEPLOY / "grafana" / "dashboards" / "gateway.json").read_text())
    expressions = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    alerts = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())
    expressions += [rule["expr"] for group in alerts["groups"] for rule in group["rules"]]
    used = {name for expr in expressions for name in re.findall(r"\bgateway_[a-z_]+", expr)}
    assert used and used <= exported, used - exported
    assert len(dashboard["panels"]) >= 8


@pytest.mark.parametrize("path", ["deploy/compose.yaml", "deploy/prometheus/prometheus.yml",
                                  "deploy/grafana/provisioning/datasources/prometheus.yml"])
def test_yaml_files_parse(path: str) -> None:
    assert yaml.safe_load((REPO / path).read_text())


def test_kubernetes_pod_runs_locked_down() -> None:
    """Non-root, read-only root filesystem, no capabilities or privilege escalation, the runtime's
    seccomp profile; every path the gateway writes (data_dir, /tmp) is an emptyDir."""
    config = parse_config(yaml.safe_load(by_kind("ConfigMap")[0]["data"]["gateway.yaml"]), env=ENV)
    pod = by_kind("Deployment")[0]["spec"]["template"]["spec"]
    [container] = pod["containers"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == pod["securityContext"]["runAsGroup"] != 0
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False
    dockerfile_user = [line.split()[1] for line in (REPO / "Dockerfile").read_text().splitlines()
                       if line.startswith("USER ")][-1]
    assert dockerfile_user == f"{pod['securityContext']['runAsUser']}:{pod['securityContext']['runAsGroup']}"
    sc = container["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]} and sc["runAsNonRoot"] is True
    volumes = {v["name"]: v for v in pod["volumes"]}
    writable = {m["mountPath"] for m in container["volumeMounts"]
                if not m.get("readOnly") and "emptyDir" in volumes[m["name"]]}
    assert {config.data_dir, "/tmp"} <= writable
    for mount in container["volumeMounts"]:
        if "emptyDir" not in volumes[mount["name"]]:
            assert mount.get("readOnly") is True, mount
    for volume in volumes.values():
        if "secret" in volume:
            assert volume["secret"]["defaultMode"] == 0o440  # the key files: owner and fsGroup only


def deployment_secrets() -> dict[str, set[str]]:
    """Each Secret the Deployment reads, with the keys it reads from it."""
    pod = by_kind("Deployment")[0]["spec"]["template"]["spec"]
    wanted: dict[str, set[str]] = {}
    for env in pod["containers"][0]["env"]:
        ref = env.get("valueFrom", {}).get("secretKeyRef")
        if ref:
            wanted.setdefault(ref["name"], set()).add(ref["key"])
    config = yaml.safe_load(by_kind("ConfigMap")[0]["data"]["gateway.yaml"])
    mounts = {m["name"]: m["mountPath"] for m in pod["containers"][0]["volumeMounts"]}
    files = [config["server"]["tls"]["cert_file"], config["server"]["tls"]["key_file"], *config["tokens"]["signing_keys"]]
    for volume in pod["volumes"]:
        if "secret" in volume:
            folder = mounts[volume["name"]]
            wanted[volume["secret"]["secretName"]] = {Path(f).name for f in files if str(Path(f).parent) == folder}
    return wanted


def test_kubernetes_secrets_are_examples_and_the_readme_makes_them() -> None:
    wanted = deployment_secrets()
    assert set(wanted) == {"gateway-secrets", "gateway-tls", "gateway-signing"}
    assert all(wanted.values()), wanted
    # never applied with the manifests: their example values would replace real ones
    assert not [d for d in k8s_documents("*.yaml") if d["kind"] == "Secret"]
    examples = {d["metadata"]["name"]: d for d in k8s_documents("examples/*.yaml") if d["kind"] == "Secret"}
    for name, keys in wanted.items():
        assert keys <= set(examples[name]["stringData"]), name
    # the example admin token fails closed: the gateway refuses it
    from gateway.admin.auth import AdminTokenError, check_admin_token

    with pytest.raises(AdminTokenError):
        check_admin_token(examples["gateway-secrets"]["stringData"]["admin-token"], env_name="GATEWAY_ADMIN_TOKEN",
                          host="0.0.0.0", allow_weak=False)
    # README "Kubernetes" creates each one, with every key the Deployment reads
    readme = (REPO / "README.md").read_text().split("### Kubernetes", 1)[1].split("\n## ", 1)[0]
    [block] = re.findall(r"```sh\n(.*?)```", readme, re.S)
    commands = [c for c in re.sub(r"\\\n\s*", " ", block).splitlines() if c.startswith("kubectl create secret")]
    for name, keys in wanted.items():
        [command] = [c for c in commands if c.split()[4] == name]
        if command.split()[3] == "tls":
            made = {"tls.crt", "tls.key"}
        else:
            made = set(re.findall(r"--from-(?:literal|file)=([\w.-]+)=", command))
        assert keys <= made, (name, command)


def test_compose_keeps_admin_and_dashboards_off_the_network_and_secrets_out_of_the_file() -> None:
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    services = compose["services"]
    config = parse_config(yaml.safe_load((DEPLOY / "config" / "gateway.yaml").read_text()), env=ENV)
    for name in ("gateway-1", "gateway-2"):
        service = services[name]
        published = {int(p.split(":")[-1]): p for p in service["ports"]}
        assert published[config.admin.port].startswith("127.0.0.1:"), published
        assert not published[config.server.port].startswith("127.0.0.1:")  # the proxy is the public side
        token = service["environment"][config.admin.token_env]
        assert re.fullmatch(r"\$\{GATEWAY_ADMIN_TOKEN:\?[^}]+\}", token), "required, no default"
        grace = service["stop_grace_period"]
        assert grace.endswith("s") and float(grace[:-1]) > config.server.grace_period
        assert service["read_only"] is True and service["tmpfs"] == ["/tmp"] and service["cap_drop"] == ["ALL"]
        assert "no-new-privileges:true" in service["security_opt"]
    for name in ("prometheus", "grafana"):
        assert all(p.startswith("127.0.0.1:") for p in services[name]["ports"]), name
    grafana = services["grafana"]["environment"]
    assert grafana["GF_AUTH_ANONYMOUS_ENABLED"] == "false"
    assert re.fullmatch(r"\$\{GRAFANA_ADMIN_PASSWORD:\?[^}]+\}", grafana["GF_SECURITY_ADMIN_PASSWORD"])
    text = (DEPLOY / "compose.yaml").read_text()
    assert "change-me" not in text and "admin/admin" not in text
