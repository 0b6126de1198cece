"""The platform on a real node: `mims up` of a blueprint with every component whose software can run
here (iam, gateway, data models, AI register, the catalogue, Prometheus, Scorpio's PostGIS, Mosquitto; see
docs/cluster.md for what never runs), with images built by tests/images and loaded into the node.
Every pod runs and turns Ready by its own probes, as its declared user, with a read-only root where declared; Keycloak imports the city's realm and
issues a client-credentials token; the gateway refuses a write without one (401) and passes one with
it through to CKAN, which publishes the dataset as DCAT-AP; the gateway serves the @context documents and the register with
their content types; Prometheus scrapes every target `up`; a device user publishes over MQTT with
its password and only to its own topics; a pod of a foreign namespace reaches no database, a
declared flow works and an undeclared one does not; PostgreSQL rows survive their pod's deletion
and a second `mims up`."""

from __future__ import annotations

import base64
import json
import os
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from kubernetes import client
from tests.conftest import FIXTURES
from tests.conftest import wait_for as shared_wait_for
from tests.engine.conftest import Mims
from tests.images.build import build
from tests.mqtt import NOT_AUTHORIZED, Client

from mims.cluster.node import missing_packages

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0, reason="a real node needs root"),
]

BLUEPRINT = FIXTURES / "real-node" / "blueprint.yaml"
IMAGES = (
    "pause",
    "busybox",
    "coredns",
    "nginx-unprivileged",
    "postgres",
    "oauth2-proxy",
    "keycloak",
    "prometheus",
    "postgis",
    "eclipse-mosquitto",
    "ckan-base",
    "ckan-solr",
    "valkey",
)
CITY, DOMAIN, REALM = "nodeville", "data.nodeville.example", "nodeville"
BUSYBOX = "docker.io/library/busybox:1.35.0"


def wait_for(what: str, check, timeout: float = 120.0):
    """Polls through "not there yet" (the API's 404) and "not answering yet" (a refused connection)."""
    return shared_wait_for(what, check, timeout, ignoring=(client.ApiException, OSError))


@pytest.fixture(scope="module")
def platform(homes, toolchain):
    if missing_packages():
        pytest.fail(f"a real node needs {', '.join(missing_packages())} (scripts/test installs them)")
    archives = [build(name) for name in IMAGES]
    mims = Mims(homes("real-node"), node=True)
    try:
        mims.ok("cluster", "create", "--node")
        mims.ok("cluster", "load-images", *archives)
        up = mims.ok("up", BLUEPRINT, "--yes", "--json")
        yield mims, up
    finally:
        mims.delete()


@pytest.fixture(scope="module")
def core(platform) -> client.CoreV1Api:
    return client.CoreV1Api(platform[0].api())


@pytest.fixture(scope="module")
def address(platform) -> str:
    """Where the gateway's LoadBalancer Service answers: the node's own address."""
    return platform[0].cluster.node_ip()


