"""The renderer's mechanisms, on small fixture charts: namespaces, generated NetworkPolicies,
quotas from footprints, overrides, stacks."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from mims import paths
from mims.blueprint import load_blueprint
from mims.charts.meta import Chart
from mims.charts.network import NON_PUBLIC_V4, NON_PUBLIC_V6
from mims.charts.render import Renderer, ResolvedEndpoint, _check_public_ports
from mims.errors import ChartError, InvalidInput
from tests.conftest import FIXTURES, find


@pytest.fixture(scope="module")
def fixture_renderer(tmp_path_factory) -> Renderer:
    root = tmp_path_factory.mktemp("charts")
    for name in ("_lib", "foundation"):
        shutil.copytree(paths.charts_dir() / name, root / name)
    for chart in (FIXTURES / "charts").iterdir():
        shutil.copytree(chart, root / chart.name)
    return Renderer(charts_root=root)


@pytest.fixture
def platform(tmp_path: Path):
    """Write the fixture blueprint with extra YAML appended; return its path."""

    def write(extra: str = "") -> Path:
        path = tmp_path / "blueprint.yaml"
        path.write_text((FIXTURES / "blueprints" / "fixture-platform.yaml").read_text() + extra)
        return path

    return write


def render(renderer: Renderer, path: Path):
    return renderer.render(load_blueprint(path))


def test_objects_land_in_their_component_namespace(fixture_renderer, platform):
    rendering = render(fixture_renderer, platform())
    assert find(rendering, "Deployment", "api")["metadata"]["namespace"] == "testville-broker"
    assert find(rendering, "Job", "seed")["metadata"]["namespace"] == "testville-ingestion"
    labels = find(rendering, "Deployment", "api")["metadata"]["labels"]
    assert labels["mims.io/component"] == "broker" and labels["app.kubernetes.io/managed-by"] == "mims"


def test_every_enabled_component_gets_a_restricted_namespace(fixture_renderer, platform):
    rendering = render(fixture_renderer, platform())
    names = sorted(o["metadata"]["name"] for o in rendering.objects() if o["kind"] == "Namespace")
    assert names == ["testville-broker", "testville-ingestion", "testville-monitoring"]
    for ns in names:
        labels = find(rendering, "Namespace", ns)["metadata"]["labels"]
        assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
        deny = find(rendering, "NetworkPolicy", "default-deny", ns)["spec"]
        assert deny == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}


def test_flow_inside_a_chart_opens_both_directions(fixture_renderer, platform):
    rendering = render(fixture_renderer, platform())
    ingress = find(rendering, "NetworkPolicy", "allow-ingress-db")["spec"]
    assert ingress["podSelector"] == {"matchLabels": {"app.kubernetes.io/name": "db"}}
    assert ingress["ingress"] == [
        {
            "ports": [{"protocol": "TCP", "port": 27017}],
            "from": [{"podSelector": {"matchLabels": {"app.kubernetes.io/name": "api"}}}],
        }
    ]
    egress = find(rendering, "NetworkPolicy", "allow-egress-api")["spec"]["egress"]
    assert {
        "ports": [{"protocol": "TCP", "port": 27017}],
        "to": [{"podSelector": {"matchLabels": {"app.kubernetes.io/name": "db"}}}],
    } in egress


def test_call_to_another_component_selects_its_namespace(fixture_renderer, platform):
    rendering = render(fixture_renderer, platform())
    rules = find(rendering, "NetworkPolicy", "allow-ingress-api")["spec"]["ingress"]
    assert {
        "ports": [{"protocol": "TCP", "port": 1026}],
        "from": [
            {
                "podSelector": {"matchLabels": {"app.kubernetes.io/name": "agent"}},
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "testville-ingestion"}},
            }
        ],
    } in rules


def test_scraper_reaches_every_metrics_port(fixture_renderer, platform):
    rendering = render(fixture_renderer, platform())
    egress = find(rendering, "NetworkPolicy", "allow-egress-scraper")["spec"]["egress"]
    ports = sorted(rule["ports"][0]["port"] for rule in egress)
    assert ports == [8000, 9090]


def test_every_metrics_workload_gets_a_headless_service_for_per_pod_scraping(fixture_renderer, platform):
    rendering = render(fixture_renderer, platform("budget: {profile: standard}\n"))
    service = find(rendering, "Service", "api-metrics", "testville-broker")
    assert service["spec"] == {
        "clusterIP": "None",
        "publishNotReadyAddresses": True,
        "selector": {"app.kubernetes.io/name": "api", "app.kubernetes.io/instance": "testville"},
        "ports": [{"name": "metrics-8000", "port": 8000, "targetPort": 8000, "protocol": "TCP"}],
    }
    assert service["metadata"]["labels"]["mims.io/component"] == "broker"
    assert find(rendering, "Service", "scraper-metrics", "testville-monitoring")


def test_call_to_a_disabled_component_is_dropped(fixture_renderer, platform):
    rendering = render(fixture_renderer, platform())
    egress = find(rendering, "NetworkPolicy", "allow-egress-agent")["spec"]["egress"]
    assert sorted(rule["ports"][0]["port"] for rule in egress) == [443, 1026]


@pytest.mark.parametrize(
    "extra, ports",
    [
        ("", [1026]),
        ("  monitoring: {enabled: false}\n", [1026, 8080]),
        ("tls: {mode: secret, secret_name: testville-tls}\n", [1026, 8443]),
    ],
)
def test_call_to_the_entrance_reaches_the_entrance_ports_in_force(fixture_renderer, platform, extra, ports):
    """`unless` gives the public address to another component when that one is enabled; `tls` limits a
    port to the modes that bind it."""
    egress = find(render(fixture_renderer, platform(extra)), "NetworkPolicy", "allow-egress-agent")["spec"]["egress"]
    [api] = [r for r in egress if r["to"][0].get("podSelector") == {"matchLabels": {"app.kubernetes.io/name": "api"}}]
    assert [p["port"] for p in api["ports"]] == ports


def test_entrance_that_yields_to_an_unknown_component_is_refused_at_its_line(tmp_path):
    chart = tmp_path / "fx-broker"
    shutil.copytree(FIXTURES / "charts" / "fx-broker", chart)
    yaml_path = chart / "chart.yaml"
    yaml_path.write_text(yaml_path.read_text().replace("unless: monitoring", "unless: monitorng"))
    with pytest.raises(ChartError, match=r"chart\.yaml:\d+:\d+.*`monitorng` is no component"):
        Chart.load(chart)


def test_disabling_a_component_removes_its_objects_and_flows(fixture_renderer, platform):
    rendering = render(fixture_renderer, platform("  ingestion: {enabled: false}\n"))
    assert not [o for o in rendering.objects() if o["metadata"].get("namespace") == "testville-ingestion"]
    rules = find(rendering, "NetworkPolicy", "allow-ingress-api")["spec"]["ingress"]
    assert all("testville-ingestion" not in str(rule) for rule in rules)


def test_quota_covers_workloads_surge_and_jobs(fixture_renderer, platform):
    rendering = render(fixture_renderer, platform())
    hard = find(rendering, "ResourceQuota", "component-budget", "testville-broker")["spec"]["hard"]
    # api 200m + db 100m, surge of the largest pod (api, 200m), no job, 50m for one debug pod
    assert hard["requests.cpu"] == "550m"
    # 256Mi + 128Mi + surge 256Mi + 64Mi
    assert hard["requests.memory"] == "704Mi"
    hard = find(rendering, "ResourceQuota", "component-budget", "testville-ingestion")["spec"]["hard"]
    assert hard["requests.cpu"] == "100m"  # only the 50m job, plus 50m
    assert hard["pods"] == "3"


def test_profile_changes_sizes(fixture_renderer, platform):
    rendering = render(fixture_renderer, platform("budget: {profile: standard}\n"))
    api = find(rendering, "Deployment", "api")
    assert api["spec"]["replicas"] == 2
    assert api["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]["cpu"] == "400m"


def test_override_patches_one_object(fixture_renderer, platform):
    rendering = render(
        fixture_renderer,
        platform(
            "overrides:\n"
            "  - target: {kind: Deployment, name: api}\n"
            "    patch: {spec: {replicas: 3}, metadata: {annotations: {team: mobility}}}\n"
            "  - target: {kind: LimitRange, name: container-defaults, namespace: testville-broker}\n"
            "    patch: {metadata: {labels: {app.kubernetes.io/managed-by: null}}}\n"
        ),
    )
    assert find(rendering, "Deployment", "api")["spec"]["replicas"] == 3
    assert find(rendering, "Deployment", "api")["metadata"]["annotations"] == {"team": "mobility"}
    labels = find(rendering, "LimitRange", "container-defaults", "testville-broker")["metadata"]["labels"]
    assert "app.kubernetes.io/managed-by" not in labels


def test_override_that_matches_nothing_is_an_error_at_its_line(fixture_renderer, platform):
    path = platform("overrides:\n  - target: {kind: Deployment, name: apii}\n    patch: {spec: {replicas: 3}}\n")
    with pytest.raises(InvalidInput) as info:
        render(fixture_renderer, path)
    [problem] = info.value.problems
    assert str(problem) == (
        f"{path}:12:13: overrides[0].target: no rendered Deployment named `apii`; "
        "run `mims render` to list object names"
    )


def test_ambiguous_override_asks_for_a_namespace(fixture_renderer, platform):
    path = platform("overrides:\n  - target: {kind: LimitRange, name: container-defaults}\n    patch: {spec: {}}\n")
    with pytest.raises(InvalidInput, match="exists in several namespaces"):
        render(fixture_renderer, path)


def test_override_may_not_change_kind(fixture_renderer, platform):
    path = platform("overrides:\n  - target: {kind: Deployment, name: api}\n    patch: {kind: StatefulSet}\n")
    with pytest.raises(InvalidInput, match="may not change `kind`"):
        render(fixture_renderer, path)


def test_objects_are_grouped_by_stack_in_dependency_order(fixture_renderer, platform):
    rendering = render(fixture_renderer, platform())
    order = [s.layer.name for s in rendering.layers]
    assert order.index("foundation") < order.index("broker") < order.index("ingestion")
    by_stack = {s.layer.name: {o["metadata"].get("namespace") for o in s.objects} for s in rendering.layers}
    assert by_stack["ingestion"] == {"testville-ingestion"}
    assert {o["kind"] for o in rendering.layers[0].objects} >= {"Namespace", "ResourceQuota"}


def test_external_egress_opens_only_the_named_ports(fixture_renderer, platform):
    rendering = render(fixture_renderer, platform())
    egress = find(rendering, "NetworkPolicy", "allow-egress-agent")["spec"]["egress"]
    assert {
        "ports": [{"protocol": "TCP", "port": 443}],
        "to": [
            {"ipBlock": {"cidr": "0.0.0.0/0", "except": NON_PUBLIC_V4}},
            {"ipBlock": {"cidr": "::/0", "except": NON_PUBLIC_V6}},
        ],
    } in egress
    assert not any(
        "ipBlock" in str(rule) for rule in find(rendering, "NetworkPolicy", "allow-ingress-api")["spec"]["ingress"]
    )


def test_two_public_tcp_endpoints_cannot_share_a_public_port():
    def tcp(component: str) -> ResolvedEndpoint:
        return ResolvedEndpoint(
            component,
            f"x-{component}",
            "mqtt",
            "broker",
            1883,
            "MQTT",
            True,
            "mqtt",
            "/",
            True,
            "tcp",
            False,
            8883,
            "mqtts",
        )

    with pytest.raises(ChartError, match="public port 8883 is claimed by a/mqtt and b/mqtt"):
        _check_public_ports([tcp("a"), tcp("b")])


def test_quote_writes_strings_yaml_and_json_both_read(renderer):
    """DEL, C1 controls, line separators and BOMs pass json.dumps unescaped; YAML does not read them back."""
    value = 'Alder\x7fbrook \x80 Ærø \u2028 \u2029 \ufeff "q"'
    quoted = renderer.env.filters["quote"](value)
    assert yaml.safe_load(quoted) == value and json.loads(quoted) == value
