"""The worked example of a chart of a city's own (docs/examples/stellio, docs/charts.md): its blueprint
validates and renders with the chart found through `charts.paths`, and the rendering keeps the rules
the shipped examples keep (Pod Security `restricted` and the other platform rules, checkov and strict
schema validation) and agrees with the example's own image facts. The deployment on a simulated
cluster is tests/engine/test_stellio_example.py."""

from __future__ import annotations

import json

import pytest

from mims.blueprint import load_blueprint
from mims.charts.facts import load_image_facts
from mims.charts.output import write_rendering
from tests.charts.test_image_facts import (  # noqa: F401
    runs_of,
    test_container_paths_exist_in_the_image,
    test_container_ports_are_ports_the_image_serves_or_the_container_configures,
    test_http_probes_hit_health_endpoints_of_the_image_or_its_configuration,
    test_paths_the_image_writes_are_volumes_on_a_read_only_root,
    test_variables_set_are_read_by_the_image,
)
from tests.charts.test_platform import (  # noqa: F401
    test_data_volumes_are_protected,
    test_every_container_has_requests_limits_and_numeric_user,
    test_every_object_says_it_is_managed_by_mims_and_for_which_component,
    test_every_pod_passes_pod_security_restricted,
    test_images_are_pinned_versions,
    test_long_running_containers_have_probes,
    test_minimal_profile_fits_one_4_vcpu_16_gib_node,
    test_no_secret_value_is_rendered,
    test_only_a_databases_set_up_step_holds_its_superuser_password,
    test_service_account_tokens_are_not_mounted_by_default,
)
from tests.charts.test_scanners import (
    test_checkov_finds_no_failed_check,
    test_every_object_validates_strictly_against_oldest_kubernetes,
)
from tests.conftest import REPO

# The tests imported above are the shipped examples' own: pytest collects them here as well and runs
# them on this example through this module's fixtures (`rendering`, `rendered_examples`,
# `rendered_dirs`, `runs`, `facts`), so the example is held to exactly the same rules. The scanner
# tests keep their marker, so `-m scanners` selects them here too.
for scanner_test in (
    test_checkov_finds_no_failed_check,
    test_every_object_validates_strictly_against_oldest_kubernetes,
):
    pytest.mark.scanners(scanner_test)

EXAMPLE = REPO / "docs" / "examples" / "stellio"
BLUEPRINT = EXAMPLE / "blueprint.yaml"
WORKLOADS = {"api-gateway", "search-service", "subscription-service", "kafka", "broker-db"}


@pytest.fixture(scope="module")
def rendering(renderer):
    return renderer.render(load_blueprint(BLUEPRINT))


@pytest.fixture(scope="module")
def rendered_examples(rendering):
    return {"stellio-example": rendering}


@pytest.fixture(scope="module")
def rendered_dirs(rendering, tmp_path_factory):
    target = tmp_path_factory.mktemp("rendered") / "stellio-example"
    write_rendering(rendering, target)
    return {"stellio-example": target}


@pytest.fixture(scope="module")
def broker_namespace(rendering):
    return f"{rendering.loaded.blueprint.city.name}-broker"


@pytest.fixture(scope="module")
def facts():
    return load_image_facts(EXAMPLE / "image-facts.yaml").images


@pytest.fixture(scope="module")
def runs(rendering, broker_namespace):
    """The containers of the example chart (the broker's namespace), which its facts file covers."""
    return [
        r for r in runs_of(rendering, "stellio-example") if r.where.startswith(f"stellio-example: {broker_namespace}/")
    ]


def test_the_blueprint_validates_and_renders_the_chart_of_its_own(cli, tmp_path):
    code, out, err = cli("validate", BLUEPRINT)
    assert code == 0, err
    code, out, err = cli("render", BLUEPRINT, "-o", tmp_path, "--json")
    assert code == 0, err
    assert json.loads(out)["components"]["broker"]["objects"] > 0
    written = {p.name.split("-", 1)[1] for p in (tmp_path / "broker").glob("*.yaml")}
    assert {f"deployment-fenwick-broker-{w}.yaml" for w in ("api-gateway", "search-service")} <= written
    assert {f"statefulset-fenwick-broker-{w}.yaml" for w in ("kafka", "broker-db")} <= written


def test_the_broker_is_the_example_chart(rendering):
    chart = rendering.charts["broker"]
    assert chart.meta.implementation == "stellio"
    assert chart.path == EXAMPLE / "charts" / "stellio"
    assert set(chart.meta.workloads) == WORKLOADS


def test_the_facts_file_covers_exactly_the_chart_s_images(rendering, facts, runs):
    pinned = {f"{i.repository}:{i.tag}" for i in rendering.charts["broker"].meta.images.values()}
    assert pinned == set(facts) == {r.image for r in runs}


def test_the_only_checkov_skip_is_the_image_digest(rendering, broker_namespace):
    """Nothing in the example needs a documented exception: only the digest check is skipped, with
    the reason every chart gives (docs/security.md)."""
    skipped = {
        (o["metadata"]["name"], value.split("=", 1)[0])
        for o in rendering.objects()
        if o["metadata"].get("namespace") == broker_namespace
        for key, value in (o["metadata"].get("annotations") or {}).items()
        if key.startswith("checkov.io/skip")
    }
    assert skipped == {(w, "CKV_K8S_43") for w in WORKLOADS}
