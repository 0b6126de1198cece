"""Chart `ats-register` (component `ai-registry`): the public algorithm register and its publication."""

from __future__ import annotations

import http.server
import json
import os
import re
import shutil
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

from mims import paths
from mims.blueprint import load_blueprint
from mims.errors import ChartError
from tests.conftest import find, merge, require_tool

NS = "alderbrook-ai-registry"
EXAMPLES = paths.blueprints_dir() / "examples" / "algorithms"
GROUPS = ["Basic information", "Use case", "Data", "Algorithm", "Oversight", "Metadata"]
# Only what the register needs: the broker (publication target); the rest stays off.
ONLY_REGISTER = {
    "components": {
        "iam": {"enabled": False},
        "catalogue": {"enabled": False},
        "ingestion": {"enabled": False},
        "gateway": {"enabled": False},
        "monitoring": {"enabled": False},
        "data_models": {"enabled": False},
    }
}


def example(slug: str) -> dict:
    return yaml.safe_load((EXAMPLES / f"{slug}.yaml").read_text())


@pytest.fixture
def render(write_blueprint, renderer, tmp_path):
    """Render with the given entries ({slug: fields}) or, by default, the example entries."""

    def go(entries: dict[str, dict] | None = None, patch: dict | None = None):
        options = {}
        if entries is not None:
            folder = tmp_path / "entries"
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
            for slug, fields in entries.items():
                (folder / f"{slug}.yaml").write_text(yaml.safe_dump(fields, sort_keys=False))
            options = {"entries_dir": "entries"}
        patch = merge({"components": {"ai_registry": {"options": options}}}, patch or {})
        return renderer.render(load_blueprint(write_blueprint(merge(ONLY_REGISTER, patch))))

    return go


def site(rendering) -> dict[str, str]:
    return find(rendering, "ConfigMap", "register-site", NS)["data"]


def api(rendering) -> dict[str, str]:
    return find(rendering, "ConfigMap", "register-api", NS)["data"]


def algorithm_documents(rendering) -> dict[str, str]:
    return find(rendering, "ConfigMap", "register-algorithms", NS)["data"] or {}


def jobs(rendering) -> list[dict]:
    return [o for o in rendering.objects() if o["kind"] == "Job" and o["metadata"]["namespace"] == NS]


def test_example_entries_validate_and_are_all_published(render):
    r = render()
    register = json.loads(api(r)["register.json"])
    assert [a["id"] for a in register["algorithms"]] == sorted(p.stem for p in EXAMPLES.glob("*.yaml"))
    assert register["count"] == len(register["algorithms"]) >= 2
    assert register["standard"] == {"name": "Eurocities Algorithmic Transparency Standard", "version": "0.3.1"}


def test_every_entry_has_its_own_api_document(render):
    r = render()
    documents = algorithm_documents(r)
    algorithms = json.loads(api(r)["register.json"])["algorithms"]
    assert sorted(documents) == sorted(f"{a['id']}.json" for a in algorithms)
    for algorithm in algorithms:
        assert json.loads(documents[f"{algorithm['id']}.json"]) == algorithm
    assert json.loads(api(r)["schema.json"])["title"].startswith("Algorithmic Transparency Standard v0.3.1")


def test_html_escapes_every_entry_value(render):
    entry = example("pothole-detection")
    entry["name"] = "<script>alert('name')</script> & co"
    entry["department"] = '"><img src=x onerror=alert(1)>'
    entry["website"] = 'https://evil.example/"><script>alert(2)</script>'
    entry["keywords"] = "</dd><script>alert(3)</script>"
    html = site(render({"evil": entry}))["index.html"]
    assert "<script" not in html.lower() and "<img" not in html.lower()
    assert "&lt;script&gt;alert(&#39;name&#39;)&lt;/script&gt; &amp; co" in html
    assert 'href="https://evil.example/&#34;&gt;&lt;script&gt;alert(2)&lt;/script&gt;"' in html


def test_page_shows_every_entry_grouped_by_the_standards_six_groups(render):
    html = site(render())["index.html"]
    for slug in (p.stem for p in EXAMPLES.glob("*.yaml")):
        article = html.split(f'<article class="entry" id="{slug}"', 1)[1].split("</article>", 1)[0]
        headings = [h.split(">", 1)[1] for h in article.split("<h3 ")[1:]]
        headings = [h.split("</h3>", 1)[0] for h in headings]
        assert headings == GROUPS
        assert f'href="/api/algorithms/{slug}.json"' in article


