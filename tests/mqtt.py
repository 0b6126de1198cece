"""MQTT for the tests: the real Mosquitto started on a loopback port with a rendered configuration,
and a real client (paho-mqtt, MQTT 5, so that a refused publish comes back as a reason code)."""

from __future__ import annotations

import os
import queue
import socket
import subprocess
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import paho.mqtt.client as mqtt

from tests.conftest import require_tool

NOT_AUTHORIZED = 135  # MQTT 5 reason code in PUBACK and CONNACK (Mosquitto 2.0 uses it for a wrong password too)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, proc: subprocess.Popen) -> None:
    for _ in range(100):
        if proc.poll() is not None:
            raise AssertionError(f"{proc.args[0]} exited with {proc.returncode}:\n{proc.stdout.read()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"nothing listens on 127.0.0.1:{port}")


@contextmanager
def running_mosquitto(data: dict[str, str], passwords: dict[str, str], folder: Path):
    """The rendered `mosquitto-config` ConfigMap data (mosquitto.conf, acl) with a password file for
    `passwords`, listening on a free loopback port; yields (process, port)."""
    mosquitto, mosquitto_passwd = require_tool("mosquitto"), require_tool("mosquitto_passwd")
    passwd = folder / "passwd"
    passwd.touch(mode=0o600)
    for user, password in passwords.items():
        subprocess.run([mosquitto_passwd, "-b", str(passwd), user, password], check=True, capture_output=True)
    (folder / "acl").write_text(data["acl"])
    port = free_port()
    conf = (
        data["mosquitto.conf"]
        .replace("/mosquitto/secrets/passwd", str(passwd))
        .replace("/mosquitto/config/acl", str(folder / "acl"))
        .replace("listener 1883", f"listener {port} 127.0.0.1")
    )
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        conf += "\n# test only: as root, mosquitto would switch to user `mosquitto`, who cannot read the folder\nuser root\n"
    (folder / "mosquitto.conf").write_text(conf)
    proc = subprocess.Popen(
        [mosquitto, "-c", str(folder / "mosquitto.conf")], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        wait_for_port(port, proc)
        yield proc, port
    finally:
        proc.terminate()
        proc.wait(timeout=5)


class Client:
    """One MQTT 5 connection; every call waits for the broker's answer (at most `timeout` seconds)."""

    def __init__(
        self,
        port: int,
        user: str | None = None,
        password: str | None = None,
        client_id: str = "t",
        ca: Path | None = None,
        host: str = "127.0.0.1",
        timeout: float = 3,
    ):
        self.timeout = timeout
        self.messages: queue.Queue = queue.Queue()
        self._connected = threading.Event()
        self._acks: dict[int, queue.Queue] = {}
        # No reconnection: a refused client or a stopped broker ends the network thread.
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5, reconnect_on_failure=False
        )
        if user is not None:
            self.client.username_pw_set(user, password)
        if ca is not None:
            self.client.tls_set(ca_certs=str(ca))
        self.client.on_connect = self._on_connect
        self.client.on_message = lambda c, u, msg: self.messages.put((msg.topic, msg.payload))
        self.client.on_publish = lambda c, u, mid, rc, props: self._ack(mid).put(rc.value)
        self.client.on_subscribe = lambda c, u, mid, rcs, props: self._ack(mid).put([rc.value for rc in rcs])
        self.client.connect(host, port, keepalive=30)
        self.client.loop_start()
        assert self._connected.wait(timeout), "no CONNACK"

    def _on_connect(self, client, userdata, flags, reason_code, properties):
        self.connack = reason_code.value
        self._connected.set()

    def _ack(self, mid: int) -> queue.Queue:
        return self._acks.setdefault(mid, queue.Queue())

    def subscribe(self, topic: str) -> None:
        _, mid = self.client.subscribe(topic, qos=1)
        assert self._ack(mid).get(timeout=self.timeout) == [1]

    def publish(self, topic: str, payload: bytes) -> int:
        """QoS 1, so the broker answers: 0 when it took the message, NOT_AUTHORIZED when the ACL refused it."""
        info = self.client.publish(topic, payload, qos=1)
        return self._ack(info.mid).get(timeout=self.timeout)

    def receive(self, timeout: float = 1) -> tuple[str, bytes] | None:
        try:
            return self.messages.get(timeout=timeout)
        except queue.Empty:
            return None
