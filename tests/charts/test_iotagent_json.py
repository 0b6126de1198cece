"""Chart `iotagent-json` (component `ingestion`): IoT Agent JSON in NGSI-LD mode, Mosquitto, MongoDB."""

from __future__ import annotations

import json
import os
import socket
import struct
import subprocess
import time

import pytest

from mims.blueprint import load_blueprint
from mims.errors import InvalidInput
from mims.secrets import generators
from tests.conftest import env_of, find, merge, require_tool

NS = "alderbrook-ingestion"
# Only the components this chart needs: ingestion requires the broker; the rest stays off.
ONLY_INGESTION = {"components": {
    "iam": {"enabled": False}, "catalogue": {"enabled": False}, "ai_registry": {"enabled": False},
    "gateway": {"enabled": False}, "monitoring": {"enabled": False}, "data_models": {"enabled": False},
}}


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
    assert not any(m["mountPath"].startswith("/run/secrets") for m in c["volumeMounts"]), \
        "the agent scans /run/secrets at start"


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
    r = render({"components": {"ingestion": {"options": {"device_users": ["air-quality", "parking"]}}}})
    secret = find(r, "Secret", "mqtt-users", NS)
    fields = json.loads(secret["metadata"]["annotations"]["mims.io/generate"])
    assert fields == {"iot-agent": "random:32", "air-quality": "random:32", "parking": "random:32",
                      "passwd": "mosquitto-passwd:iot-agent,air-quality,parking"}
    assert generators(secret)["passwd"].users == ("iot-agent", "air-quality", "parking")
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


@pytest.mark.parametrize("name", ["iot-agent", "passwd"])
def test_device_user_may_not_take_a_reserved_key(render, name):
    with pytest.raises(InvalidInput, match=f"`{name}` is used by mims itself"):
        render({"components": {"ingestion": {"options": {"device_users": [name]}}}})


def test_acl_lets_devices_publish_measures_but_not_read_them(render):
    r = render({"components": {"ingestion": {"options": {"device_users": ["parking"]}}}})
    acl = find(r, "ConfigMap", "mosquitto-config", NS)["data"]["acl"]
    block = acl.split("user parking\n", 1)[1]
    assert "topic write +/+/+/attrs\n" in block and "topic read +/+/+/cmd\n" in block
    assert "topic read +/+/+/attrs" not in block and "topic write +/+/+/cmd\n" not in block
    assert "user iot-agent\ntopic readwrite #\n" in acl


def test_new_device_user_rolls_mosquitto(render):
    def users_annotation(users):
        r = render({"components": {"ingestion": {"options": {"device_users": users}}}})
        return find(r, "Deployment", "mosquitto", NS)["spec"]["template"]["metadata"]["annotations"]
    assert users_annotation(["a"]) != users_annotation(["a", "b"])


def test_endpoints_follow_the_cross_chart_contract(renderer):
    meta = renderer.chart_for("ingestion", "iotagent-json").meta
    by_name = {e.name: e for e in meta.endpoints}
    http, admin = by_name["iot-http"], by_name["iot-admin"]
    assert (http.workload, http.port, http.public, http.host, http.path, http.writes_need_token) == \
        ("iot-agent", 7896, True, "iot", "/iot/", False)
    assert (admin.workload, admin.port, admin.public) == ("iot-agent", 4041, False)
    assert [(m.workload, m.port, m.path) for m in meta.metrics] == [("iot-agent", 4041, "/metrics")]


def test_network_policies_open_the_agent_flows(render):
    r = render()
    egress = find(r, "NetworkPolicy", "allow-egress-iot-agent", NS)["spec"]["egress"]
    targets = {(rule["to"][0]["podSelector"]["matchLabels"]["app.kubernetes.io/name"], rule["ports"][0]["port"])
               for rule in egress}
    assert targets == {("mosquitto", 1883), ("ingestion-db", 27017), ("orion-ld", 1026)}
    ingress = find(r, "NetworkPolicy", "allow-ingress-mosquitto", NS)["spec"]["ingress"]
    assert [rule["from"][0]["podSelector"]["matchLabels"]["app.kubernetes.io/name"] for rule in ingress] == \
        ["iot-agent"]


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

