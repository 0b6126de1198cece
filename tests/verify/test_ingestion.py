"""The ingestion probes against the IoT Agent JSON and a broker answering as their sources and the
NGSI-LD specification say (tests/fixtures/verify/iot-agent.yaml); neither runs on these machines."""

from __future__ import annotations

from mims.verify.probes import ingestion
from mims.verify.report import Status
from tests.verify.conftest import load_exchanges, run_family


def run(platform, exchanges):
    return run_family(platform, ingestion, exchanges)


def test_a_measure_over_http_reaches_the_broker_and_the_probe_removes_what_it_made(platform):
    results, replay = run(platform, load_exchanges("iot-agent"))
    assert results["provision a service group and a device (201)"].status is Status.PASS
    assert results["a measure over HTTP reaches the broker"].status is Status.PASS
    mqtt = results["a measure over MQTT reaches the broker"]
    assert mqtt.status is Status.SKIP and "tls.mode none" in mqtt.message
    assert not replay.unused, [e["id"] for e in replay.unused]


def test_a_measure_that_never_arrives_fails_with_what_the_broker_has(platform, monkeypatch):
    monkeypatch.setattr(ingestion, "ARRIVAL_S", 0.5)
    exchanges = load_exchanges("iot-agent")
    [measured] = [e for e in exchanges if e["id"] == "retrieve-measured"]
    measured["response"]["json"]["temperature"]["value"] = 3.0
    exchanges[exchanges.index(measured) + 1 : exchanges.index(measured) + 1] = [measured] * 5  # polled again
    results, _ = run(platform, exchanges)
    probe = results["a measure over HTTP reaches the broker"]
    assert probe.status is Status.FAIL and "did not reach urn:ngsi-ld:MimsVerifyProbe:0a1b2c-device" in probe.message
    assert "(its temperature: 3.0)" in probe.message


def test_a_refused_group_fails_provisioning_and_skips_the_measures(platform):
    refused = {"status": 409, "headers": {"Content-Type": "application/json"}, "json": {"name": "DUPLICATE_GROUP"}}
    results, _ = run(platform, load_exchanges("iot-agent", **{"create-group": refused}))
    assert results["provision a service group and a device (201)"].status is Status.FAIL
    assert "HTTP 409" in results["provision a service group and a device (201)"].message
    assert results["a measure over HTTP reaches the broker"].status is Status.SKIP
