"""Chart `iotagent-json` (component `ingestion`): IoT Agent JSON in NGSI-LD mode, Mosquitto, MongoDB."""

from __future__ import annotations

import json
import time

import pytest

from mims.blueprint import load_blueprint
from mims.errors import InvalidInput
from mims.secrets import generators
from tests.conftest import env_of, find, merge
from tests.mqtt import NOT_AUTHORIZED, Client, running_mosquitto

NS = "alderbrook-ingestion"
# Only the components this chart needs: ingestion requires the broker; the rest stays off.
ONLY_INGESTION = {
    "components": {
        "iam": {"enabled": False},
        "catalogue": {"enabled": False},
        "ai_registry": {"enabled": False},
        "gateway": {"enabled": False},
        "monitoring": {"enabled": False},
        "data_models": {"enabled": False},
    }
}


@pytest.fixture
def render(write_blueprint, renderer):
    def go(patch: dict | None = None):
        return renderer.render(load_blueprint(write_blueprint(merge(ONLY_INGESTION, patch or {}))))

    return go


def container(rendering, kind: str, name: str) -> dict:
    return find(rendering, kind, name, NS)["spec"]["template"]["spec"]["containers"][0]


def test_agent_writes_ngsi_ld_to_the_broker_endpoint(render):
    r = render()
    env = env_of(container(r, "Deployment", "iot-agent"))
    assert env["IOTA_CB_NGSI_VERSION"] == "ld"
    assert env["IOTA_CB_HOST"] == "orion-ld.alderbrook-broker.svc.cluster.local"
    assert env["IOTA_CB_PORT"] == "1026"
    assert env["IOTA_JSON_LD_CONTEXT"].startswith("https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context")


def test_agent_uses_a_persistent_mongodb_registry(render):
    r = render()
    c = container(r, "Deployment", "iot-agent")
    env = env_of(c)
    assert env["IOTA_REGISTRY_TYPE"] == "mongodb"
    assert not [name for name in env if name.startswith("IOTA_MONGO_")], "3.14 reads only IOTA_MONGO_URI"
    script = c["command"][2]
    assert f"@ingestion-db.{NS}.svc.cluster.local:27017/iotagentjson?authSource=admin" in script
    db = find(r, "StatefulSet", "ingestion-db", NS)
    assert db["spec"]["volumeClaimTemplates"][0]["metadata"]["annotations"]["mims.io/protect"] == "true"


def test_agent_gets_secrets_from_files_through_a_shell_wrapper(render):
    c = container(render(), "Deployment", "iot-agent")
    assert c["command"][:2] == ["/bin/sh", "-c"]
    script = c["command"][2]
    assert 'export IOTA_MQTT_PASSWORD="$mqtt_password"' in script
    assert "export IOTA_MONGO_URI=" in script
    assert script.strip().splitlines()[-1] == "exec node /opt/iotagent-json/bin/iotagent-json"
    names = {e["name"] for e in c["env"]}
    assert not names & {"IOTA_MQTT_PASSWORD", "IOTA_MONGO_URI", "IOTA_DEFAULT_KEY"}
    assert all("valueFrom" not in e for e in c["env"])
    assert not any(m["mountPath"].startswith("/run/secrets") for m in c["volumeMounts"]), (
        "the agent scans /run/secrets at start"
    )


def test_well_known_default_api_key_is_replaced_by_a_generated_one(render):
    r = render()
    secret = find(r, "Secret", "iot-agent-keys", NS)
    assert json.loads(secret["metadata"]["annotations"]["mims.io/generate"]) == {"default-api-key": "random:32"}
    script = container(r, "Deployment", "iot-agent")["command"][2]
    assert 'export IOTA_DEFAULT_KEY="$default_key"' in script


