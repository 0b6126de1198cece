"""The `orion-ld` broker chart: Orion-LD 1.12 on an authenticated MongoDB 8."""

from __future__ import annotations

import pytest

from mims.blueprint import load_blueprint
from mims.charts.quantity import bytes_of
from tests.conftest import env_of, find

ONLY_BROKER = {
    name: {"enabled": False} for name in ("iam", "ingestion", "catalogue", "ai_registry", "gateway", "monitoring")
}


@pytest.fixture
def render(write_blueprint, renderer):
    def run(profile: str = "minimal-50k", **components):
        patch = {
            "budget": {"profile": profile},
            "components": {**ONLY_BROKER, "broker": {"enabled": True, "implementation": "orion-ld"}, **components},
        }
        return renderer.render(load_blueprint(write_blueprint(patch)))

    return run


def broker_container(rendering) -> dict:
    [container] = find(rendering, "Deployment", "orion-ld")["spec"]["template"]["spec"]["containers"]
    return container


def wrapper(container: dict) -> str:
    assert container["command"] == ["/bin/sh", "-c"]
    return container["args"][0]


def test_broker_reaches_its_database_by_service_name(render):
    rendering = render()
    assert env_of(broker_container(rendering))["ORIONLD_MONGO_HOST"] == "broker-db:27017"
    service = find(rendering, "Service", "broker-db", "alderbrook-broker")
    assert [p["port"] for p in service["spec"]["ports"]] == [27017]


def test_mongo_runs_with_authentication_and_the_broker_logs_in_as_its_own_user(render):
    rendering = render()
    [mongo] = find(rendering, "StatefulSet", "broker-db")["spec"]["template"]["spec"]["containers"]
    assert "--auth" in mongo["args"]
    assert "env" not in mongo  # the set-up init container made the users; mongod needs no password
    assert env_of(broker_container(rendering))["ORIONLD_MONGO_USER"] == "orionld"


def test_db_password_reaches_the_broker_only_through_a_file(render):
    rendering = render()
    container = broker_container(rendering)
    names = {e["name"] for e in container["env"]}
    assert "ORIONLD_MONGO_PASSWORD" not in names and not any("valueFrom" in e for e in container["env"])
    script = wrapper(container)
    assert 'ORIONLD_MONGO_PASSWORD="$(cat /run/secrets/db/password)"' in script
    assert "export ORIONLD_MONGO_PASSWORD" in script
    assert "-dbpwd" not in script  # never on the command line, where /proc/<pid>/cmdline shows it
    pod = find(rendering, "Deployment", "orion-ld")["spec"]["template"]["spec"]
    [secret] = [v["secret"] for v in pod["volumes"] if "secret" in v]
    assert secret == {"secretName": "broker-db-credentials", "defaultMode": 0o440}
    # The kubelet gives the 0440 secret files the pod's fsGroup: without it the non-root user cannot read them.
    assert pod["securityContext"]["fsGroup"] == pod["securityContext"]["runAsUser"] >= 10000


def test_generated_secret_is_the_one_mongo_initialises(render):
    rendering = render()
    secret = find(rendering, "Secret", "broker-db-credentials")
    assert secret["metadata"]["annotations"]["mims.io/generate"] == '{"password": "random:32"}'
    assert "data" not in secret and "stringData" not in secret


def test_only_the_mongoc_driver_so_mongodb_8_works(render):
    rendering = render()
    command = wrapper(broker_container(rendering)).splitlines()[-1].split()
    assert command[:2] == ["exec", "/usr/bin/orionld"]
    assert {"-fg", "-mongocOnly", "-disableFileLog"} <= set(command)
    [mongo] = find(rendering, "StatefulSet", "broker-db")["spec"]["template"]["spec"]["containers"]
    assert mongo["image"].startswith("docker.io/library/mongo:8.0.")


def test_read_only_root_with_a_writable_tmp(render):
    rendering = render()
    container = broker_container(rendering)
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    pod = find(rendering, "Deployment", "orion-ld")["spec"]["template"]["spec"]
    assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]
    assert any(v["name"] == "tmp" and "emptyDir" in v for v in pod["volumes"])


def test_probes_use_the_version_endpoint(render):
    container = broker_container(render())
    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"] == {"path": "/version", "port": "ngsi-ld"}


def test_ngsi_ld_endpoint_matches_the_cross_chart_contract(render):
    rendering = render()
    [endpoint] = [e for e in rendering.charts["broker"].meta.endpoints if e.name == "ngsi-ld"]
    assert (
        endpoint.workload,
        endpoint.port,
        endpoint.public,
        endpoint.host,
        endpoint.path,
        endpoint.writes_need_token,
    ) == ("orion-ld", 1026, True, "api", "/ngsi-ld/", True)
    service = find(rendering, "Service", "orion-ld")
    assert {p["name"]: p["port"] for p in service["spec"]["ports"]} == {"ngsi-ld": 1026, "metrics": 8000}


def test_prometheus_metrics_on_port_8000(render):
    rendering = render()
    [target] = rendering.charts["broker"].meta.metrics
    assert (target.workload, target.port, target.path) == ("orion-ld", 8000, "/metrics")
    ports = {p["name"]: p["containerPort"] for p in broker_container(rendering)["ports"]}
    assert ports == {"ngsi-ld": 1026, "metrics": 8000}


def test_only_the_broker_may_reach_the_database(render):
    rendering = render()
    ingress = find(rendering, "NetworkPolicy", "allow-ingress-broker-db")["spec"]["ingress"]
    assert ingress == [
        {
            "ports": [{"protocol": "TCP", "port": 27017}],
            "from": [{"podSelector": {"matchLabels": {"app.kubernetes.io/name": "orion-ld"}}}],
        }
    ]


def test_broker_may_fetch_the_citys_contexts(render):
    egress = find(render(), "NetworkPolicy", "allow-egress-orion-ld")["spec"]["egress"]
    assert {
        "ports": [{"protocol": "TCP", "port": 8080}],
        "to": [
            {
                "podSelector": {"matchLabels": {"app.kubernetes.io/name": "context-server"}},
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "alderbrook-data-models"}},
            }
        ],
    } in egress


@pytest.mark.parametrize("profile", ["minimal-50k", "standard"])
def test_one_broker_at_a_time_because_1_12_has_no_cache_sync(render, profile):
    deployment = find(render(profile), "Deployment", "orion-ld")
    assert deployment["spec"]["replicas"] == 1 and deployment["spec"]["strategy"] == {"type": "Recreate"}


@pytest.mark.parametrize("profile, cache", [("minimal-50k", "0.25"), ("standard", "0.5")])
def test_wiredtiger_cache_fits_the_mongo_memory_limit(render, profile, cache):
    [mongo] = find(render(profile), "StatefulSet", "broker-db")["spec"]["template"]["spec"]["containers"]
    args = mongo["args"]
    assert args[args.index("--wiredTigerCacheSizeGB") + 1] == cache
    assert float(cache) * 2**30 <= bytes_of(mongo["resources"]["limits"]["memory"]) / 2


def test_minimal_profile_stays_frugal(render):
    footprint = render().footprints["broker"]
    assert footprint.cpu_request_m <= 400 and footprint.memory_request <= 640 * 2**20


def test_broker_may_forward_to_the_iot_agent_it_has_registrations_from(render):
    calls = {(c.source, c.endpoint) for c in render().charts["broker"].meta.network.calls}
    assert ("orion-ld", "ingestion/iot-admin") in calls
