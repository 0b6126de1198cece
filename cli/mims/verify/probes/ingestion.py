"""Ingestion (MIM1): a device's measure, sent over HTTP and over MQTT, reaches the broker as an
NGSI-LD attribute within a bounded time.

The probe provisions a service group of its own (API key `mims-verify-<run>`) and one device
through the gateway with the `verify` token, in an NGSI-LD tenant of its own (`mimsverify`: the
agent turns `fiware-service` into `NGSILD-Tenant`), so no city entity is touched. Over MQTT it
publishes as the `mims-verify` user, whose ACL, like every device's, lets it publish only as its own
device id. Facts about the agent (iotagent-json 3.14.0 with iotagent-node-lib 4.14.0, read at those
tags): groups and devices answer 201 to a create and 204 to a delete
(lib/services/northBound/deviceGroupAdministrationServer.js, deviceProvisioningServer.js); a group's
`resource` must be the agent's `defaultResource`, `/iot/json` (iotagent-json lib/iotaUtils.js); a
device needs the group's `apikey` to be found by measures with the MongoDB registry
(lib/services/devices/deviceRegistryMongoDB.js); an HTTP measure answers 200 once the broker was
updated (iotagent-json lib/bindings/HTTPBinding.js); the agent upserts the entity
`urn:ngsi-ld:<type>:<entity_name>` with each attribute a Property (lib/services/ngsi/entities-NGSI-LD.js)."""

from __future__ import annotations

import json
import ssl
import time
import urllib.parse
from collections.abc import Iterator

from mims.verify.platform import Platform
from mims.verify.probe import Probe, ProbeFailed, ProbeSkipped, expect
from mims.verify.public import Response, split_address

COMPONENT = "ingestion"
TENANT = "mimsverify"
ENTITY_TYPE = "MimsVerifyProbe"
MQTT_USER = "mims-verify"
RESOURCE = "/iot/json"
# How long a measure may take from the device to the broker.
ARRIVAL_S = 30.0


def probes(p: Platform) -> Iterator[Probe]:
    http = p.endpoint("ingestion/iot-http")
    broker = p.endpoint("broker/ngsi-ld")
    if http is None or http.host is None:
        return
    iot = Iot(p, http.host, broker.host if broker else None)

    def probe(name: str, check, needs: tuple[str, ...] = ()) -> Probe:
        def run() -> None:
            p.need_running(COMPONENT, "iot-agent")
            if broker is None:
                raise ProbeSkipped("the broker is not enabled: measures have nowhere to go")
            p.need_running("broker", broker.workload)
            if iot.remove not in p.cleanups:
                p.cleanups.append(iot.remove)
            check()

        return Probe("MIM1", COMPONENT, name, run, needs)

    provisioned = "provision a service group and a device (201)"
    yield probe(provisioned, iot.provision)
    yield probe("a measure over HTTP reaches the broker", iot.http_measure, (provisioned,))
    yield probe("a measure over MQTT reaches the broker", iot.mqtt_measure, (provisioned,))


def sweep(p: Platform) -> None:
    http = p.endpoint("ingestion/iot-http")
    if http is not None and http.host is not None and p.replicas(COMPONENT, "iot-agent"):
        Iot(p, http.host, None).remove_leftovers()