def gateway(address: str, host: str, path: str, data: bytes | None = None, headers: dict | None = None):
    """A request to the gateway, as a browser sends it to the city's host names."""
    request = urllib.request.Request(
        f"http://{address}{path}", data=data, headers={"Host": f"{host}.{DOMAIN}", **(headers or {})}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


def test_every_pod_runs_ready_without_restarts(core):
    pods = core.list_pod_for_all_namespaces().items
    ours = [p for p in pods if p.metadata.namespace.startswith(f"{CITY}-")]
    assert {p.metadata.namespace for p in ours} == {
        f"{CITY}-{c}"
        for c in ("iam", "gateway", "data-models", "ai-registry", "monitoring", "broker", "ingestion", "catalogue")
    }
    time.sleep(20)  # settling: a probe failing now would restart a container
    for pod in core.list_pod_for_all_namespaces().items:
        if pod.metadata.namespace.startswith(f"{CITY}-") and pod.status.phase != "Succeeded":
            ready = {c.type: c.status for c in pod.status.conditions}.get("Ready")
            assert ready == "True", pod.metadata.name
            assert all(s.restart_count == 0 for s in pod.status.container_statuses), pod.metadata.name


def test_containers_run_as_their_declared_users_with_read_only_roots(core, platform):
    """Read from the host: the uid of each container's processes (/proc) against the pod's spec."""
    checked = 0
    for pod in core.list_pod_for_all_namespaces().items:
        if not pod.metadata.namespace.startswith(f"{CITY}-"):
            continue
        statuses = {s.name: s for s in pod.status.container_statuses}
        for spec in pod.spec.containers:
            status = statuses[spec.name]
            pid = _container_pid(status.container_id.split("://")[1])
            uid = int(
                next(
                    line for line in Path(f"/proc/{pid}/status").read_text().splitlines() if line.startswith("Uid:")
                ).split()[1]
            )
            declared = (
                spec.security_context.run_as_user if spec.security_context else None
            ) or pod.spec.security_context.run_as_user
            if declared is not None:
                assert uid == declared, (pod.metadata.name, spec.name)
            assert uid != 0, (pod.metadata.name, spec.name)
            root_options = next(
                line.split()[5]
                for line in Path(f"/proc/{pid}/mountinfo").read_text().splitlines()
                if line.split()[4] == "/"
            )
            if spec.security_context and spec.security_context.read_only_root_filesystem:
                assert "ro" in root_options.split(","), (pod.metadata.name, spec.name)
            checked += 1
    # keycloak, keycloak-db, gateway, oauth2-proxy, context-server, register, prometheus, broker-db,
    # mosquitto, ckan, solr, catalogue-db, valkey
    assert checked == 13


def _container_pid(container_id: str) -> int:
    """The first process of a container, from its cgroup (cgroupfs driver: .../pod<uid>/<id>)."""
    for procs in Path("/sys/fs/cgroup/pids/kubepods").rglob("cgroup.procs"):
        if procs.parent.name == container_id:
            pids = procs.read_text().split()
            if pids:
                return int(pids[0])
    raise AssertionError(f"no process for container {container_id}")


def realm_token(core, address: str, client_id: str) -> dict:
    """A client-credentials token of the realm's client, asked for through the gateway."""
    secrets = core.read_namespaced_secret("oidc-clients", f"{CITY}-iam").data
    form = urllib.parse.urlencode(
        {
            "grant_type": "client_credentials",
            "client_id": client_id,
            "client_secret": base64.b64decode(secrets[client_id]).decode(),
        }
    ).encode()
    code, _, body = gateway(
        address,
        "auth",
        f"/realms/{REALM}/protocol/openid-connect/token",
        form,
        {"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert code == 200, body
    return json.loads(body)


def test_keycloak_imported_the_realm_and_issues_a_client_credentials_token(core, address):
    token = realm_token(core, address, "broker")
    assert token["token_type"].lower() == "bearer" and token["access_token"].count(".") == 2


def test_the_gateway_refuses_a_write_without_a_token_and_passes_one_with_it_to_ckan(core, address):
    """docs/components/catalogue.md, "Publishing": the realm token for the gateway in Authorization,
    CKAN's own API token in X-CKAN-API-Key."""
    ns = f"{CITY}-catalogue"
    ckan_token = run_in(
        core, "ckan-0", ns, "sh /etc/ckan/ckan-cli.sh user token add admin real-node | tail -n 1", "ckan"
    )
    ckan_token = ckan_token.strip().split()[-1]
    headers = {"Content-Type": "application/json", "X-CKAN-API-Key": ckan_token}
    organization = json.dumps({"name": "nodeville", "title": "Nodeville"}).encode()

    code, _, body = gateway(address, "data", "/api/3/action/organization_create", organization, headers)
    assert code == 401 and b'"help"' not in body  # the gateway's answer: CKAN never saw it

    bearer = {"Authorization": f"Bearer {realm_token(core, address, 'catalogue')['access_token']}"}
    code, _, body = gateway(address, "data", "/api/3/action/organization_create", organization, headers | bearer)
    assert code == 200 and json.loads(body)["success"], body
    dataset = json.dumps(
        {"name": "air-quality", "title": "Air quality", "owner_org": "nodeville", "notes": "Hourly NO2"}
    ).encode()
    code, _, body = gateway(address, "data", "/api/3/action/package_create", dataset, headers | bearer)
    assert code == 200 and json.loads(body)["success"], body

    # Read back without any token: CKAN's search (Solr) and the DCAT-AP serialisation of ckanext-dcat.
    code, _, body = gateway(address, "data", "/api/3/action/package_search?q=name:air-quality")
    assert code == 200 and json.loads(body)["result"]["count"] == 1, body
    code, headers, body = gateway(address, "data", "/dataset/air-quality.ttl")
    assert code == 200 and headers["Content-Type"].startswith("text/turtle"), (code, body[:300])
    assert b"dcat:Dataset" in body and b"Air quality" in body


def test_the_gateway_serves_contexts_and_the_register_with_their_content_types(address):
    code, headers, body = gateway(address, "api", "/context/ats.jsonld")
    assert code == 200 and headers["Content-Type"] == "application/ld+json" and json.loads(body)["@context"]
    code, headers, body = gateway(address, "algorithms", "/")
    assert code == 200 and headers["Content-Type"].startswith("text/html") and b"<html" in body
    code, headers, body = gateway(address, "algorithms", "/api/register.json")
    assert code == 200 and headers["Content-Type"].startswith("application/json")
    assert len(json.loads(body)["algorithms"]) == 2


def test_prometheus_reports_every_scrape_target_up(core):
    """Asked through the API server's service proxy: Prometheus is not public."""

    def targets() -> list[dict]:
        raw = core.connect_get_namespaced_service_proxy_with_path(
            "prometheus:9090", f"{CITY}-monitoring", "api/v1/targets", _preload_content=False
        ).data
        return json.loads(raw)["data"]["activeTargets"]

    # Every target scraped at least once (30 s interval), then all of them up.
    wait_for("every target scraped", lambda: all(t["health"] != "unknown" for t in targets()), timeout=90)
    found = {(t["labels"]["component"], t["labels"]["workload"]): t["health"] for t in targets()}
    assert set(found) == {
        ("iam", "keycloak"),
        ("gateway", "oauth2-proxy"),
        ("monitoring", "prometheus"),
    }, found
    assert set(found.values()) == {"up"}, [t for t in targets() if t["health"] != "up"]


def test_a_device_user_publishes_with_its_password_and_only_as_its_device(core):
    """Against the Mosquitto pod as deployed, with the passwords the engine generated; from the host,
    which reaches pod addresses (NetworkPolicy admits the node itself, as it must for probes)."""
    ns = f"{CITY}-ingestion"
    passwords = {k: base64.b64decode(v).decode() for k, v in core.read_namespaced_secret("mqtt-users", ns).data.items()}
    [pod] = core.list_namespaced_pod(ns, label_selector="app.kubernetes.io/name=mosquitto").items
    host = pod.status.pod_ip
    assert Client(1883, "meter-1", "wrong", "meter-1", host=host).connack == NOT_AUTHORIZED
    assert Client(1883, client_id="anonymous", host=host).connack == NOT_AUTHORIZED
    agent = Client(1883, "iot-agent", passwords["iot-agent"], "agent", host=host)
    agent.subscribe("/+/+/attrs")
    device = Client(1883, "meter-1", passwords["meter-1"], "meter-1", host=host)
    assert device.publish("/key1/meter-1/attrs", b'{"kwh": 12}') == 0
    assert agent.receive(timeout=3) == ("/key1/meter-1/attrs", b'{"kwh": 12}')
    assert device.publish("/key1/meter-2/attrs", b'{"kwh": 99}') == NOT_AUTHORIZED
    assert agent.receive(timeout=1) is None


def run_in(core, pod: str, namespace: str, command: str, container: str | None = None) -> str:
    from kubernetes.stream import stream

    return stream(
        core.connect_get_namespaced_pod_exec,
        pod,
        namespace,
        container=container,
        command=["sh", "-c", command],
        stderr=True,
        stdout=True,
    )


def start_probe(core, namespace: str, labels: dict | None = None) -> str:
    """A busybox pod that passes restricted Pod Security and never turns Ready, so no Service whose
    selector its labels match ever sends it traffic."""
    wait_for(f"{namespace}'s ServiceAccount", lambda: core.read_namespaced_service_account("default", namespace))
    name = "probe"
    core.create_namespaced_pod(
        namespace,
        {
            "metadata": {"name": name, "labels": labels or {}},
            "spec": {
                "securityContext": {
                    "runAsNonRoot": True,
                    "runAsUser": 65534,
                    "seccompProfile": {"type": "RuntimeDefault"},
                },
                "containers": [
                    {
                        "name": "main",
                        "image": BUSYBOX,
                        "imagePullPolicy": "IfNotPresent",
                        "command": ["sleep", "3600"],
                        "readinessProbe": {"exec": {"command": ["false"]}},
                        "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
                    }
                ],
            },
        },
    )
    wait_for(f"{namespace}/{name} Running", lambda: core.read_namespaced_pod(name, namespace).status.phase == "Running")
    return name


def connects(core, pod: str, namespace: str, host: str, port: int) -> bool:
    answer = run_in(core, pod, namespace, f"nc -w 3 {host} {port} </dev/null && echo CONNECTED")
    return "CONNECTED" in answer


def test_a_pod_in_a_foreign_namespace_reaches_no_database(core, platform):
    core.create_namespace({"metadata": {"name": "intruder"}})
    probe = start_probe(core, "intruder")
    for database in (f"keycloak-db.{CITY}-iam", f"broker-db.{CITY}-broker"):
        assert not connects(core, probe, "intruder", f"{database}.svc", 5432), database


def test_a_declared_flow_works_and_an_undeclared_one_does_not(core, platform):
    """A pod that NetworkPolicy takes for Keycloak: Keycloak's database (a declared flow) answers,
    the broker's database (no flow) does not."""
    ns = f"{CITY}-iam"
    probe = start_probe(core, ns, {"app.kubernetes.io/name": "keycloak", "app.kubernetes.io/instance": CITY})
    try:
        assert connects(core, probe, ns, "keycloak-db", 5432)
        assert not connects(core, probe, ns, f"broker-db.{CITY}-broker.svc", 5432)
    finally:
        core.delete_namespaced_pod(probe, ns, grace_period_seconds=0)


def test_database_rows_survive_the_pod_and_a_second_up(core, platform):
    mims, _ = platform
    ns = f"{CITY}-iam"

    def psql(sql: str) -> str:
        return run_in(core, "keycloak-db-0", ns, f'psql -U postgres -tAc "{sql}"', container="postgres")

    psql("CREATE TABLE IF NOT EXISTS kept (v text); INSERT INTO kept VALUES ('row-1')")
    uid = core.read_namespaced_pod("keycloak-db-0", ns).metadata.uid
    core.delete_namespaced_pod("keycloak-db-0", ns)
    wait_for(
        "keycloak-db-0 back and Ready",
        lambda: (
            (pod := core.read_namespaced_pod("keycloak-db-0", ns)).metadata.uid != uid
            and {c.type: c.status for c in pod.status.conditions or []}.get("Ready") == "True"
        ),
        timeout=180,
    )
    assert psql("SELECT v FROM kept").strip() == "row-1"
    again = mims.ok("up", BLUEPRINT, "--yes", "--json").json()
    assert all(s["create"] == s["update"] == s["replace"] == s["delete"] == 0 for s in again["stacks"])
    assert psql("SELECT v FROM kept").strip() == "row-1"