def test_page_has_no_script_and_no_external_asset(render):
    pages = site(render())
    assert "<script" not in pages["index.html"]
    assert '<link rel="stylesheet" href="/style.css">' in pages["index.html"]
    assert "http" not in pages["style.css"] and "@import" not in pages["style.css"]
    assert '<html lang="en">' in pages["index.html"] and 'name="viewport"' in pages["index.html"]


def test_empty_register_says_so(render):
    r = render({})
    assert "No algorithms are registered yet." in site(r)["index.html"]
    assert json.loads(api(r)["register.json"])["count"] == 0
    assert algorithm_documents(r) == {}
    assert jobs(r) == [], "nothing to publish"


def test_register_too_large_for_a_configmap_is_refused(render):
    entry = example("pothole-detection")
    entry["description"] = "x" * 10000
    with pytest.raises(ChartError, match="register_too_large_for_a_configmap"):
        render({f"entry-{i:03d}": entry for i in range(80)})


def test_job_upserts_the_entities_into_the_broker(render):
    r = render()
    [job] = jobs(r)
    name = job["metadata"]["name"]
    pod = job["spec"]["template"]["spec"]
    script = pod["containers"][0]["command"][2]
    assert "'http://orion-ld.alderbrook-broker.svc.cluster.local:1026/ngsi-ld/v1/entityOperations/upsert'" in script
    assert "--header 'Content-Type: application/ld+json'" in script and "--retry-connrefused" in script
    assert pod["securityContext"]["runAsUser"] >= 10000 and pod["restartPolicy"] == "Never"
    config = find(r, "ConfigMap", name, NS)
    assert config["immutable"] is True
    entities = json.loads(config["data"]["entities.json"])
    assert {e["id"] for e in entities} == {
        f"urn:ngsi-ld:Algorithm:alderbrook-{p.stem}" for p in EXAMPLES.glob("*.yaml")
    }
    egress = find(r, "NetworkPolicy", "allow-egress-register-publish", NS)["spec"]["egress"]
    assert egress[0]["ports"] == [{"protocol": "TCP", "port": 1026}]


def test_job_name_changes_when_an_entry_changes(render):
    entry = example("pothole-detection")
    first = jobs(render({"pothole-detection": entry}))[0]["metadata"]["name"]
    again = jobs(render({"pothole-detection": entry}))[0]["metadata"]["name"]
    entry["status"] = "operational"
    changed = render({"pothole-detection": entry})
    assert first == again != jobs(changed)[0]["metadata"]["name"]
    annotations = find(changed, "Deployment", "register", NS)["spec"]["template"]["metadata"]["annotations"]
    assert annotations["mims.io/register-hash"] in jobs(changed)[0]["metadata"]["name"], "pods roll too"


def test_no_job_without_broker(render):
    r = render(patch={"components": {"broker": {"enabled": False}}})
    assert jobs(r) == []
    assert not [
        o for o in r.objects() if o["kind"] == "ConfigMap" and o["metadata"]["name"].startswith("register-publish")
    ]
    assert find(r, "Deployment", "register", NS)


def test_endpoint_follows_the_cross_chart_contract(renderer):
    [endpoint] = renderer.chart_for("ai-registry", "ats-register").meta.endpoints
    assert (
        endpoint.name,
        endpoint.workload,
        endpoint.port,
        endpoint.public,
        endpoint.host,
        endpoint.path,
        endpoint.writes_need_token,
    ) == ("register", "register", 8080, True, "algorithms", "/", True)


def test_standard_profile_runs_two_replicas_behind_a_disruption_budget(render):
    r = render(patch={"budget": {"profile": "standard"}})
    assert find(r, "Deployment", "register", NS)["spec"]["replicas"] == 2
    assert find(r, "PodDisruptionBudget", "register", NS)


