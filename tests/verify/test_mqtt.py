"""The ingestion probe's MQTT publish against the real Mosquitto with the chart's configuration and ACL,
over TLS with a certificate for mqtt.<domain>: it publishes as `mims-verify` to its own device topic,
and reports a wrong password or a topic of another device as the broker's refusal."""

from __future__ import annotations

import pytest

from mims.blueprint import load_blueprint
from mims.charts.render import Renderer
from mims.cluster import certificates
from mims.verify.platform import Platform
from mims.verify.probe import ProbeFailed
from mims.verify.probes.ingestion import publish
from mims.verify.public import PublicClient
from tests.conftest import FIXTURES, find
from tests.mqtt import running_mosquitto
from tests.verify.conftest import RUN_ID

DOMAIN = "data.probeville.example"
PASSWORDS = {"iot-agent": "agent-password", "mims-verify": "verify-password"}


@pytest.fixture
def broker(tmp_path):
    """Mosquitto with the rendered mosquitto.conf and ACL, its listener on TLS; yields (platform, port)."""
    rendering = Renderer().render(load_blueprint(FIXTURES / "verify" / "blueprint.yaml"))
    data = dict(find(rendering, "ConfigMap", "mosquitto-config", "probeville-ingestion")["data"])
    files = certificates.make((), (f"mqtt.{DOMAIN}",), ())
    for name in ("ca.crt", "apiserver.crt", "apiserver.key"):
        (tmp_path / name).write_bytes(files[name])
    data["mosquitto.conf"] = data["mosquitto.conf"].replace(
        "listener 1883", f"listener 1883\ncertfile {tmp_path}/apiserver.crt\nkeyfile {tmp_path}/apiserver.key"
    )
    with running_mosquitto(data, PASSWORDS, tmp_path) as (_, port):
        public = PublicClient(DOMAIN, "https", address="127.0.0.1", ca_file=str(tmp_path / "ca.crt"))
        yield Platform(rendering, api=None, public=public, run_id=RUN_ID), port  # type: ignore[arg-type]


def test_publishes_as_its_own_device_over_tls(broker):
    platform, port = broker
    publish(
        platform,
        "mqtt",
        port,
        "mims-verify",
        PASSWORDS["mims-verify"],
        "/mims-verify-0a1b2c/mims-verify/attrs",
        b'{"t": 22.5}',
    )


def test_a_topic_of_another_device_is_refused_by_the_acl(broker):
    platform, port = broker
    with pytest.raises(ProbeFailed, match="publishing to /k/parking-1/attrs: Not authorized"):
        publish(platform, "mqtt", port, "mims-verify", PASSWORDS["mims-verify"], "/k/parking-1/attrs", b"{}")


def test_a_wrong_password_is_refused(broker):
    platform, port = broker
    with pytest.raises(ProbeFailed, match="connecting as `mims-verify`: Not authorized"):
        publish(platform, "mqtt", port, "mims-verify", "wrong", "/k/mims-verify/attrs", b"{}")
