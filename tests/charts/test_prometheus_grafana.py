"""The `prometheus-grafana` monitoring chart: Prometheus 3 scraping every component, alert rules,
and Grafana with a provisioned data source and dashboard, logging people in through Keycloak."""

from __future__ import annotations

import configparser
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from mims.blueprint import load_blueprint
from mims.charts.meta import MetricsTarget
from mims.charts.quantity import bytes_of
from tests.conftest import FIXTURES, env_of, find, pod_specs

NS = "alderbrook-monitoring"
# Retention in the configuration file (storage.tsdb.retention) needs Prometheus 3.11 or later.
PROMTOOL_FOR_CONFIG = (3, 11)
PROMTOOL_BUILD = (
    'GOFLAGS=-mod=mod go install -ldflags "-X github.com/prometheus/common/version.Version=3.16.0" '
    "github.com/prometheus/prometheus/cmd/promtool@v0.316.0"
)


@pytest.fixture
def render(write_blueprint, renderer):
    def run(profile: str = "minimal-50k", **components):
        patch = {"budget": {"profile": profile}, "components": components}
        return renderer.render(load_blueprint(write_blueprint(patch)))

    return run


def config_map(rendering, name: str) -> dict[str, str]:
    return find(rendering, "ConfigMap", name, f"{rendering.loaded.blueprint.city.name}-monitoring")["data"]


def prometheus_config(rendering) -> dict:
    return yaml.safe_load(config_map(rendering, "prometheus-config")["prometheus.yml"])


def rules(rendering) -> list[dict]:
    doc = yaml.safe_load(config_map(rendering, "prometheus-config")["mims.rules.yml"])
    return [rule for group in doc["groups"] for rule in group["rules"]]


def grafana_ini(rendering) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None)
    parser.read_string("[global]\n" + config_map(rendering, "grafana-config")["grafana.ini"])
    return parser


def container(rendering, workload: str) -> dict:
    [c] = find(rendering, "StatefulSet", workload, NS)["spec"]["template"]["spec"]["containers"]
    return c


def jobs(rendering) -> dict[str, dict]:
    return {job["job_name"]: job for job in prometheus_config(rendering)["scrape_configs"]}


def metrics_targets(rendering) -> list[tuple[str, str, MetricsTarget]]:
    """(component, namespace, `metrics` entry) for every enabled chart."""
    city = rendering.loaded.blueprint.city.name
    return [(c, f"{city}-{c}", m) for c, chart in rendering.charts.items() for m in chart.meta.metrics]


def relabelled(job: dict) -> dict[str, str]:
    """The constant labels a job's relabel rules set (each one a plain `replace` of a fixed value)."""
    assert all(set(rule) == {"target_label", "replacement"} for rule in job["relabel_configs"])
    return {rule["target_label"]: rule["replacement"] for rule in job["relabel_configs"]}


def promtool_version(path: str) -> tuple[int, ...] | None:
    out = subprocess.run([path, "--version"], capture_output=True, text=True).stdout
    match = re.search(r"version (\d+)\.(\d+)", out)
    return (int(match[1]), int(match[2])) if match else None


def promtool(minimum: tuple[int, int] = (2, 0)) -> str:
    """A promtool at least `minimum`: $MIMS_PROMTOOL, then every one on PATH, then ~/go/bin (where
    `go install` puts it).
    CI must have one; a developer's machine without one skips."""
    candidates = [os.environ.get("MIMS_PROMTOOL")]
    candidates += [shutil.which("promtool", path=folder) for folder in os.get_exec_path()]
    candidates.append(str(Path.home() / "go" / "bin" / "promtool"))
    found = list(dict.fromkeys(c for c in candidates if c and os.access(c, os.X_OK)))
    for path in found:
        version = promtool_version(path)
        if version and version >= minimum:
            return path
    wanted = f"promtool {minimum[0]}.{minimum[1]} or later"
    if os.environ.get("CI"):
        pytest.fail(f"{wanted} is not installed (found {found or 'none'}); build it with: {PROMTOOL_BUILD}")
    pytest.skip(f"{wanted} is not installed; build it with: {PROMTOOL_BUILD}")


def write_prometheus_files(rendering, folder: Path) -> Path:
    for name, text in config_map(rendering, "prometheus-config").items():
        (folder / name).write_text(text)
    return folder / "prometheus.yml"


