"""The platform on a real node: `mims up` of a blueprint with every component whose software can run
here (iam, gateway, data models, AI register, the catalogue, Prometheus, Scorpio's PostGIS, Mosquitto; see
docs/cluster.md for what never runs), with images built by tests/images and loaded into the node.
Every pod runs and turns Ready by its own probes, as its declared user, with a read-only root where
declared; `mims verify` passes every probe of the components that run (docs/mims.md) and fails, naming
the probe, when the platform is broken on purpose (a write route without its token check, a deleted
NetworkPolicy, a missing @context file, a corrupted register, a catalogue without the DCAT-AP 3
profile, a metrics endpoint Prometheus cannot discover); a device user publishes over MQTT with
its password and only to its own topics; a declared flow works and an undeclared one does not;
PostgreSQL rows survive their pod's deletion and a second `mims up --verify`, which changes nothing and verifies.
Last, backups: a scheduled one runs within its schedule; rows and a Keycloak user survive `mims backup now`,
`mims destroy --purge-data`, `mims up` and `mims restore`, after which `mims verify` passes again; a
restore of a damaged dump fails and changes nothing."""

from __future__ import annotations

import base64
import json
import os
import socket
import time
from contextlib import contextmanager
from pathlib import Path
from xml.etree import ElementTree

import pytest
from kubernetes import client
from tests.conftest import FIXTURES
from tests.conftest import wait_for as shared_wait_for
from tests.engine.conftest import Mims, start_real_node
from tests.mqtt import NOT_AUTHORIZED, Client

from mims.backup import RESTARTED_ANNOTATION, rolled_out

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
    mims = Mims(homes("real-node"), node=True)
    try:
        start_real_node(mims, IMAGES)
        up = mims.ok("up", BLUEPRINT, "--yes", "--json")
        yield mims, up
    finally:
        mims.delete()


@pytest.fixture(scope="module")
def core(platform) -> client.CoreV1Api:
    return client.CoreV1Api(platform[0].api())


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


def test_status_reports_every_workload_ready_and_the_suspended_job_as_such(platform):
    status = platform[0].ok("status", BLUEPRINT, "--json").json()
    assert status["ready"] is True, [w for w in status["workloads"] if not w["ok"]]
    [job] = [w for w in status["workloads"] if w["kind"] == "Job"]
    assert job["ready"] == "suspended"


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


def run_checked(core, pod: str, namespace: str, command: str, container: str | None = None) -> str:
    """`run_in` that fails the test, with the output, when the command exits non-zero (exec does not
    say): a write a test relies on must not fail unseen."""
    marker = "mims-test-exit="
    output = run_in(core, pod, namespace, f'{command}; echo "{marker}$?"', container)
    text, _, status = output.rpartition(marker)
    assert status.strip() == "0", f"`{command}` in {namespace}/{pod} exited {status.strip()}: {text.strip()}"
    return text


def busybox_pod(name: str, uid: int, labels: dict | None = None, claim: str | None = None) -> dict:
    """A busybox pod that passes restricted Pod Security, optionally with a volume claim at /backups."""
    container = {
        "name": "main",
        "image": BUSYBOX,
        "imagePullPolicy": "IfNotPresent",
        "command": ["sleep", "3600"],
        "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
    }
    spec = {
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": uid,
            "runAsGroup": uid,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [container],
    }
    if claim:
        container["volumeMounts"] = [{"name": "claim", "mountPath": "/backups"}]
        spec["volumes"] = [{"name": "claim", "persistentVolumeClaim": {"claimName": claim}}]
    return {"metadata": {"name": name, "labels": labels or {}}, "spec": spec}


