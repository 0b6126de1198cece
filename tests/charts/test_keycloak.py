"""The `keycloak` iam chart: Keycloak 26 on PostgreSQL, the city's realm imported at first start."""

from __future__ import annotations

import json
import re

import pytest

from mims.blueprint import load_blueprint
from tests.conftest import env_of, find, pod_specs

NS = "alderbrook-iam"
CLIENTS = ("gateway", "broker", "catalogue", "grafana", "verify", "verify-no-roles")
ONLY_IAM = {
    name: {"enabled": False} for name in ("broker", "ingestion", "catalogue", "ai_registry", "gateway", "monitoring")
}
PLACEHOLDER = re.compile(r"^\$\{(MIMS_OIDC_SECRET_[A-Z_]+)\}$")


@pytest.fixture
def render(write_blueprint, renderer):
    def run(profile: str = "minimal-50k", iam: dict | None = None, **patch):
        blueprint = {
            "budget": {"profile": profile},
            "components": {**ONLY_IAM, "iam": {"enabled": True, **(iam or {})}},
            **patch,
        }
        return renderer.render(load_blueprint(write_blueprint(blueprint)))

    return run


def pod(rendering) -> dict:
    return find(rendering, "Deployment", "keycloak", NS)["spec"]["template"]["spec"]


def server(rendering) -> dict:
    [container] = pod(rendering)["containers"]
    return container


def realm_of(rendering) -> dict:
    return json.loads(find(rendering, "ConfigMap", "keycloak-realm", NS)["data"]["realm.json"])


def clients_of(rendering) -> dict:
    return {c["clientId"]: c for c in realm_of(rendering)["clients"]}


def test_realm_is_json_with_confidential_clients_only(render):
    clients = clients_of(render())
    assert set(clients) == set(CLIENTS)
    for client in clients.values():
        assert client["publicClient"] is False and client["clientAuthenticatorType"] == "client-secret"
        assert client["implicitFlowEnabled"] is False and client["directAccessGrantsEnabled"] is False


def test_client_secrets_are_placeholders_exported_from_the_shared_secret_files(render):
    rendering = render()
    script = server(rendering)["args"][0]
    generate = json.loads(find(rendering, "Secret", "oidc-clients", NS)["metadata"]["annotations"]["mims.io/generate"])
    for client_id, client in clients_of(rendering).items():
        match = PLACEHOLDER.match(client["secret"])
        assert match, f"client {client_id} holds a literal secret"
        assert f'export {match.group(1)}="$(< /run/secrets/oidc/{client_id})"' in script
        assert generate[client_id] == f"shared:oidc-client-{client_id}"
    secret = find(rendering, "Secret", "oidc-clients", NS)
    assert "data" not in secret and "stringData" not in secret


def test_no_environment_variable_carries_a_secret(render):
    rendering = render()
    for _, spec in pod_specs(rendering):
        for container in spec.get("initContainers", []) + spec["containers"]:
            for entry in container.get("env", []):
                assert "valueFrom" not in entry, f"{container['name']}: {entry['name']} comes from an object"
                if re.search(r"PASSWORD|SECRET", entry["name"]):
                    assert entry["name"].endswith("_FILE"), f"{container['name']}: {entry['name']} holds a secret"
    script = server(rendering)["args"][0]
    assert 'export KC_DB_PASSWORD="$(< /run/secrets/db/password)"' in script
    assert 'export KC_BOOTSTRAP_ADMIN_PASSWORD="$(< /run/secrets/admin/password)"' in script
    assert script.rstrip().endswith("exec /opt/keycloak/bin/kc.sh start --optimized --import-realm")


def test_secret_volumes_are_files_readable_by_the_group_only(render):
    volumes = {v["name"]: v for v in pod(render())["volumes"]}
    for name, secret_name in (
        ("db-credentials", "keycloak-db-credentials"),
        ("admin", "keycloak-admin"),
        ("oidc-clients", "oidc-clients"),
    ):
        assert volumes[name]["secret"] == {"secretName": secret_name, "defaultMode": 0o440}


def test_hostname_is_the_public_auth_url_of_the_blueprint_domain(render):
    env = env_of(server(render(domain="city.example.org")))
    assert env["KC_HOSTNAME"] == "https://auth.city.example.org"
    assert env["KC_PROXY_HEADERS"] == "xforwarded" and env["KC_HTTP_ENABLED"] == "true"
    assert env["KC_HOSTNAME_BACKCHANNEL_DYNAMIC"] == "true"


def test_hostname_follows_plain_http_when_tls_is_off(render):
    env = env_of(server(render(tls={"mode": "none"})))
    assert env["KC_HOSTNAME"] == "http://auth.data.alderbrook.example"


def test_realm_defaults_to_the_city_name_and_option_renames_it(render):
    assert realm_of(render())["realm"] == "alderbrook"
    assert realm_of(render(iam={"options": {"realm": "smart-city"}}))["realm"] == "smart-city"


def test_realm_security_defaults(render):
    realm = realm_of(render())
    assert realm["bruteForceProtected"] is True and realm["failureFactor"] <= 10
    assert realm["sslRequired"] == "external"
    assert realm["registrationAllowed"] is False
    assert realm["accessTokenLifespan"] <= 300
    assert realm["revokeRefreshToken"] is True


