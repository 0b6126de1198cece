"""The data-models chart: the city's JSON-LD @context documents served read-only by nginx (MIM2)."""

from __future__ import annotations

import json
import subprocess

from mims.blueprint import load_blueprint
from tests.conftest import find, require_tool

NS = "alderbrook-data-models"


def test_register_vocabulary_and_city_contexts_are_served(write_blueprint, renderer, tmp_path):
    (tmp_path / "contexts").mkdir()
    (tmp_path / "contexts" / "mobility.jsonld").write_text('{"@context": {"speed": "https://x.example/speed"}}')
    path = write_blueprint({"components": {"data_models": {"options": {"contexts_dir": "contexts"}}}})
    data = find(renderer.render(load_blueprint(path)), "ConfigMap", "jsonld-contexts", NS)["data"]
    assert set(data) == {"ats.jsonld", "mobility.jsonld"}
    assert json.loads(data["mobility.jsonld"])["@context"]["speed"] == "https://x.example/speed"


def test_contexts_are_public_under_api_and_read_only(rendered_examples):
    conf = find(rendered_examples["small-city"], "ConfigMap", "context-server-config", NS)["data"]["nginx.conf"]
    assert "types { application/ld+json jsonld; }" in conf
    assert "limit_except GET HEAD { deny all; }" in conf
    endpoint = rendered_examples["small-city"].charts["data-models"].meta.endpoints[0]
    assert (endpoint.host, endpoint.path, endpoint.writes_need_token) == ("api", "/context/", False)


def test_nginx_accepts_the_config(rendered_examples, tmp_path):
    conf = find(rendered_examples["small-city"], "ConfigMap", "context-server-config", NS)["data"]["nginx.conf"]
    (tmp_path / "nginx.conf").write_text(conf.replace("/tmp/", f"{tmp_path}/"))
    run = subprocess.run(
        [require_tool("nginx"), "-t", "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