def start_probe(core, namespace: str, labels: dict | None = None) -> str:
    """A busybox pod that never turns Ready, so no Service whose selector its labels match ever
    sends it traffic."""
    wait_for(f"{namespace}'s ServiceAccount", lambda: core.read_namespaced_service_account("default", namespace))
    name = "probe"
    pod = busybox_pod(name, 65534, labels)
    pod["spec"]["containers"][0]["readinessProbe"] = {"exec": {"command": ["false"]}}
    core.create_namespaced_pod(namespace, pod)
    wait_for(f"{namespace}/{name} Running", lambda: core.read_namespaced_pod(name, namespace).status.phase == "Running")
    return name


def connects(core, pod: str, namespace: str, host: str, port: int) -> bool:
    answer = run_in(core, pod, namespace, f"nc -w 3 {host} {port} </dev/null && echo CONNECTED")
    return "CONNECTED" in answer


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


# What `mims verify` proves here (the components that run): every probe of MIM2, MIM3, MIM5, MIM6 and
# operations. MIM1's are skipped (neither Scorpio nor the IoT Agent has a pod here), as is TLS
# (tls.mode none).
PASSING = {
    "@context ats.jsonld served as application/ld+json",
    "CKAN API answers",
    "DCAT catalogue /catalog.ttl parses (text/turtle)",
    "DCAT catalogue /catalog.jsonld parses (application/ld+json)",
    "DCAT catalogue conforms to DCAT-AP 3.0.0 (SHACL)",
    "a dataset published with a token appears in the DCAT catalogue",
    "register JSON has every entry, each valid ATS 0.3.1",
    "register page lists every entry",
    *(
        f"{endpoint}: {what} {how}"
        for endpoint, what in (
            ("broker/ngsi-ld", "a write"),
            ("catalogue/ckan", "a write"),
            ("ai-registry/register", "a write"),
            ("ingestion/iot-groups", "any request"),
            ("ingestion/iot-services", "any request"),
            ("ingestion/iot-devices", "any request"),
        )
        for how in ("without a token gets 401", "with another client's token gets 403")
    ),
    "undeclared hosts, paths and hidden paths answer 404",
    "admin consoles answer only where the blueprint declares them",
    "a foreign namespace reaches no database",
    "every metrics endpoint is scraped and up",
    "alert rules are loaded",
}


def verify(mims, *only: str, junit: Path | None = None):
    options = [a for mim in only for a in ("--only", mim)] + (["--junit", str(junit)] if junit else [])
    run = mims.run("verify", BLUEPRINT, "--json", *options)
    assert run.code in (0, 8) and run.out, run.describe()
    results = {r["probe"]: r for m in run.json()["mims"] for r in m["results"]}
    return run, results


def test_verify_passes_every_probe_of_the_components_that_run_here(platform, tmp_path):
    run, results = verify(platform[0], junit=tmp_path / "verify.xml")
    assert run.code == 0, run.describe()
    assert {name for name, r in results.items() if r["status"] == "pass"} == PASSING
    skipped = {r["message"] for r in results.values() if r["status"] == "skip"}
    assert skipped == {
        "the blueprint runs no pod of broker/scorpio (replicas: 0)",
        "the blueprint runs no pod of ingestion/iot-agent (replicas: 0)",
        "tls.mode none: the blueprint asks for plain HTTP (local trials only)",
    }
    suites = ElementTree.parse(tmp_path / "verify.xml").getroot()
    assert suites.get("tests") == str(len(results)) and suites.get("failures") == "0"


@contextmanager
def broken(core: client.CoreV1Api, namespace: str, configmap: str, change, workload: str):
    """The platform broken on purpose: `change` edits the data of a ConfigMap and the workload's pods are
    replaced so they read it; afterwards the ConfigMap is put back and the pods replaced again."""
    saved = core.read_namespaced_config_map(configmap, namespace)
    original = dict(saved.data)
    saved.data = change(dict(original))
    core.replace_namespaced_config_map(configmap, namespace, saved)
    replace_pods(core, namespace, workload)
    try:
        yield
    finally:
        current = core.read_namespaced_config_map(configmap, namespace)
        current.data = original
        core.replace_namespaced_config_map(configmap, namespace, current)
        replace_pods(core, namespace, workload)


