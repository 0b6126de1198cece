"""The `scorpio` broker chart: the Scorpio all-in-one runner (in-memory messaging) on PostgreSQL + PostGIS."""

from __future__ import annotations

import re

import pytest

from mims.blueprint import load_blueprint
from mims.charts.network import NAME_LABEL, NS_LABEL
from mims.charts.quantity import bytes_of
from tests.conftest import env_of, find, merge

ONLY_BROKER = {
    name: {"enabled": False} for name in ("iam", "ingestion", "catalogue", "ai_registry", "gateway", "monitoring")
}


@pytest.fixture
def render(write_blueprint, renderer):
    def run(profile: str = "minimal-50k"):
        patch = {
            "budget": {"profile": profile},
            "components": {**ONLY_BROKER, "broker": {"enabled": True, "implementation": "scorpio"}},
        }
        return renderer.render(load_blueprint(write_blueprint(patch)))

    return run


def pod_of(rendering, kind: str, name: str) -> dict:
    return find(rendering, kind, name)["spec"]["template"]["spec"]


def wrapper(container: dict) -> str:
    assert container["command"] == ["/bin/sh", "-c"]
    return container["args"][0]


def test_broker_reaches_its_database_by_service_name(render):
    rendering = render()
    [scorpio] = pod_of(rendering, "Deployment", "scorpio")["containers"]
    env = env_of(scorpio)
    assert (env["DBHOST"], env["DBPORT"]) == ("broker-db", "5432")
    service = find(rendering, "Service", "broker-db", "alderbrook-broker")
    assert [p["port"] for p in service["spec"]["ports"]] == [5432]


def test_database_and_role_match_what_the_set_up_creates(render):
    rendering = render()
    [scorpio] = pod_of(rendering, "Deployment", "scorpio")["containers"]
    [set_up] = pod_of(rendering, "StatefulSet", "broker-db")["initContainers"]
    roles = find(rendering, "ConfigMap", "broker-db-set-up")["data"]["roles.sql"]
    assert env_of(scorpio)["DBNAME"] == env_of(set_up)["POSTGRES_DB"]
    assert f"\\set app_role '{env_of(scorpio)['DBUSER']}'" in roles
    assert "CREATEDB" in roles.split('ALTER ROLE :"app_role" WITH')[1].split(";")[0]


def test_database_is_postgis(render):
    [postgres] = pod_of(render(), "StatefulSet", "broker-db")["containers"]
    assert postgres["image"].startswith("docker.io/postgis/postgis:18-")


def test_db_password_reaches_the_broker_only_through_a_file(render):
    rendering = render()
    pod = pod_of(rendering, "Deployment", "scorpio")
    [scorpio] = pod["containers"]
    assert "DBPASS" not in env_of(scorpio) and not any("valueFrom" in e for e in scorpio["env"])
    script = wrapper(scorpio)
    assert 'DBPASS="$(cat /run/secrets/db/password)"' in script and "export DBPASS" in script
    [secret] = [v["secret"] for v in pod["volumes"] if "secret" in v]
    assert secret == {"secretName": "broker-db-credentials", "defaultMode": 0o440}
    assert pod["securityContext"]["fsGroup"] == pod["securityContext"]["runAsUser"] >= 10000
    # The database's set-up gives Scorpio's role this password; the superuser has its own.
    db_pod = pod_of(rendering, "StatefulSet", "broker-db")
    [set_up] = db_pod["initContainers"]
    assert env_of(set_up)["APP_PASSWORD_FILE"] == "/run/secrets/db-app/password"
    assert env_of(set_up)["POSTGRES_PASSWORD_FILE"] == "/run/secrets/db-superuser/password"
    secrets = {v["name"]: v["secret"]["secretName"] for v in db_pod["volumes"] if "secret" in v}
    assert secrets == {"app": "broker-db-credentials", "superuser": "broker-db-superuser"}


@pytest.mark.parametrize("profile", ["minimal-50k", "standard"])
def test_jvm_heap_leaves_room_under_the_memory_limit(render, profile):
    [scorpio] = pod_of(render(profile), "Deployment", "scorpio")["containers"]
    heap = re.search(r"-Xmx(\S+)", wrapper(scorpio)).group(1)
    limit = bytes_of(scorpio["resources"]["limits"]["memory"])
    assert 0.5 * limit <= bytes_of(heap.replace("g", "Gi").replace("m", "Mi")) <= 0.7 * limit


def test_runs_the_images_quarkus_jar(render):
    [scorpio] = pod_of(render(), "Deployment", "scorpio")["containers"]
    last = wrapper(scorpio).splitlines()[-1].split()
    assert last[:2] == ["exec", "java"] and last[-2:] == ["-jar", "/usr/src/scorpio/quarkus-run.jar"]
    assert "-XX:+ExitOnOutOfMemoryError" in last


def test_quarkus_health_probes(render):
    [scorpio] = pod_of(render(), "Deployment", "scorpio")["containers"]
    assert scorpio["startupProbe"]["httpGet"]["path"] == "/q/health/started"
    assert scorpio["readinessProbe"]["httpGet"]["path"] == "/q/health/ready"
    assert scorpio["livenessProbe"]["httpGet"]["path"] == "/q/health/live"


def test_read_only_root_with_a_writable_tmp(render):
    pod = pod_of(render(), "Deployment", "scorpio")
    [scorpio] = pod["containers"]
    assert scorpio["securityContext"]["readOnlyRootFilesystem"] is True
    assert {"name": "tmp", "mountPath": "/tmp"} in scorpio["volumeMounts"]
    assert any(v["name"] == "tmp" and "emptyDir" in v for v in pod["volumes"])


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
    ) == ("scorpio", 9090, True, "api", "/ngsi-ld/", True)
    service = find(rendering, "Service", "scorpio")
    assert [p["port"] for p in service["spec"]["ports"]] == [9090]