def test_agent_uses_the_in_cluster_mosquitto_as_iot_agent(render):
    env = env_of(container(render(), "Deployment", "iot-agent"))
    assert env["IOTA_MQTT_HOST"] == f"mosquitto.{NS}.svc.cluster.local"
    assert env["IOTA_MQTT_PORT"] == "1883"
    assert env["IOTA_MQTT_USERNAME"] == "iot-agent"


def test_mqtt_users_secret_has_a_password_per_user_and_the_password_file(render):
    r = render({"components": {"ingestion": {"options": {"device_users": ["air-quality-01", "parking-01"]}}}})
    secret = find(r, "Secret", "mqtt-users", NS)
    fields = json.loads(secret["metadata"]["annotations"]["mims.io/generate"])
    assert fields == {
        "iot-agent": "random:32",
        "mims-verify": "random:32",
        "air-quality-01": "random:32",
        "parking-01": "random:32",
        "passwd": "mosquitto-passwd:iot-agent,mims-verify,air-quality-01,parking-01",
    }
    assert generators(secret)["passwd"].users == ("iot-agent", "mims-verify", "air-quality-01", "parking-01")
    assert "data" not in secret and "stringData" not in secret


def test_each_pod_mounts_only_the_secret_keys_it_needs(render):
    r = render()
    mosquitto = find(r, "Deployment", "mosquitto", NS)["spec"]["template"]["spec"]
    agent = find(r, "Deployment", "iot-agent", NS)["spec"]["template"]["spec"]
    secret_volumes = {
        name: {v["name"]: v["secret"] for v in pod["volumes"] if "secret" in v}
        for name, pod in (("mosquitto", mosquitto), ("agent", agent))
    }
    assert secret_volumes["mosquitto"]["passwd"]["items"] == [{"key": "passwd", "path": "passwd"}]
    assert secret_volumes["agent"]["mqtt-password"]["items"] == [{"key": "iot-agent", "path": "iot-agent"}]
    for volumes in secret_volumes.values():
        assert all(v["defaultMode"] == 0o440 for v in volumes.values())


@pytest.mark.parametrize("name", ["iot-agent", "mims-verify", "passwd"])
def test_device_user_may_not_take_a_reserved_key(render, name):
    with pytest.raises(InvalidInput, match=f"`{name}` is used by mims itself"):
        render({"components": {"ingestion": {"options": {"device_users": [name]}}}})


def test_acl_binds_the_device_id_level_to_the_user_name(render):
    acl = find(
        render({"components": {"ingestion": {"options": {"device_users": ["parking-1"]}}}}),
        "ConfigMap",
        "mosquitto-config",
        NS,
    )["data"]["acl"]
    lines = [line for line in acl.splitlines() if line and not line.startswith("#")]
    assert lines[:2] == ["user iot-agent", "topic readwrite #"]
    rules = [line.split() for line in lines[2:]]
    assert {kind for kind, _, _ in rules} == {"pattern"}, "devices get patterns only, no per-user topics"
    for _, access, topic in rules:
        levels = topic.removeprefix("/").removeprefix("json/").split("/")
        assert levels[:2] == ["+", "%u"], topic  # any API key, the user's own device id
        assert (access, levels[2]) in {
            ("write", "attrs"),
            ("write", "cmdexe"),
            ("write", "configuration"),
            ("read", "cmd"),
            ("read", "configuration"),
        }, topic


def test_new_device_user_rolls_mosquitto(render):
    def users_annotation(users):
        r = render({"components": {"ingestion": {"options": {"device_users": users}}}})
        return find(r, "Deployment", "mosquitto", NS)["spec"]["template"]["metadata"]["annotations"]

    assert users_annotation(["a"]) != users_annotation(["a", "b"])