def replace_pods(core: client.CoreV1Api, namespace: str, workload: str) -> None:
    selector = f"app.kubernetes.io/name={workload}"
    old = {p.metadata.uid for p in core.list_namespaced_pod(namespace, label_selector=selector).items}
    core.delete_collection_namespaced_pod(namespace, label_selector=selector, grace_period_seconds=0)

    def new_pods_ready() -> bool:
        pods = core.list_namespaced_pod(namespace, label_selector=selector).items
        return bool(pods) and all(
            p.metadata.uid not in old and {c.type: c.status for c in p.status.conditions or []}.get("Ready") == "True"
            for p in pods
        )

    wait_for(f"{namespace}/{workload} replaced and Ready", new_pods_ready, timeout=180)
    wait_for(f"{namespace}/{workload}'s Service answering", lambda: service_answers(core, namespace, workload))


def service_answers(core: client.CoreV1Api, namespace: str, name: str) -> bool:
    """The Service named after the workload (if any) connects from the host: kube-proxy has the new
    pods (until then a Service without endpoints refuses connections)."""
    try:
        service = core.read_namespaced_service(name, namespace)
    except client.ApiException as error:
        if error.status == 404:
            return True
        raise
    with socket.create_connection((service.spec.cluster_ip, service.spec.ports[0].port), timeout=3):
        return True


def failed(results: dict) -> dict[str, str]:
    return {name: r["message"] for name, r in results.items() if r["status"] == "fail"}


def test_verify_catches_a_write_route_that_lost_its_token_check(core, platform):
    def drop_check(data: dict) -> dict:
        assert "auth_request /_mims/auth/catalogue;" in data["nginx.conf"]
        return data | {"nginx.conf": data["nginx.conf"].replace("auth_request /_mims/auth/catalogue;", "")}

    with broken(core, f"{CITY}-gateway", "gateway-config", drop_check, "gateway"):
        run, results = verify(platform[0], "MIM6")
    assert run.code == 8, run.describe()
    problems = failed(results)
    assert set(problems) == {
        "catalogue/ckan: a write without a token gets 401",
        "catalogue/ckan: a write with another client's token gets 403",
    }, problems
    assert "(expected 401)" in problems["catalogue/ckan: a write without a token gets 401"]


def test_verify_catches_a_deleted_network_policy(core, platform):
    """Without the iam namespace's policies (its default deny among them) Keycloak's database is open."""
    networking = client.NetworkingV1Api(platform[0].api())
    namespace = f"{CITY}-iam"
    policies = networking.list_namespaced_network_policy(namespace).items
    assert policies
    for policy in policies:
        networking.delete_namespaced_network_policy(policy.metadata.name, namespace)
    try:
        run, results = verify(platform[0], "MIM6")
    finally:
        for policy in policies:
            policy.metadata = client.V1ObjectMeta(
                name=policy.metadata.name, namespace=namespace, labels=policy.metadata.labels
            )
            networking.create_namespaced_network_policy(namespace, policy)
    assert run.code == 8, run.describe()
    problems = failed(results)
    assert list(problems) == ["a foreign namespace reaches no database"], problems
    assert f"{namespace}/keycloak-db:5432" in problems["a foreign namespace reaches no database"]


def test_verify_catches_a_missing_context_file(core, platform):
    def remove(data: dict) -> dict:
        del data["ats.jsonld"]
        return data

    with broken(core, f"{CITY}-data-models", "jsonld-contexts", remove, "context-server"):
        run, results = verify(platform[0], "MIM2")
    assert run.code == 8, run.describe()
    assert "HTTP 404" in failed(results)["@context ats.jsonld served as application/ld+json"]