def test_no_kafka_the_broker_talks_only_to_its_database_the_contexts_and_the_web(render):
    rendering = render()
    [scorpio] = pod_of(rendering, "Deployment", "scorpio")["containers"]
    assert not {"BUSHOST", "BOOTSTRAP_SERVERS"} & set(env_of(scorpio))
    egress = find(rendering, "NetworkPolicy", "allow-egress-scorpio")["spec"]["egress"]
    in_cluster = sorted(
        (rule["to"][0]["podSelector"]["matchLabels"]["app.kubernetes.io/name"], rule["ports"][0]["port"])
        for rule in egress
        if "podSelector" in rule["to"][0]
    )
    assert in_cluster == [("broker-db", 5432), ("context-server", 8080)]
    web = [rule for rule in egress if "ipBlock" in rule["to"][0]]
    assert [sorted(p["port"] for p in rule["ports"]) for rule in web] == [[80, 443]]


def test_only_the_broker_and_its_backup_may_reach_the_database(render):
    ingress = find(render(), "NetworkPolicy", "allow-ingress-broker-db")["spec"]["ingress"]
    sources = sorted(rule["from"][0]["podSelector"]["matchLabels"]["app.kubernetes.io/name"] for rule in ingress)
    assert sources == ["broker-db-backup", "scorpio"]
    assert all(rule["ports"] == [{"protocol": "TCP", "port": 5432}] for rule in ingress)


@pytest.mark.parametrize("profile", ["minimal-50k", "standard"])
def test_one_instance_because_the_in_memory_runner_cannot_scale_out(render, profile):
    deployment = find(render(profile), "Deployment", "scorpio")
    assert deployment["spec"]["replicas"] == 1 and deployment["spec"]["strategy"] == {"type": "Recreate"}


def test_minimal_profile_sizes(render):
    footprint = render().footprints["broker"]
    assert footprint.cpu_request_m == 650 and footprint.memory_request == (1024 + 384) * 2**20


def test_broker_may_forward_to_the_iot_agent_it_has_registrations_from(render):
    calls = {(c.source, c.endpoint) for c in render().charts["broker"].meta.network.calls}
    assert ("scorpio", "ingestion/iot-admin") in calls


# --- public URLs ------------------------------------------------------------------------------------


@pytest.fixture
def render_city(write_blueprint, renderer):
    """The small-city example (every component on, no ingress controller) with Scorpio and a patch."""

    def run(patch: dict | None = None):
        patch = merge({"components": {"broker": {"enabled": True, "implementation": "scorpio"}}}, patch or {})
        return renderer.render(load_blueprint(write_blueprint(patch)))

    return run


TLS = {
    "external": {"mode": "external"},
    "none": {"mode": "none"},
    "secret": {"mode": "secret", "secret_name": "alderbrook-tls"},
}


@pytest.mark.parametrize(
    "tls, url",
    [
        ("external", "https://api.data.alderbrook.example"),
        ("secret", "https://api.data.alderbrook.example"),
        ("none", "http://api.data.alderbrook.example"),
    ],
)
def test_links_it_hands_out_carry_the_public_url(render_city, tls, url):
    [scorpio] = pod_of(render_city({"tls": TLS[tls]}), "Deployment", "scorpio")["containers"]
    assert env_of(scorpio)["SCORPIO_GATEWAYURL"] == url


def test_links_in_the_standard_example_carry_its_public_url(rendered_examples):
    [scorpio] = pod_of(rendered_examples["standard-city"], "Deployment", "scorpio")["containers"]
    assert env_of(scorpio)["SCORPIO_GATEWAYURL"] == "https://api.data.riverton.example"


def in_cluster_egress(rendering, namespace: str) -> dict[tuple[str, str], list[int]]:
    """(namespace, workload) -> ports of every pod-selector rule of Scorpio's egress policy."""
    egress = find(rendering, "NetworkPolicy", "allow-egress-scorpio", namespace)["spec"]["egress"]
    out = {}
    for rule in egress:
        if "podSelector" in rule["to"][0]:
            [peer] = rule["to"]
            ns = peer.get("namespaceSelector", {}).get("matchLabels", {}).get(NS_LABEL, namespace)
            out[(ns, peer["podSelector"]["matchLabels"][NAME_LABEL])] = [p["port"] for p in rule["ports"]]
    return out


def test_public_urls_reach_traefik_s_entry_points_behind_the_ingress_controller(rendered_examples):
    """Behind Traefik, the city's public address lands on Traefik's pods on 8000/8443, not on the gateway."""
    egress = in_cluster_egress(rendered_examples["standard-city"], "riverton-broker")
    assert egress[("riverton-ingress-controller", "traefik")] == [8000, 8443]
    assert not [peer for peer in egress if peer[0] == "riverton-gateway"]


@pytest.mark.parametrize("tls, ports", [("external", [8080]), ("none", [8080]), ("secret", [8080, 8443])])
def test_public_urls_reach_the_gateway_s_listeners_without_an_ingress_controller(render_city, tls, ports):
    """The gateway's LoadBalancer forwards 80 to 8080, and 443 to 8443 only where it serves TLS."""
    egress = in_cluster_egress(render_city({"tls": TLS[tls]}), "alderbrook-broker")
    assert egress[("alderbrook-gateway", "gateway")] == ports
    assert not [peer for peer in egress if peer[1] == "traefik"]