def test_endpoints_follow_the_cross_chart_contract(renderer):
    meta = renderer.chart_for("ingestion", "iotagent-json").meta
    by_name = {e.name: e for e in meta.endpoints}
    http, admin = by_name["iot-http"], by_name["iot-admin"]
    assert (http.workload, http.port, http.public, http.host, http.path, http.writes_need_token) == (
        "iot-agent",
        7896,
        True,
        "iot",
        "/iot/",
        False,
    )
    assert (admin.workload, admin.port, admin.public) == ("iot-agent", 4041, False)
    assert [(m.workload, m.port, m.path) for m in meta.metrics] == [("iot-agent", 4041, "/metrics")]


def test_provisioning_api_is_public_for_token_holders_only(renderer):
    """Service groups carry API keys: reading them needs a token too. The paths are the agent's own
    (iotagent-node-lib 4.14.0) and longer than the southbound `/iot/`, so the gateway sends them to 4041."""
    provisioning = [
        e for e in renderer.chart_for("ingestion", "iotagent-json").meta.endpoints if e.port == 4041 and e.public
    ]
    assert sorted(e.path for e in provisioning) == ["/iot/devices", "/iot/groups", "/iot/services"]
    for e in provisioning:
        assert (e.workload, e.host, e.writes_need_token, e.reads_need_token) == ("iot-agent", "iot", True, True)


def test_mqtt_is_a_public_tcp_endpoint_on_8883(renderer):
    [mqtt] = [e for e in renderer.chart_for("ingestion", "iotagent-json").meta.endpoints if e.protocol == "tcp"]
    assert (mqtt.name, mqtt.workload, mqtt.port, mqtt.public, mqtt.host, mqtt.public_port, mqtt.scheme) == (
        "mqtt",
        "mosquitto",
        1883,
        True,
        "mqtt",
        8883,
        "mqtts",
    )


def test_network_policies_open_the_agent_flows(render):
    r = render()
    egress = find(r, "NetworkPolicy", "allow-egress-iot-agent", NS)["spec"]["egress"]
    targets = {
        (rule["to"][0]["podSelector"]["matchLabels"]["app.kubernetes.io/name"], rule["ports"][0]["port"])
        for rule in egress
    }
    assert targets == {("mosquitto", 1883), ("ingestion-db", 27017), ("orion-ld", 1026)}


def mosquitto_sources(rendering) -> list[tuple[str, str]]:
    ingress = find(rendering, "NetworkPolicy", "allow-ingress-mosquitto", NS)["spec"]["ingress"]
    assert all(rule["ports"] == [{"protocol": "TCP", "port": 1883}] for rule in ingress)
    return sorted(
        (
            rule["from"][0].get("namespaceSelector", {}).get("matchLabels", {}).get("kubernetes.io/metadata.name", NS),
            rule["from"][0]["podSelector"]["matchLabels"]["app.kubernetes.io/name"],
        )
        for rule in ingress
    )


@pytest.mark.parametrize(
    "patch, entry",
    [
        ({"components": {"gateway": {"enabled": True}, "iam": {"enabled": True}}}, ("alderbrook-gateway", "gateway")),
        (
            {
                "components": {"gateway": {"enabled": True}, "iam": {"enabled": True}},
                "addons": {"ingress_controller": {"enabled": True}},
            },
            ("alderbrook-ingress-controller", "traefik"),
        ),
        ({"components": {"gateway": {"enabled": True}, "iam": {"enabled": True}}, "tls": {"mode": "none"}}, None),
        ({}, None),
    ],
    ids=["gateway", "ingress-controller", "tls-none", "no-entry-point"],
)
def test_only_the_agent_and_the_public_entry_point_reach_mosquitto(render, patch, entry):
    assert mosquitto_sources(render(patch)) == sorted([(NS, "iot-agent")] + ([entry] if entry else []))


def test_standard_profile_runs_two_agents_behind_a_disruption_budget(render):
    r = render({"budget": {"profile": "standard"}})
    assert find(r, "Deployment", "iot-agent", NS)["spec"]["replicas"] == 2
    assert find(r, "PodDisruptionBudget", "iot-agent", NS)["spec"]["minAvailable"] == 1
    assert find(r, "Deployment", "mosquitto", NS)["spec"]["replicas"] == 1