def test_verify_catches_a_corrupted_register(core, platform):
    with broken(
        core, f"{CITY}-ai-registry", "register-api", lambda d: d | {"register.json": '{"algorithms": ['}, "register"
    ):
        run, results = verify(platform[0], "MIM5")
    assert run.code == 8, run.describe()
    assert "not a register document" in failed(results)["register JSON has every entry, each valid ATS 0.3.1"]


def test_verify_catches_a_catalogue_that_is_not_dcat_ap_3(core, platform):
    """Without the mims profile ckanext-dcat's catalogue node lacks a publisher (docs/components/catalogue.md)."""

    def drop_profile(data: dict) -> dict:
        line = "ckanext.dcat.rdf.profiles = euro_dcat_ap_3 mims_catalog"
        assert line in data["ckan.ini"]
        return data | {"ckan.ini": data["ckan.ini"].replace(line, "ckanext.dcat.rdf.profiles = euro_dcat_ap_3")}

    with broken(core, f"{CITY}-catalogue", "ckan-config", drop_profile, "ckan"):
        run, results = verify(platform[0], "MIM3")
    assert run.code == 8, run.describe()
    problems = failed(results)
    assert list(problems) == ["DCAT catalogue conforms to DCAT-AP 3.0.0 (SHACL)"], problems
    assert "publisher" in problems["DCAT catalogue conforms to DCAT-AP 3.0.0 (SHACL)"]


def test_verify_catches_a_metrics_endpoint_prometheus_cannot_find(core, platform):
    """The headless Service Prometheus discovers oauth2-proxy's pods by (dns_sd_configs) deleted."""
    namespace = f"{CITY}-gateway"
    saved = core.read_namespaced_service("oauth2-proxy-metrics", namespace)
    core.delete_namespaced_service("oauth2-proxy-metrics", namespace)

    def scraped_workloads() -> set[str]:
        raw = core.connect_get_namespaced_service_proxy_with_path(
            "prometheus:9090", f"{CITY}-monitoring", "api/v1/targets", _preload_content=False
        ).data
        return {t["labels"].get("workload") for t in json.loads(raw)["data"]["activeTargets"]}

    try:
        # The break takes effect at Prometheus's next DNS refresh (30 s).
        wait_for("oauth2-proxy gone from Prometheus's targets", lambda: "oauth2-proxy" not in scraped_workloads())
        run, results = verify(platform[0], "ops")
    finally:
        saved.metadata = client.V1ObjectMeta(
            name="oauth2-proxy-metrics", namespace=namespace, labels=saved.metadata.labels
        )
        saved.spec.cluster_ips = None  # headless: clusterIP stays "None"
        core.create_namespaced_service(namespace, saved)
    assert run.code == 8, run.describe()
    problems = failed(results)
    assert "gateway/oauth2-proxy" in problems["every metrics endpoint is scraped and up"], problems


def test_database_rows_survive_the_pod_and_a_second_up(core, platform):
    mims, _ = platform
    ns = f"{CITY}-iam"

    def psql(sql: str) -> str:
        return run_checked(
            core, "keycloak-db-0", ns, f'psql -U postgres -v ON_ERROR_STOP=1 -tAc "{sql}"', container="postgres"
        )

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
    again = mims.ok("up", BLUEPRINT, "--yes", "--json", "--verify").json()
    assert again["verify"]["ok"] is True
    assert all(s["create"] == s["update"] == s["replace"] == s["delete"] == 0 for s in again["stacks"])
    assert psql("SELECT v FROM kept").strip() == "row-1"


# -- backups: these run last, in this order; the second one destroys the platform's data ----------------


