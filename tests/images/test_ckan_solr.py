"""The ckan-solr test image run as charts/ckan runs its Solr: the chart's command, arguments and
environment on a read-only root, /var/solr a folder the process may write only through its group
(as a volume with fsGroup) and /tmp a tmpfs. This ctr cannot set a user, so the image's user 8983
runs it, not the chart's uid 18983 (arbitrary uids are for the real node).

Marked `images`; the JVM makes these slow (Solr answers its ping within about half a minute)."""

from __future__ import annotations

import hashlib
import json
import os
import shlex
from pathlib import Path
from urllib.parse import urlencode

import pytest

from tests.conftest import env_of, find
from tests.images.containerd import Containerd, bind, tmpfs
from tests.images.recipe import load_recipe

pytestmark = pytest.mark.images

READY_WITHIN = 240  # seconds; the chart's startup probe allows 300
SOLR = "http://127.0.0.1:8983/solr/ckan"
# A dataset as CKAN 2.11 indexes it (ckan/lib/search/index.py: index_id is the MD5 of id and site id,
# capacity public or private, metadata_modified in UTC with a Z).
DATASET_ID = "0b6c4c2e-6a4b-4e0b-9a39-2f3b5f1a7c11"
DATASET = {
    "id": DATASET_ID,
    "index_id": hashlib.md5(f"{DATASET_ID}default".encode()).hexdigest(),
    "site_id": "default",
    "name": "air-quality-stations",
    "title": "Air quality stations",
    "entity_type": "package",
    "dataset_type": "dataset",
    "state": "active",
    "capacity": "public",
    "metadata_modified": "2025-03-01T12:00:00Z",
}
# package_search's query for "air quality" (ckan/lib/search/query.py: dismax over QUERY_FIELDS, the
# site and active-state filters).
SEARCH = {
    "q": "air quality",
    "defType": "dismax",
    "qf": "name^4 title^4 tags^2 groups^2 text",
    "fq": "+site_id:default +state:active",
    "wt": "json",
}
# Runs after the chart's command was started in the background with its output in /tmp/log: waits
# for the ping the chart's probes ask, indexes the dataset and searches it (wget: the image's HTTP
# client), prints the replies and the server's output.
PROBE = f"""
started=$SECONDS
until wget -q -O /tmp/ping {SOLR}/admin/ping 2>/dev/null && grep -q '"status":"OK"' /tmp/ping; do
  kill -0 %1 2>/dev/null || {{ echo "solr exited"; cat /tmp/log; exit 1; }}
  [ $((SECONDS - started)) -lt {READY_WITHIN} ] || {{ echo "not ready after {READY_WITHIN} s"; kill %1; cat /tmp/log; exit 1; }}
  sleep 1
done
echo "ready after $((SECONDS - started)) s"
echo "update: $(wget -q -O - --header 'Content-Type: application/json' --post-data {shlex.quote(json.dumps([DATASET]))} '{SOLR}/update?commit=true' | tr -d ' \\n')"
echo "select: $(wget -q -O - '{SOLR}/select?{urlencode(SEARCH)}' | tr -d '\\n')"
kill %1; wait || true
cat /tmp/log
"""


def _run_line(container: dict) -> list[str]:
    """What the kubelet runs: `command` replaces the image's entrypoint, `args` its command."""
    config = load_recipe("ckan-solr").config
    command = container.get("command", config.entrypoint)
    args = container.get("args", config.cmd if "command" not in container else [])
    return [*command, *args]


def test_solr_runs_as_its_user_on_java_17(containerd: Containerd, image):
    result = containerd.run(
        image("ckan-solr"), "sh", "-c", "id -u && java -version 2>&1 && exec solr version", read_only=True
    )
    lines = result.stdout.splitlines()
    assert lines[0] == "8983"
    assert any(line.startswith('openjdk version "17.') for line in lines)
    assert "9.8.1" in lines[-1]


def test_the_charts_solr_creates_the_ckan_core_and_finds_an_indexed_dataset(
    containerd: Containerd, image, rendered_examples, tmp_path: Path
):
    pod = find(rendered_examples["small-city"], "StatefulSet", "solr")["spec"]["template"]["spec"]
    container = pod["containers"][0]
    var_solr = tmp_path / "var-solr"
    var_solr.mkdir()
    os.chown(var_solr, 0, 8983)  # writable through the group alone, as fsGroup makes a volume
    var_solr.chmod(0o770)
    run_line = shlex.join(_run_line(container))
    result = containerd.run(
        image("ckan-solr"),
        "bash",
        "-c",
        f"{run_line} >/tmp/log 2>&1 &\n{PROBE}",
        env=env_of(container),
        read_only=True,
        mounts=[bind(var_solr, "/var/solr", read_only=False), tmpfs("/tmp")],
        check=False,
        timeout=READY_WITHIN + 120,
    )
    output = result.stdout
    assert result.returncode == 0, output[-6000:] + result.stderr[-2000:]
    assert "Created ckan" in output
    update = output.split("update: ", 1)[1].splitlines()[0]
    assert '"status":0' in update, update
    select = json.loads(output.split("select: ", 1)[1].splitlines()[0])
    assert select["response"]["numFound"] == 1, select
    found = select["response"]["docs"][0]
    assert {k: found[k] for k in DATASET} == DATASET
    assert (var_solr / "data/ckan/core.properties").is_file()
    assert any((var_solr / "data/ckan/data/index").iterdir()), "the index is not on the volume"
    assert (var_solr / "logs/solr.log").is_file()