class Iot:
    def __init__(self, p: Platform, host: str, broker_host: str | None):
        self.p, self.host, self.broker_host = p, host, broker_host
        self.apikey = f"mims-verify-{p.run_id}"
        self.device = MQTT_USER  # the MQTT user name is the device id (the ACL's %u)
        self.entity = f"urn:ngsi-ld:{ENTITY_TYPE}:{p.run_id}-device"

    def _admin(self, method: str, path: str, body: dict | None = None) -> Response:
        headers = {"fiware-service": TENANT, "fiware-servicepath": "/"} | self.p.bearer()
        return self.p.request(method, self.host, path, body=body, headers=headers)

    def provision(self) -> None:
        group = {"apikey": self.apikey, "resource": RESOURCE, "entity_type": ENTITY_TYPE, "autoprovision": False}
        answer = self._admin("POST", "/iot/groups", {"groups": [group]})
        expect(
            answer.status == 201, f"POST {self.p.public.url(self.host, '/iot/groups')}: {answer.brief()} (expected 201)"
        )
        device = {
            "device_id": self.device,
            "apikey": self.apikey,
            "entity_name": self.entity,
            "entity_type": ENTITY_TYPE,
            "attributes": [{"object_id": "t", "name": "temperature", "type": "Number"}],
        }
        answer = self._admin("POST", "/iot/devices", {"devices": [device]})
        expect(
            answer.status == 201,
            f"POST {self.p.public.url(self.host, '/iot/devices')}: {answer.brief()} (expected 201)",
        )

    def http_measure(self) -> None:
        query = urllib.parse.urlencode({"k": self.apikey, "i": self.device})
        path = f"{RESOURCE}?{query}"
        answer = self.p.request("POST", self.host, path, body={"t": 21.5})
        expect(
            answer.status == 200,
            f"POST {self.p.public.url(self.host, RESOURCE)}?k=...&i={self.device}: {answer.brief()} (expected 200)",
        )
        self._arrives(21.5, "over HTTP")

    def mqtt_measure(self) -> None:
        mqtt = self.p.endpoint("ingestion/mqtt")
        if mqtt is None or not mqtt.public or mqtt.host is None or mqtt.public_port is None:
            raise ProbeSkipped("MQTT is not public: devices reach it only over TLS (not with tls.mode none)")
        password = self.p.secret(COMPONENT, "mqtt-users").get(MQTT_USER)
        if password is None:
            raise ProbeFailed(f"no `{MQTT_USER}` user in {self.p.namespace(COMPONENT)}/mqtt-users")
        publish(
            self.p,
            mqtt.host,
            mqtt.public_port,
            MQTT_USER,
            password,
            f"/{self.apikey}/{self.device}/attrs",
            json.dumps({"t": 22.5}).encode(),
        )
        self._arrives(22.5, "over MQTT")

    def _arrives(self, value: float, how: str) -> None:
        path = f"/ngsi-ld/v1/entities/{urllib.parse.quote(self.entity, safe=':')}"
        headers = {"Accept": "application/json", "NGSILD-Tenant": TENANT}
        deadline, seen = time.monotonic() + ARRIVAL_S, None
        while time.monotonic() < deadline:
            answer = self.p.request("GET", self.broker_host or "", path, headers=headers)
            if answer.status == 200:
                seen = answer.json().get("temperature", {}).get("value")
                if seen == value:
                    return
            time.sleep(1)
        raise ProbeFailed(
            f"the measure sent {how} ({value}) did not reach {self.entity} in tenant {TENANT} within "
            f"{ARRIVAL_S:.0f} s (its temperature: {seen})"
        )

    def remove(self) -> None:
        self._admin("DELETE", f"/iot/devices/{self.device}?apikey={self.apikey}")
        self._admin("DELETE", f"/iot/groups?resource={RESOURCE}&apikey={self.apikey}")
        if self.broker_host:
            path = f"/ngsi-ld/v1/entities/{urllib.parse.quote(self.entity, safe=':')}"
            self.p.request("DELETE", self.broker_host, path, headers={"NGSILD-Tenant": TENANT} | self.p.bearer())

    def remove_leftovers(self) -> None:
        """Groups (with their devices) of earlier runs in the probe's service."""
        headers = {"fiware-service": TENANT, "fiware-servicepath": "/*"} | self.p.bearer()
        answer = self.p.request("GET", self.host, "/iot/groups", headers=headers)
        if answer.status != 200:
            return
        for group in answer.json().get("groups", []):
            if str(group.get("apikey", "")).startswith("mims-verify-"):
                self._admin("DELETE", f"/iot/groups?resource={RESOURCE}&apikey={group['apikey']}&device=true")


class _NamedContext(ssl.SSLContext):
    """Asks for (and checks) `server_name`'s certificate whatever address the socket connects to."""

    server_name = ""

    def wrap_socket(self, sock, *args, server_hostname=None, **kwargs):  # type: ignore[no-untyped-def,override]
        return super().wrap_socket(sock, *args, server_hostname=self.server_name, **kwargs)


def publish(p: Platform, host: str, port: int, user: str, password: str, topic: str, payload: bytes) -> None:
    """One MQTT 5 publish at QoS 1 over TLS to `host.<domain>:port` (at the entrance's address);
    fails with the broker's reason code when it refuses the connection or the message."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.reasoncodes import ReasonCode

    name = p.public.name(host)
    context = _NamedContext(ssl.PROTOCOL_TLS_CLIENT)
    context.server_name = name
    context.load_default_certs()
    if p.public.ca_file:
        context.load_verify_locations(p.public.ca_file)
    address, _ = split_address(p.public.address or name, port)
    answers: dict[str, ReasonCode] = {}

    def connected(_c: mqtt.Client, _u: object, _f: object, reason: ReasonCode, _p: object) -> None:
        answers.setdefault("connect", reason)

    def published(_c: mqtt.Client, _u: object, _mid: int, reason: ReasonCode, _p: object) -> None:
        answers.setdefault("publish", reason)

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=user, protocol=mqtt.MQTTv5)
    client.on_connect = connected
    client.on_publish = published
    client.username_pw_set(user, password)
    client.tls_set_context(context)
    client.connect(address, port, keepalive=30)
    client.loop_start()
    try:
        _wait(answers, "connect")
        refused = answers.get("connect")
        expect(
            refused is not None and not refused.is_failure,
            f"mqtts://{name}:{port}: connecting as `{user}`: {refused or 'no answer within 15 s'}",
        )
        client.publish(topic, payload, qos=1)
        _wait(answers, "publish")
        refused = answers.get("publish")
        expect(
            refused is not None and not refused.is_failure,
            f"mqtts://{name}:{port}: publishing to {topic}: {refused or 'no answer within 15 s'}",
        )
    finally:
        client.disconnect()
        client.loop_stop()


def _wait(answers: dict, key: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while key not in answers and time.monotonic() < deadline:
        time.sleep(0.05)