def test_a_scheduled_backup_runs_within_its_schedule(core, platform):
    mims, _ = platform
    batch = client.BatchV1Api(mims.api())
    ns, cron = f"{CITY}-iam", "keycloak-db-backup"
    original = batch.read_namespaced_cron_job(cron, ns).spec.schedule
    batch.patch_namespaced_cron_job(cron, ns, {"spec": {"schedule": "* * * * *"}})
    try:
        job = wait_for(
            "a Job of the every-minute schedule succeeded",
            lambda: next(
                (
                    j
                    for j in batch.list_namespaced_job(ns).items
                    if any(o.name == cron for o in j.metadata.owner_references or []) and j.status.succeeded
                ),
                None,
            ),
            timeout=180,
        )
    finally:
        batch.patch_namespaced_cron_job(cron, ns, {"spec": {"schedule": original}})
    pod = core.list_namespaced_pod(ns, label_selector=f"job-name={job.metadata.name}").items[0]
    written = json.loads(core.read_namespaced_pod_log(pod.metadata.name, ns).strip().splitlines()[-1])
    listed = mims.ok("backup", "list", BLUEPRINT, "iam", "--json").json()["backups"]
    assert written["workload"] == "keycloak-db"
    assert written["id"] in {b["id"] for b in listed if b["workload"] == "keycloak-db"}


def psql(core, sql: str, pod: str = "keycloak-db-0", namespace: str = f"{CITY}-iam") -> str:
    command = f'psql -U postgres -d keycloak -v ON_ERROR_STOP=1 -tAc "{sql}"'
    return run_checked(core, pod, namespace, command, container="postgres").strip()


def kcadm(core, command: str, password: str = "$(cat /run/secrets/admin/password)") -> str:
    """Keycloak's admin CLI in the running server's container, logged in as the bootstrap admin `admin`
    (with the password the server was started with, unless another is given). Its JVM gets a small
    heap (kcadm.sh passes KC_OPTS to java) beside the server's in the container's memory limit."""
    pods = core.list_namespaced_pod(f"{CITY}-iam", label_selector="app.kubernetes.io/name=keycloak").items
    [pod] = [p for p in pods if p.metadata.deletion_timestamp is None]  # not the one a restart is ending
    cli = "/opt/keycloak/bin/kcadm.sh"
    login = (
        f"{cli} config credentials --config /tmp/kcadm.config --server http://localhost:8080 --realm master "
        f'--user admin --password "{password}"'
    )
    command = f"export KC_OPTS=-Xmx64m; {login} >/dev/null && {cli} {command} --config /tmp/kcadm.config"
    return run_checked(core, pod.metadata.name, f"{CITY}-iam", command)


class Hidden(str):
    """A password that a failing test's traceback shows as <hidden>."""

    def __repr__(self) -> str:
        return "<hidden>"


def admin_password(core) -> Hidden:
    secret = core.read_namespaced_secret("keycloak-admin", f"{CITY}-iam")
    return Hidden(base64.b64decode(secret.data["password"]).decode())