def test_redirect_uris_are_public_urls_under_the_domain(render):
    clients = clients_of(render(domain="city.example.org"))
    assert "https://api.city.example.org/oauth2/callback" in clients["gateway"]["redirectUris"]
    assert clients["grafana"]["redirectUris"] == ["https://grafana.city.example.org/login/generic_oauth"]
    assert clients["catalogue"]["redirectUris"] == ["https://data.city.example.org/*"]
    assert clients["broker"]["redirectUris"] == [] and clients["broker"]["standardFlowEnabled"] is False
    for client in clients.values():
        for uri in client["redirectUris"]:
            assert re.match(r"^https://[a-z]+\.city\.example\.org/", uri)


def test_every_client_puts_gateway_in_the_audience_except_grafana(render):
    clients = clients_of(render())
    for client_id in ("gateway", "broker", "catalogue", "verify", "verify-no-roles"):
        [mapper] = [m for m in clients[client_id]["protocolMappers"] if m["protocolMapper"] == "oidc-audience-mapper"]
        assert mapper["config"]["included.client.audience"] == "gateway"
        assert mapper["config"]["access.token.claim"] == "true"


def test_each_api_has_a_write_role_in_the_groups_claim_held_by_its_own_client(render):
    """The gateway asks oauth2-proxy for `allowed_groups=<component>-writer` (charts/nginx-oauth2-proxy):
    a role reaches a token only through the client's scope mapping and the service account's roles."""
    realm = realm_of(render())
    writers = ["ai-registry-writer", "broker-writer", "catalogue-writer", "ingestion-writer"]
    assert [r["name"] for r in realm["roles"]["realm"]] == writers
    scopes = {m["client"]: m["roles"] for m in realm["scopeMappings"]}
    accounts = {u["serviceAccountClientId"]: u["realmRoles"] for u in realm["users"]}
    assert scopes == {
        "broker": ["broker-writer"],
        "catalogue": ["catalogue-writer"],
        "verify": writers,
        "gateway": writers,
    }
    assert accounts == {
        "broker": ["broker-writer"],
        "catalogue": ["catalogue-writer"],
        "verify": writers,
        "verify-no-roles": [],
    }
    for client_id, client in clients_of(render()).items():
        mappers = [m for m in client["protocolMappers"] if m["protocolMapper"] == "oidc-usermodel-realm-role-mapper"]
        if client_id == "grafana":
            assert not mappers
            continue
        [mapper] = mappers
        assert mapper["config"]["claim.name"] == "groups" and mapper["config"]["access.token.claim"] == "true"


def test_server_runs_prebuilt_from_a_read_only_copy(render):
    spec = pod(render())
    _copy, build = spec["initContainers"]
    assert build["args"] == ["build"]
    build_env = env_of(build)
    server_env = env_of(spec["containers"][0])
    for name in ("KC_DB", "KC_HEALTH_ENABLED", "KC_METRICS_ENABLED"):
        assert build_env[name] == server_env[name]
    mounts = {m["name"]: m for m in spec["containers"][0]["volumeMounts"]}
    assert mounts["quarkus"]["mountPath"] == "/opt/keycloak/lib/quarkus" and mounts["quarkus"]["readOnly"] is True
    for container in spec["initContainers"] + spec["containers"]:
        assert container["securityContext"]["readOnlyRootFilesystem"] is True


def test_probes_use_the_management_port(render):
    container = server(render())
    assert container["startupProbe"]["httpGet"] == {"path": "/health/started", "port": "management"}
    assert container["readinessProbe"]["httpGet"]["path"] == "/health/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/health/live"
    assert {"name": "management", "containerPort": 9000, "protocol": "TCP"} in container["ports"]


def test_minimal_runs_one_pod_with_a_local_cache(render):
    rendering = render()
    assert find(rendering, "Deployment", "keycloak", NS)["spec"]["replicas"] == 1
    assert env_of(server(rendering))["KC_CACHE"] == "local"
    assert not [
        o for o in rendering.objects() if o["kind"] == "PodDisruptionBudget" and o["metadata"]["namespace"] == NS
    ]


def test_standard_runs_a_clustered_pair_with_a_disruption_budget(render):
    rendering = render(profile="standard")
    assert find(rendering, "Deployment", "keycloak", NS)["spec"]["replicas"] == 2
    assert env_of(server(rendering))["KC_CACHE"] == "ispn"
    assert find(rendering, "PodDisruptionBudget", "keycloak", NS)["spec"]["minAvailable"] == 1
    ingress = find(rendering, "NetworkPolicy", "allow-ingress-keycloak", NS)["spec"]["ingress"]
    cluster_ports = {
        p["port"]
        for rule in ingress
        if rule.get("from") == [{"podSelector": {"matchLabels": {"app.kubernetes.io/name": "keycloak"}}}]
        for p in rule["ports"]
    }
    assert cluster_ports == {7800, 57800}


def test_keycloak_may_reach_its_database_only(render):
    egress = find(render(), "NetworkPolicy", "allow-egress-keycloak", NS)["spec"]["egress"]
    targets = {
        (rule["to"][0]["podSelector"]["matchLabels"]["app.kubernetes.io/name"], p["port"])
        for rule in egress
        for p in rule["ports"]
    }
    assert ("keycloak-db", 5432) in targets
    assert {name for name, _ in targets} == {"keycloak", "keycloak-db"}


def test_heap_leaves_room_below_the_memory_limit(render):
    for profile in ("minimal-50k", "standard"):
        heap = env_of(server(render(profile=profile)))["JAVA_OPTS_KC_HEAP"]
        percent = int(re.search(r"MaxRAMPercentage=(\d+)", heap).group(1))
        assert percent <= 65
