"""External scanners on the rendered examples: checkov (zero failed checks) and
kubernetes-validate --strict against Kubernetes 1.33, the oldest version mims supports."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from mims.charts.output import write_rendering
from tests.conftest import REPO, require_tool

OLDEST_KUBERNETES = "1.33.0"
pytestmark = pytest.mark.scanners


@pytest.fixture(scope="module")
def rendered_dirs(rendered_examples, tmp_path_factory) -> dict[str, Path]:
    dirs = {}
    for name, rendering in rendered_examples.items():
        target = tmp_path_factory.mktemp("rendered") / name
        write_rendering(rendering, target)
        dirs[name] = target
    return dirs


def test_checkov_finds_no_failed_check(rendered_dirs):
    checkov = require_tool("checkov")
    for name, folder in rendered_dirs.items():
        run = subprocess.run(
            [checkov, "-d", str(folder), "--framework", "kubernetes", "--skip-download", "-o", "json", "--quiet"],
            capture_output=True,
            text=True,
            timeout=600,
        )
        reports = json.loads(run.stdout)
        reports = reports if isinstance(reports, list) else [reports]
        failed = [(f["check_id"], f["resource"]) for r in reports for f in r["results"]["failed_checks"]]
        assert failed == [], f"{name}: {failed}"
        assert sum(r["summary"]["passed"] for r in reports) > 100


def custom_resource(path: Path) -> bool:
    """An object of a CRD's kind (cert-manager's ClusterIssuer): its API group has a dot and is not
    Kubernetes' own. tests/charts/test_cert_manager.py checks those against their CRD schemas."""
    api_version = re.search(r"^apiVersion: (\S+)$", path.read_text(), flags=re.M).group(1)
    group = api_version.rpartition("/")[0]
    return "." in group and not group.endswith(".k8s.io")


def test_every_object_validates_strictly_against_oldest_kubernetes(rendered_dirs):
    validate = require_tool("kubernetes-validate")
    for name, folder in rendered_dirs.items():
        files = sorted(str(p) for p in folder.glob("*/*.yaml") if not custom_resource(p))
        run = subprocess.run(
            [validate, "--strict", "-k", OLDEST_KUBERNETES, "--quiet", *files],
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert run.returncode == 0, f"{name}:\n{run.stdout}\n{run.stderr}"
        # kubernetes-validate only warns about a kind it has no schema for: that must not pass unseen
        assert "Couldn't find schema" not in run.stdout + run.stderr, f"{name}:\n{run.stdout}"


def test_documented_checkov_skips_match_the_rendered_ones(rendered_examples):
    """docs/security.md lists every skip with its reason; the list must be the real one."""
    rendered = set()
    for rendering in rendered_examples.values():
        for obj in rendering.objects():
            for key, value in ((obj["metadata"].get("annotations")) or {}).items():
                if key.startswith("checkov.io/skip"):
                    check = value.split("=", 1)[0]
                    name = re.sub(r"-[0-9a-f]{10}$", "-<hash>", obj["metadata"]["name"])  # content-named Jobs
                    rendered.add((obj["kind"], name, check))
    text = (REPO / "docs" / "security.md").read_text()
    documented = set(re.findall(r"^\| (\w+) \| `([-\w<>]+)` \| (CKV\w+) \|", text, flags=re.M))
    assert documented == rendered
    count = re.search(r"(\d+) skips? in all", text)
    assert count and int(count.group(1)) == len(rendered)