def test_rows_and_a_keycloak_user_survive_backup_purge_up_and_restore(core, platform):
    mims, _ = platform
    psql(core, "CREATE TABLE backed_up (v text); INSERT INTO backed_up VALUES ('in-the-backup')")
    apps = client.AppsV1Api(mims.api())
    # Keycloak reconnects to its database after the earlier tests restarted it.
    wait_for("keycloak ready", lambda: rolled_out(apps.read_namespaced_deployment("keycloak", f"{CITY}-iam")), 300)
    kcadm(core, f"create users -r {REALM} -s username=kept-user -s enabled=true")
    admin_then = admin_password(core)
    made = mims.ok("backup", "now", BLUEPRINT, "--json").json()
    assert {(b["component"], b["workload"], b["id"]) for b in made["backups"]} == {
        ("iam", "keycloak-db", made["id"]),
        ("catalogue", "catalogue-db", made["id"]),
        ("broker", "broker-db", made["id"]),
    }
    psql(core, "INSERT INTO backed_up VALUES ('after-the-backup')")

    gone = mims.ok("destroy", BLUEPRINT, "--yes", "--purge-data")
    assert f"kept: the backup volumes in {CITY}-broker, {CITY}-catalogue, {CITY}-iam" in gone.out
    mims.ok("up", BLUEPRINT, "--yes")
    assert psql(core, "SELECT to_regclass('public.backed_up') IS NULL") == "t"  # a new, empty database

    restored = mims.ok("restore", BLUEPRINT, "--from", made["id"], "--yes", "--json").json()
    assert {r["database"] for r in restored["restored"]} == {"keycloak-db", "catalogue-db", "broker-db"}
    # `mims restore` returns once the applications run again on the restored data.
    keycloak = apps.read_namespaced_deployment("keycloak", f"{CITY}-iam")
    assert rolled_out(keycloak) and keycloak.spec.template.metadata.annotations[RESTARTED_ANNOTATION] == made["id"]
    assert rolled_out(apps.read_namespaced_stateful_set("ckan", f"{CITY}-catalogue"))
    assert psql(core, "SELECT v FROM backed_up") == "in-the-backup"
    assert admin_password(core) != admin_then  # generated again after the purge
    # The restored realm's administrator is the backup's, with its password of then (docs/operations.md).
    listed = kcadm(core, f"get users -r {REALM} -q username=kept-user --fields username", admin_then)
    users = json.loads(listed[listed.index("[") :])  # kcadm prints "Logging into ..." before the JSON
    assert users == [{"username": "kept-user"}]
    run, results = verify(mims)  # the clients' secrets are today's (after-restore.sql): every probe passes
    assert run.code == 0, failed(results)


@contextmanager
def on_backup_volume(core, namespace: str, claim: str):
    """A shell in a restricted busybox pod with a backup volume at /backups, as the backup Jobs' user."""
    pod = "backup-volume"
    core.create_namespaced_pod(namespace, busybox_pod(pod, 10999, claim=claim))
    try:
        wait_for(f"{pod} Running", lambda: core.read_namespaced_pod(pod, namespace).status.phase == "Running")
        yield lambda command: run_in(core, pod, namespace, command)
    finally:
        core.delete_namespaced_pod(pod, namespace, grace_period_seconds=0)
        wait_for(
            f"{pod} gone", lambda: not core.list_namespaced_pod(namespace, field_selector=f"metadata.name={pod}").items
        )


def test_a_restore_of_a_damaged_backup_fails_and_changes_nothing(core, platform):
    mims, _ = platform
    backup_id = mims.ok("backup", "now", BLUEPRINT, "iam", "--json").json()["id"]
    psql(core, "INSERT INTO backed_up VALUES ('after-the-second-backup')")
    rows = "in-the-backup,after-the-second-backup"
    dump = f"/backups/{backup_id}/keycloak.dump"
    with on_backup_volume(core, f"{CITY}-iam", "keycloak-db-backups") as shell:
        shell(f"head -c $(( $(stat -c %s {dump}) * 8 / 10 )) {dump} > /backups/cut && mv /backups/cut {dump}")
    failed_run = mims.run("restore", BLUEPRINT, "--from", backup_id, "iam", "--yes")
    assert failed_run.code == 11 and "is damaged" in failed_run.err, failed_run.describe()
    assert psql(core, "SELECT string_agg(v, ',' ORDER BY v DESC) FROM backed_up") == rows

    # The checksum made to match the cut dump: pg_restore fails half-way, and its transaction is never committed.
    with on_backup_volume(core, f"{CITY}-iam", "keycloak-db-backups") as shell:
        shell(f"cd /backups/{backup_id} && sha256sum keycloak.dump > SHA256SUMS")
    failed_run = mims.run("restore", BLUEPRINT, "--from", backup_id, "iam", "--yes")
    assert failed_run.code == 11 and "restore failed for 1 database(s)" in failed_run.err, failed_run.describe()
    assert psql(core, "SELECT string_agg(v, ',' ORDER BY v DESC) FROM backed_up") == rows
