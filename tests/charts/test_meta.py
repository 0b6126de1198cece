"""chart.yaml's rules: what an http and a tcp endpoint may say, the token settings, optional workloads."""

from __future__ import annotations

import shutil

import pytest
import yaml
from pydantic import ValidationError

from mims import paths
from mims.blueprint.model import MonitoringOptions
from mims.charts.meta import Chart, ChartMeta, Endpoint
from mims.errors import ChartError

BASE = {"name": "mqtt", "workload": "broker", "port": 1883, "description": "MQTT"}
PUBLIC_TCP = {**BASE, "protocol": "tcp", "public": True, "host": "mqtt", "public_port": 8883, "scheme": "mqtts"}


def test_a_public_tcp_endpoint_has_a_host_a_public_port_and_a_scheme():
    endpoint = Endpoint.model_validate(PUBLIC_TCP)
    assert (endpoint.protocol, endpoint.public_port, endpoint.scheme) == ("tcp", 8883, "mqtts")
    for missing in ("public_port", "scheme"):
        with pytest.raises(ValidationError, match="needs `public_port` and `scheme`"):
            Endpoint.model_validate({k: v for k, v in PUBLIC_TCP.items() if k != missing})


@pytest.mark.parametrize("field, value", [("path", "/mqtt"), ("writes_need_token", False), ("reads_need_token", True)])
def test_a_tcp_endpoint_has_no_paths_or_methods(field, value):
    with pytest.raises(ValidationError, match=f"`{field}` is for http endpoints"):
        Endpoint.model_validate({**PUBLIC_TCP, field: value})


def test_public_ports_are_for_tcp_endpoints_above_1024():
    with pytest.raises(ValidationError, match="`public_port` and `scheme` are for tcp endpoints"):
        Endpoint.model_validate({**BASE, "public_port": 8883})
    with pytest.raises(ValidationError, match="greater than or equal to 1025"):
        Endpoint.model_validate({**PUBLIC_TCP, "public_port": 883})


def test_reads_need_token_means_every_method_so_writes_too():
    assert Endpoint.model_validate({**BASE, "reads_need_token": True}).writes_need_token
    with pytest.raises(ValidationError, match="`reads_need_token` needs `writes_need_token` too"):
        Endpoint.model_validate({**BASE, "reads_need_token": True, "writes_need_token": False})


def test_hidden_paths_lie_under_the_endpoints_path():
    Endpoint.model_validate({**BASE, "path": "/ngsi-ld/", "hidden_paths": ["/ngsi-ld/v1/jsonldContexts/createcache"]})
    with pytest.raises(ValidationError, match="not under the endpoint's path"):
        Endpoint.model_validate({**BASE, "path": "/ngsi-ld/", "hidden_paths": ["/admin"]})


def test_an_optional_workload_is_switched_by_a_boolean_option_of_the_component(tmp_path):
    chart_dir = tmp_path / "monitor"
    shutil.copytree(paths.charts_dir() / "prometheus-grafana", chart_dir)
    meta = (chart_dir / "chart.yaml").read_text().replace("{grafana: grafana}", "{grafana: dashboards}")
    (chart_dir / "chart.yaml").write_text(meta)
    with pytest.raises(ChartError, match=r"chart\.yaml: optional_workloads: `grafana` is switched by `dashboards`"):
        Chart.load(chart_dir).for_options(MonitoringOptions())


def test_optional_workloads_name_declared_workloads():
    meta = yaml.safe_load((paths.charts_dir() / "prometheus-grafana" / "chart.yaml").read_text())
    meta["optional_workloads"] = {"dashboards": "grafana"}
    with pytest.raises(ValidationError, match="unknown workload"):
        ChartMeta.model_validate(meta)