PASSWORDS = {"iot-agent": "agent-secret-1", "parking": "device-secret-2"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def mosquitto(render, tmp_path):
    """Start the rendered mosquitto.conf and ACL on a loopback port with a throwaway password file."""
    mosquitto_bin, mosquitto_passwd = require_tool("mosquitto"), require_tool("mosquitto_passwd")
    r = render({"components": {"ingestion": {"options": {"device_users": ["parking"]}}}})
    data = find(r, "ConfigMap", "mosquitto-config", NS)["data"]
    passwd = tmp_path / "passwd"
    passwd.touch(mode=0o600)
    for user, password in PASSWORDS.items():
        subprocess.run([mosquitto_passwd, "-b", str(passwd), user, password], check=True, capture_output=True)
    (tmp_path / "acl").write_text(data["acl"])
    port = _free_port()
    conf = (data["mosquitto.conf"]
            .replace("/mosquitto/secrets/passwd", str(passwd))
            .replace("/mosquitto/config/acl", str(tmp_path / "acl"))
            .replace("listener 1883", f"listener {port} 127.0.0.1"))
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        conf += "\n# test only: as root, mosquitto would switch to user `mosquitto`, who cannot read tmp_path\nuser root\n"
    (tmp_path / "mosquitto.conf").write_text(conf)
    proc = subprocess.Popen([mosquitto_bin, "-c", str(tmp_path / "mosquitto.conf")],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    for _ in range(50):
        if proc.poll() is not None:
            break
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
            break
        except OSError:
            time.sleep(0.05)
    yield proc, port
    proc.terminate()
    proc.wait(timeout=5)


def test_mosquitto_config_loads_in_the_real_broker(mosquitto):
    proc, _ = mosquitto
    time.sleep(2)
    if proc.poll() is not None:
        pytest.fail(f"mosquitto exited with {proc.returncode}:\n{proc.stdout.read()}")


def test_mosquitto_requires_passwords_and_enforces_the_acl(mosquitto):
    _, port = mosquitto
    assert MqttClient(port).connack == 5, "anonymous clients are refused"
    assert MqttClient(port, "iot-agent", "wrong").connack == 5, "a wrong password is refused"
    agent = MqttClient(port, "iot-agent", PASSWORDS["iot-agent"], "agent")
    assert agent.connack == 0
    agent.subscribe("$share/json//+/+/attrs")  # the agent's own (shared) subscription
    spy = MqttClient(port, "parking", PASSWORDS["parking"], "spy")
    spy.subscribe("#")
    device = MqttClient(port, "parking", PASSWORDS["parking"], "dev1")
    assert device.connack == 0
    device.publish("/apikey1/dev1/attrs", b'{"occupied": true}')
    assert agent.receive() == ("/apikey1/dev1/attrs", b'{"occupied": true}')
    assert spy.receive() is None, "a device user cannot read other devices' measures"
    agent_all = MqttClient(port, "iot-agent", PASSWORDS["iot-agent"], "agent-all")
    agent_all.subscribe("#")
    device.publish("/apikey1/dev2/cmd", b'{"open": true}')  # forged command: dropped by the ACL
    agent.publish("/apikey1/dev1/cmd", b'{"reset": {}}')
    assert agent_all.receive() == ("/apikey1/dev1/cmd", b'{"reset": {}}'), "a device cannot send commands"
    assert spy.receive() == ("/apikey1/dev1/cmd", b'{"reset": {}}'), "devices read commands"


class MqttClient:
    """Just enough MQTT 3.1.1 over a socket to check authentication and the ACL (QoS 0)."""

    def __init__(self, port: int, user: str | None = None, password: str | None = None, client_id: str = "t"):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=1)
        flags, payload = 0x02, self._str(client_id)
        if user is not None:
            flags |= 0x80
            payload += self._str(user)
        if password is not None:
            flags |= 0x40
            payload += self._str(password)
        self._send(0x10, self._str("MQTT") + bytes([4, flags]) + struct.pack("!H", 30) + payload)
        kind, body = self._read()
        self.connack = body[1] if kind == 0x20 else None

    def subscribe(self, topic: str) -> None:
        self._send(0x82, struct.pack("!H", 1) + self._str(topic) + b"\x00")
        kind, _ = self._read()
        assert kind == 0x90

    def publish(self, topic: str, message: bytes) -> None:
        self._send(0x30, self._str(topic) + message)

    def receive(self) -> tuple[str, bytes] | None:
        try:
            kind, body = self._read()
        except (TimeoutError, socket.timeout):
            return None
        if kind is None or kind >> 4 != 3:
            return None
        size = struct.unpack("!H", body[:2])[0]
        return body[2:2 + size].decode(), body[2 + size:]

    @staticmethod
    def _str(text: str) -> bytes:
        raw = text.encode()
        return struct.pack("!H", len(raw)) + raw

    def _send(self, kind: int, body: bytes) -> None:
        size, encoded = len(body), b""
        while True:
            digit, size = size % 128, size // 128
            encoded += bytes([digit | (0x80 if size else 0)])
            if not size:
                break
        self.sock.sendall(bytes([kind]) + encoded + body)

    def _read(self) -> tuple[int | None, bytes]:
        head = self.sock.recv(1)
        if not head:
            return None, b""
        size, factor = 0, 1
        while True:
            digit = self.sock.recv(1)[0]
            size += (digit & 127) * factor
            factor *= 128
            if not digit & 128:
                break
        body = b""
        while len(body) < size:
            body += self.sock.recv(size - len(body))
        return head[0], body