# --- upstream checkers -------------------------------------------------------------------------


@pytest.mark.parametrize("profile", ["minimal-50k", "standard"])
def test_prometheus_config_passes_promtool_check_config(render, tmp_path, profile):
    config = write_prometheus_files(render(profile), tmp_path)
    run = subprocess.run(
        [promtool(PROMTOOL_FOR_CONFIG), "check", "config", str(config)], capture_output=True, text=True
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "1 rule files found" in run.stdout + run.stderr


def test_alert_rules_pass_promtool_check_rules(render, tmp_path):
    write_prometheus_files(render(), tmp_path)
    run = subprocess.run(
        [promtool(), "check", "rules", str(tmp_path / "mims.rules.yml")], capture_output=True, text=True
    )
    assert run.returncode == 0, run.stdout + run.stderr


def test_dashboard_json_parses_and_uses_the_provisioned_data_source(render):
    rendering = render()
    datasources = yaml.safe_load(config_map(rendering, "grafana-config")["datasources.yaml"])
    [source] = datasources["datasources"]
    dashboard = json.loads(config_map(rendering, "grafana-dashboards")["platform-overview.json"])
    assert dashboard["uid"] == "mims-platform-overview" and dashboard["panels"]
    used = {t["datasource"]["uid"] for p in dashboard["panels"] for t in p["targets"]}
    assert used == {source["uid"]}
    exprs = " ".join(t["expr"] for p in dashboard["panels"] for t in p["targets"])
    for needed in ("up", "scrape_duration_seconds", "prometheus_tsdb_storage_blocks_bytes"):
        assert needed in exprs
    recorded = {r["record"] for r in rules(rendering) if "record" in r}
    assert set(re.findall(r"\b[a-z_]+:[a-z_:]+\b", exprs)) <= recorded


def test_datasource_and_dashboard_provisioning_parse(render):
    rendering = render()
    data = config_map(rendering, "grafana-config")
    [source] = yaml.safe_load(data["datasources.yaml"])["datasources"]
    assert source["type"] == "prometheus" and source["isDefault"] is True
    assert source["url"] == "http://prometheus.alderbrook-monitoring.svc.cluster.local:9090"
    [provider] = yaml.safe_load(data["dashboards.yaml"])["providers"]
    mounts = {m["mountPath"] for m in container(rendering, "grafana")["volumeMounts"]}
    assert provider["options"]["path"] in mounts


# --- scrape configuration ----------------------------------------------------------------------


@pytest.mark.parametrize("example", ["small-city", "standard-city"])
def test_every_pod_of_every_metrics_target_is_scraped_through_a_headless_service(rendered_examples, example):
    rendering = rendered_examples[example]
    scrape = jobs(rendering)
    targets = metrics_targets(rendering)
    assert len(targets) >= 5  # iam, broker, ingestion, gateway, monitoring in both examples
    for component, namespace, metric in targets:
        job = scrape[f"{component}/{metric.workload}"]
        service = find(rendering, "Service", f"{metric.workload}-metrics", namespace)
        assert "static_configs" not in job
        assert job["dns_sd_configs"] == [
            {"names": [f"{metric.workload}-metrics.{namespace}.svc.cluster.local."], "type": "A", "port": metric.port}
        ]
        assert job["metrics_path"] == metric.path
        assert relabelled(job) == {"component": component, "namespace": namespace, "workload": metric.workload}
        spec = service["spec"]
        assert spec["clusterIP"] == "None" and spec["publishNotReadyAddresses"] is True
        assert {
            "name": f"metrics-{metric.port}",
            "port": metric.port,
            "targetPort": metric.port,
            "protocol": "TCP",
        } in spec["ports"]
        selected = [
            obj["metadata"]["name"]
            for obj, _ in pod_specs(rendering)
            if obj["metadata"]["namespace"] == namespace
            and spec["selector"].items() <= obj["spec"]["template"]["metadata"]["labels"].items()
        ]
        assert selected == [metric.workload], (namespace, spec["selector"])


@pytest.mark.parametrize("example", ["small-city", "standard-city"])
def test_network_policies_let_prometheus_reach_every_metrics_pod(rendered_examples, example):
    rendering = rendered_examples[example]
    monitoring = f"{rendering.loaded.blueprint.city.name}-monitoring"
    egress = find(rendering, "NetworkPolicy", "allow-egress-prometheus", monitoring)["spec"]["egress"]
    for _component, namespace, metric in metrics_targets(rendering):
        port = {"protocol": "TCP", "port": metric.port}
        ingress = find(rendering, "NetworkPolicy", f"allow-ingress-{metric.workload}", namespace)["spec"]
        assert ingress["podSelector"]["matchLabels"]["app.kubernetes.io/name"] == metric.workload
        source = {"podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}}}
        target = {"podSelector": {"matchLabels": {"app.kubernetes.io/name": metric.workload}}}
        if namespace != monitoring:
            source["namespaceSelector"] = {"matchLabels": {"kubernetes.io/metadata.name": monitoring}}
            target["namespaceSelector"] = {"matchLabels": {"kubernetes.io/metadata.name": namespace}}
        # A rule without `from` admits every source (the listener a chart opens to anyone).
        assert any(source in rule.get("from", [source]) and port in rule["ports"] for rule in ingress["ingress"])
        assert any(target in rule["to"] and port in rule["ports"] for rule in egress)


def test_job_names_are_unique(render):
    names = [job["job_name"] for job in prometheus_config(render("standard"))["scrape_configs"]]
    assert len(names) == len(set(names))


def test_prometheus_scrapes_itself(render):
    [group] = jobs(render())["prometheus"]["static_configs"]
    assert group["targets"] == ["localhost:9090"] and group["labels"]["component"] == "monitoring"


def test_disabled_components_are_not_scraped(render):
    rendering = render(broker={"enabled": False}, ingestion={"enabled": False})
    names = " ".join(
        name for job in jobs(rendering).values() for sd in job.get("dns_sd_configs", []) for name in sd["names"]
    )
    assert "alderbrook-iam" in names
    assert "alderbrook-broker" not in names and "alderbrook-ingestion" not in names
    services = [o["metadata"]["name"] for o in rendering.objects() if o["kind"] == "Service"]
    assert "orion-ld-metrics" not in services and "iot-agent-metrics" not in services


def test_grafana_metrics_need_the_password_both_sides_read_from_one_secret(render):
    rendering = render()
    job = jobs(rendering)["monitoring/grafana"]
    password_file = job["basic_auth"]["password_file"]
    prometheus = find(rendering, "StatefulSet", "prometheus", NS)["spec"]["template"]["spec"]
    [mount] = [m for m in prometheus["containers"][0]["volumeMounts"] if password_file.startswith(m["mountPath"])]
    [volume] = [v for v in prometheus["volumes"] if v["name"] == mount["name"]]
    grafana = container(rendering, "grafana")
    assert env_of(grafana)["GF_METRICS_BASIC_AUTH_PASSWORD__FILE"].endswith("/password")
    grafana_volumes = find(rendering, "StatefulSet", "grafana", NS)["spec"]["template"]["spec"]["volumes"]
    assert volume["secret"]["secretName"] in {v.get("secret", {}).get("secretName") for v in grafana_volumes}
    assert grafana_ini(rendering)["metrics"]["basic_auth_username"] == job["basic_auth"]["username"]


# --- retention ---------------------------------------------------------------------------------


def retention(rendering) -> dict:
    return prometheus_config(rendering)["storage"]["tsdb"]["retention"]


def test_retention_defaults_to_the_profile(render):
    assert retention(render())["time"] == "15d"
    assert retention(render("standard"))["time"] == "30d"


def test_retention_option_overrides_the_profile(render):
    assert retention(render(monitoring={"options": {"retention_days": 90}}))["time"] == "90d"
    assert retention(render("standard", monitoring={"options": {"retention_days": 7}}))["time"] == "7d"


@pytest.mark.parametrize("profile", ["minimal-50k", "standard"])
def test_size_retention_leaves_room_on_the_volume(render, profile):
    rendering = render(profile)
    size = retention(rendering)["size"]
    claim = find(rendering, "StatefulSet", "prometheus", NS)["spec"]["volumeClaimTemplates"][0]
    volume = bytes_of(claim["spec"]["resources"]["requests"]["storage"])
    limit = bytes_of(size.replace("GB", "Gi").replace("MB", "Mi"))  # Prometheus units are powers of 2
    assert limit <= 0.85 * volume


def test_tsdb_lives_on_the_volume(render):
    prometheus = container(render(), "prometheus")
    assert "--storage.tsdb.path=/prometheus" in prometheus["args"]
    assert {"name": "data", "mountPath": "/prometheus"} in prometheus["volumeMounts"]


# --- alert rules -------------------------------------------------------------------------------


@pytest.mark.parametrize("example", ["small-city", "standard-city"])
def test_every_metrics_target_expects_the_pods_its_profile_runs(rendered_examples, example):
    rendering = rendered_examples[example]
    profile = rendering.loaded.blueprint.budget.profile
    expected = {
        r["labels"]["job"]: (r["expr"], r["labels"]) for r in rules(rendering) if r.get("record") == "job:pods_expected"
    }
    targets = metrics_targets(rendering)
    assert len(expected) == len(targets)
    for component, namespace, metric in targets:
        replicas = rendering.charts[component].meta.workloads[metric.workload][profile].replicas
        expr, labels = expected[f"{component}/{metric.workload}"]
        assert expr == f"vector({replicas})"
        assert labels == {
            "job": f"{component}/{metric.workload}",
            "component": component,
            "namespace": namespace,
            "workload": metric.workload,
        }


def test_component_alerts_pass_their_unit_tests(rendered_examples, tmp_path):
    """tests/fixtures/prometheus/mims.rules.test.yml: a component is down when none of its pods
    answers or none runs, degraded when fewer answer than the profile runs or one does not answer."""
    write_prometheus_files(rendered_examples["standard-city"], tmp_path)
    shutil.copy(FIXTURES / "prometheus" / "mims.rules.test.yml", tmp_path)
    run = subprocess.run(
        [promtool(), "test", "rules", "mims.rules.test.yml"], cwd=tmp_path, capture_output=True, text=True
    )
    assert run.returncode == 0, run.stdout + run.stderr


def test_prometheus_storage_is_watched(render):
    names = {r.get("alert") for r in rules(render())}
    assert {
        "PrometheusStorageNearSizeLimit",
        "PrometheusSizeRetentionDeletingData",
        "PrometheusCompactionsFailing",
    } <= names


def test_no_alertmanager_is_configured(render):
    assert "alerting" not in prometheus_config(render())


# --- Grafana -----------------------------------------------------------------------------------


def test_grafana_logs_in_through_the_realm(render):
    ini = grafana_ini(render())
    oauth = ini["auth.generic_oauth"]
    assert oauth["enabled"] == "true" and oauth["client_id"] == "grafana"
    assert oauth["auth_url"] == ("https://auth.data.alderbrook.example/realms/alderbrook/protocol/openid-connect/auth")
    internal = "http://keycloak.alderbrook-iam.svc.cluster.local:8080/realms/alderbrook/protocol/openid-connect"
    assert oauth["token_url"] == f"{internal}/token"
    assert oauth["api_url"] == f"{internal}/userinfo"
    assert oauth["jwk_set_url"] == f"{internal}/certs"
    assert ini["server"]["root_url"] == "https://grafana.data.alderbrook.example/"


def test_grafana_uses_the_realm_option(render):
    oauth = grafana_ini(render(iam={"options": {"realm": "city-staff"}}))["auth.generic_oauth"]
    assert "/realms/city-staff/" in oauth["auth_url"] and "/realms/city-staff/" in oauth["token_url"]


def test_grafana_client_secret_is_the_shared_one_read_from_a_file(render):
    rendering = render()
    secret = find(rendering, "Secret", "grafana-oidc-client", NS)
    assert json.loads(secret["metadata"]["annotations"]["mims.io/generate"]) == {
        "client-secret": "shared:oidc-client-grafana"
    }
    path = env_of(container(rendering, "grafana"))["GF_AUTH_GENERIC_OAUTH_CLIENT_SECRET__FILE"]
    assert path == "/run/secrets/oidc/client-secret"
    assert "client_secret" not in grafana_ini(rendering)["auth.generic_oauth"]


def test_grafana_without_iam_has_only_the_local_admin(render):
    rendering = render(iam={"enabled": False}, gateway={"enabled": False})
    assert not grafana_ini(rendering).has_section("auth.generic_oauth")
    assert "GF_AUTH_GENERIC_OAUTH_CLIENT_SECRET__FILE" not in env_of(container(rendering, "grafana"))
    assert not [o for o in rendering.objects() if o["metadata"]["name"] == "grafana-oidc-client"]
    egress = find(rendering, "NetworkPolicy", "allow-egress-grafana", NS)["spec"]["egress"]
    assert all("namespaceSelector" not in peer for rule in egress for peer in rule["to"])


def test_grafana_admin_password_and_secret_key_are_generated_files(render):
    rendering = render()
    secret = find(rendering, "Secret", "grafana-credentials", NS)
    fields = json.loads(secret["metadata"]["annotations"]["mims.io/generate"])
    assert fields["admin-password"].startswith("random:") and fields["secret-key"].startswith("random:")
    env = env_of(container(rendering, "grafana"))
    assert env["GF_SECURITY_ADMIN_PASSWORD__FILE"] == "/run/secrets/grafana/admin-password"
    assert env["GF_SECURITY_SECRET_KEY__FILE"] == "/run/secrets/grafana/secret-key"


def test_grafana_stays_offline(render):
    rendering = render()
    env = env_of(container(rendering, "grafana"))
    assert env["GF_LOG_MODE"] == "console"
    ini = grafana_ini(rendering)
    assert ini["plugins"]["preinstall_disabled"] == "true"
    assert ini["analytics"]["reporting_enabled"] == "false"
    assert ini["analytics"]["check_for_updates"] == "false"
    assert ini["analytics"]["check_for_plugin_updates"] == "false"
    assert ini["plugins"]["plugin_admin_enabled"] == "false"


def test_grafana_writes_only_to_its_volumes(render):
    rendering = render()
    grafana = container(rendering, "grafana")
    assert grafana["securityContext"]["readOnlyRootFilesystem"] is True
    writable = {m["mountPath"] for m in grafana["volumeMounts"] if not m.get("readOnly")}
    assert writable == {"/var/lib/grafana", "/tmp"}


def test_grafana_keeps_one_replica_on_sqlite_in_every_profile(render):
    for profile in ("minimal-50k", "standard"):
        rendering = render(profile)
        assert find(rendering, "StatefulSet", "grafana", NS)["spec"]["replicas"] == 1
        assert grafana_ini(rendering)["database"]["type"] == "sqlite3"


def test_grafana_reaches_prometheus_and_keycloak_only(render):
    rendering = render()
    egress = find(rendering, "NetworkPolicy", "allow-egress-grafana", NS)["spec"]["egress"]
    peers = {
        (peer["podSelector"]["matchLabels"]["app.kubernetes.io/name"], rule["ports"][0]["port"])
        for rule in egress
        for peer in rule["to"]
    }
    assert peers == {("prometheus", 9090), ("keycloak", 8080)}


def test_endpoints_follow_the_contract(renderer):
    meta = next(c.meta for c in renderer.charts.values() if c.meta.name == "prometheus-grafana")
    endpoints = {e.name: e for e in meta.endpoints}
    assert (endpoints["grafana"].workload, endpoints["grafana"].port, endpoints["grafana"].host) == (
        "grafana",
        3000,
        "grafana",
    )
    assert endpoints["grafana"].public and not endpoints["grafana"].writes_need_token
    assert (endpoints["prometheus"].workload, endpoints["prometheus"].port) == ("prometheus", 9090)
    assert not endpoints["prometheus"].public


# --- Prometheus alone --------------------------------------------------------------------------


def test_grafana_false_leaves_grafana_out_and_keeps_prometheus_whole(render):
    rendering = render(monitoring={"options": {"grafana": False}})
    named = [o for o in rendering.objects() if "grafana" in o["metadata"]["name"]]
    assert named == []
    assert "monitoring/grafana" not in rendering.endpoints and "monitoring/grafana" not in jobs(rendering)
    prometheus = find(rendering, "StatefulSet", "prometheus", NS)["spec"]["template"]["spec"]
    assert [v["name"] for v in prometheus["volumes"]] == ["config"]
    # Grafana was Prometheus's only caller: default-deny alone now guards Prometheus.
    assert not [o for o in rendering.objects() if o["metadata"]["name"] == "allow-ingress-prometheus"]
    assert "monitoring/prometheus" in rendering.endpoints