# --- the real nginx, curl and sh with the rendered files ------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stage(rendering, root: Path, port: int) -> Path:
    """Lay the ConfigMaps out as the pod mounts them, with paths moved under `root`."""
    for name, folder in (("register-site", "site"), ("register-api", "api"), ("register-algorithms", "algorithms")):
        (root / folder).mkdir(parents=True)
        for key, text in (find(rendering, "ConfigMap", name, NS)["data"] or {}).items():
            (root / folder / key).write_text(text)
    (root / "tmp").mkdir()
    conf = find(rendering, "ConfigMap", "register-config", NS)["data"]["nginx.conf"]
    conf = re.sub(r"(?<![\w/])/(tmp|srv)/", lambda m: f"{root}/tmp/" if m[1] == "tmp" else f"{root}/", conf)
    conf = conf.replace("listen 8080;", f"listen 127.0.0.1:{port};")
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        conf = "# test only: as root, workers would run as `nobody`, who cannot read tmp_path\nuser root;\n" + conf
    (root / "nginx.conf").write_text(conf)
    return root / "nginx.conf"


def test_nginx_accepts_the_config(render, tmp_path):
    conf = _stage(render(), tmp_path / "srv", _free_port())
    result = subprocess.run(
        [require_tool("nginx"), "-t", "-p", str(conf.parent), "-c", str(conf)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr


def test_nginx_serves_the_register_read_only_with_types_and_headers(render, tmp_path):
    nginx = require_tool("nginx")
    port = _free_port()
    conf = _stage(render(), tmp_path / "srv", port)
    proc = subprocess.Popen(
        [nginx, "-p", str(conf.parent), "-c", str(conf), "-g", "daemon off;"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:

        def get(path, method="GET"):
            request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method)
            try:
                with urllib.request.urlopen(request, timeout=2) as response:
                    return response.status, response.headers, response.read()
            except urllib.error.HTTPError as error:
                return error.code, error.headers, error.read()

        for _ in range(50):
            try:
                get("/healthz")
                break
            except OSError:
                time.sleep(0.05)
        expected = {
            "/": "text/html; charset=utf-8",
            "/style.css": "text/css; charset=utf-8",
            "/api/register.json": "application/json; charset=utf-8",
            "/api/schema.json": "application/schema+json; charset=utf-8",
            "/api/algorithms/pothole-detection.json": "application/json; charset=utf-8",
        }
        for path, content_type in expected.items():
            status, headers, body = get(path)
            assert (status, headers["Content-Type"]) == (200, content_type), path
            assert headers["X-Content-Type-Options"] == "nosniff"
            assert headers["Content-Security-Policy"].startswith("default-src 'none'; style-src 'self'")
            if path.endswith(".json"):
                json.loads(body)
        assert get("/api/algorithms/nope.json")[0] == 404
        assert get("/api/algorithms/x.json.bak")[0] == 404
        assert get("/srv/api/register.json")[0] == 404
        assert get("/api/register.json", "HEAD")[0] == 200
        for method in ("POST", "PUT", "DELETE"):
            assert get("/api/register.json", method)[0] == 405
    finally:
        proc.terminate()
        proc.wait(timeout=5)


CURL = shutil.which("curl")


@pytest.mark.skipif(not CURL or not shutil.which("sh"), reason="curl or sh is not installed")
@pytest.mark.parametrize("status, succeeds", [(201, True), (204, True), (207, False), (400, False)])
def test_publish_script_succeeds_only_when_the_broker_took_every_entity(render, tmp_path, status, succeeds):
    received = []

    class Broker(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            received.append(
                (self.path, self.headers["Content-Type"], self.rfile.read(int(self.headers["Content-Length"])))
            )
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Broker)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        r = render()
        [job] = jobs(r)
        entities = find(r, "ConfigMap", job["metadata"]["name"], NS)["data"]["entities.json"]
        (tmp_path / "entities.json").write_text(entities)
        script = (
            job["spec"]["template"]["spec"]["containers"][0]["command"][2]
            .replace("/srv/publish/", f"{tmp_path}/")
            .replace(
                "http://orion-ld.alderbrook-broker.svc.cluster.local:1026", f"http://127.0.0.1:{server.server_port}"
            )
        )
        result = subprocess.run(["sh", "-c", script], capture_output=True, text=True, timeout=60)
    finally:
        server.shutdown()
    assert (result.returncode == 0) is succeeds, result.stderr
    path, content_type, body = received[0]
    assert (path, content_type) == ("/ngsi-ld/v1/entityOperations/upsert", "application/ld+json")
    assert json.loads(body) == json.loads(entities)