def test_minimal_profile_stays_small(render):
    fp = render().footprints["ingestion"]
    assert fp.cpu_request_m <= 250 and fp.memory_request <= 512 * 2**20
    assert fp.memory_limit <= 1 * 2**30


# --- the real Mosquitto (2.0.x) with the rendered configuration -----------------------------------

PASSWORDS = {"iot-agent": "agent-secret-1", "parking-1": "device-secret-2", "parking-2": "device-secret-3"}


@pytest.fixture
def mosquitto(render, tmp_path):
    """The rendered mosquitto.conf and ACL on a loopback port, with a throwaway password file."""
    r = render({"components": {"ingestion": {"options": {"device_users": ["parking-1", "parking-2"]}}}})
    with running_mosquitto(find(r, "ConfigMap", "mosquitto-config", NS)["data"], PASSWORDS, tmp_path) as running:
        yield running


def test_mosquitto_config_loads_in_the_real_broker(mosquitto):
    proc, _ = mosquitto
    time.sleep(2)
    if proc.poll() is not None:
        pytest.fail(f"mosquitto exited with {proc.returncode}:\n{proc.stdout.read()}")


def test_mosquitto_refuses_anonymous_clients_and_wrong_passwords(mosquitto):
    _, port = mosquitto
    assert Client(port, client_id="anon").connack == NOT_AUTHORIZED
    assert Client(port, "parking-1", "wrong", "dev").connack == NOT_AUTHORIZED
    assert Client(port, "parking-1", PASSWORDS["parking-1"], "dev").connack == 0


def test_a_device_user_publishes_only_as_its_own_device(mosquitto):
    _, port = mosquitto
    agent = Client(port, "iot-agent", PASSWORDS["iot-agent"], "agent")
    for topic in ("/+/+/attrs", "/+/+/attrs/+", "/json/+/+/attrs", "json/+/+/attrs", "/+/+/cmdexe"):
        agent.subscribe(f"$share/json/{topic}")  # the agent's own shared subscriptions
    device = Client(port, "parking-1", PASSWORDS["parking-1"], "parking-1")
    for topic in (
        "/key1/parking-1/attrs",
        "/key1/parking-1/attrs/occupied",
        "/json/key1/parking-1/attrs",
        "json/key1/parking-1/attrs",
        "/key1/parking-1/cmdexe",
    ):
        assert device.publish(topic, b'{"occupied": true}') == 0, topic
        assert agent.receive() == (topic, b'{"occupied": true}')
    for topic in ("/key1/parking-2/attrs", "/json/key1/parking-2/attrs", "/key1/parking-1/cmd", "key1/parking-1/attrs"):
        assert device.publish(topic, b"{}") == NOT_AUTHORIZED, topic
    assert agent.receive(timeout=0.5) is None


def test_a_device_user_reads_only_its_own_commands(mosquitto):
    _, port = mosquitto
    agent = Client(port, "iot-agent", PASSWORDS["iot-agent"], "agent")
    device = Client(port, "parking-1", PASSWORDS["parking-1"], "parking-1")
    device.subscribe("#")  # Mosquitto 2.0 checks `read` on delivery, so a wide subscription gets no more
    assert agent.publish("/key1/parking-2/cmd", b'{"open": {}}') == 0
    assert agent.publish("/key1/parking-1/attrs", b'{"occupied": true}') == 0
    assert agent.publish("/key1/parking-1/cmd", b'{"reset": {}}') == 0
    assert agent.publish("/key1/parking-1/configuration/values", b'{"period": 60}') == 0
    assert device.receive() == ("/key1/parking-1/cmd", b'{"reset": {}}')
    assert device.receive() == ("/key1/parking-1/configuration/values", b'{"period": 60}')
    assert device.receive(timeout=0.5) is None, "neither another device's commands nor any measure"
