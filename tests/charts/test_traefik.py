"""The `traefik` ingress controller add-on: Kubernetes Ingress provider only, IngressClass `traefik`,
least-privilege RBAC on the namespaces it serves, one LoadBalancer in front of the gateway."""

from __future__ import annotations

import pytest
import yaml

from mims.blueprint import load_blueprint
from tests.conftest import find, merge, pod_specs

NS = "alderbrook-ingress-controller"
CERT_MANAGER = {"addons": {"cert_manager": {"enabled": True, "options": {"acme_email": "it@alderbrook.example"}}}}
GATEWAY_NS = "alderbrook-gateway"


@pytest.fixture
def render(write_blueprint, renderer):
    """The small-city example with the add-on on (unless `addon=False`) and a patch."""

    def run(patch: dict | None = None, addon: bool = True):
        patch = merge(patch or {}, {"addons": {"ingress_controller": {"enabled": addon}}})
        return renderer.render(load_blueprint(write_blueprint(patch)))

    return run


def traefik_pod(rendering) -> dict:
    return find(rendering, "Deployment", "traefik", NS)["spec"]["template"]["spec"]


def args_of(rendering) -> list[str]:
    [container] = traefik_pod(rendering)["containers"]
    return container["args"]


def test_rendered_only_when_the_blueprint_asks(render):
    assert not [
        o
        for o in render(addon=False).objects()
        if o["metadata"].get("namespace") == NS or o["kind"] in ("IngressClass", "ClusterRole")
    ]
    assert find(render(), "Deployment", "traefik", NS)


def test_kubernetes_ingress_provider_and_file_for_tcp_routes_only_no_crds(render):
    rendering = render()
    args = args_of(rendering)
    providers = {a.split("=")[0].split(".")[1] for a in args if a.startswith("--providers.")}
    assert providers == {"kubernetesingress", "file"}
    assert {"--providers.file.filename=/etc/traefik/dynamic/tcp.yaml", "--providers.file.watch=false"} <= set(args)
    assert "--providers.kubernetesingress.ingressclass=traefik" in args
    assert not [o for o in rendering.objects() if o["kind"] == "CustomResourceDefinition"]
    assert not [a for a in args if a.startswith("--api")]  # no dashboard, no API


def test_ingress_class_is_traefik(render):
    ingress_class = find(render(), "IngressClass", "traefik")
    assert ingress_class["spec"] == {"controller": "traefik.io/ingress-controller"}
    assert "namespace" not in ingress_class["metadata"]


def test_watches_only_the_gateway_and_its_own_namespace(render):
    args = args_of(render())
    assert f"--providers.kubernetesingress.namespaces={GATEWAY_NS},{NS}" in args
    assert f"--providers.kubernetesingress.ingressendpoint.publishedservice={NS}/traefik-lb" in args


def test_cluster_role_reads_only_cluster_scoped_kinds(render):
    rendering = render()
    role = find(rendering, "ClusterRole", "alderbrook-traefik")
    granted = {
        (g, r, v) for rule in role["rules"] for g in rule["apiGroups"] for r in rule["resources"] for v in rule["verbs"]
    }
    assert granted == {
        (g, r, v) for g, r in (("networking.k8s.io", "ingressclasses"), ("", "nodes")) for v in ("get", "list", "watch")
    }
    binding = find(rendering, "ClusterRoleBinding", "alderbrook-traefik")
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "traefik", "namespace": NS}]


def test_namespaced_rights_are_roles_in_the_watched_namespaces(render):
    rendering = render()
    for ns in (GATEWAY_NS, NS):
        role = find(rendering, "Role", "traefik-ingress", ns)
        granted = {(r, v) for rule in role["rules"] for r in rule["resources"] for v in rule["verbs"]}
        assert granted == {
            ("services", "get"),
            ("services", "list"),
            ("services", "watch"),
            ("secrets", "get"),
            ("secrets", "list"),
            ("secrets", "watch"),
            ("endpointslices", "list"),
            ("endpointslices", "watch"),
            ("ingresses", "get"),
            ("ingresses", "list"),
            ("ingresses", "watch"),
            ("ingresses/status", "update"),
        }
        binding = find(rendering, "RoleBinding", "traefik-ingress", ns)
        assert binding["roleRef"]["name"] == "traefik-ingress"
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "traefik", "namespace": NS}]


def test_only_traefik_mounts_an_api_token_and_says_why(render):
    rendering = render()
    deployment = find(rendering, "Deployment", "traefik", NS)
    assert deployment["spec"]["template"]["spec"]["automountServiceAccountToken"] is True
    assert deployment["spec"]["template"]["spec"]["serviceAccountName"] == "traefik"
    skips = [v for k, v in deployment["metadata"]["annotations"].items() if k.startswith("checkov.io/skip")]
    assert any(v.startswith("CKV_K8S_38=") for v in skips)
    gateway_pods = [pod for o, pod in pod_specs(rendering) if o["metadata"]["namespace"] == GATEWAY_NS]
    assert gateway_pods and all(pod["automountServiceAccountToken"] is False for pod in gateway_pods)


def test_non_root_ports_behind_a_load_balancer_on_80_and_443(render):
    rendering = render()
    service = find(rendering, "Service", "traefik-lb", NS)
    assert service["spec"]["type"] == "LoadBalancer"
    assert [(p["port"], p["targetPort"]) for p in service["spec"]["ports"]] == [
        (80, "web"),
        (443, "websecure"),
        (8883, "mqtt"),
    ]
    pod = traefik_pod(rendering)
    ports = {p["name"]: p["containerPort"] for p in pod["containers"][0]["ports"]}
    assert ports == {"web": 8000, "websecure": 8443, "traefik": 8080, "mqtt": 8883}
    assert pod["securityContext"]["runAsUser"] == 65532
    assert pod["containers"][0]["securityContext"]["readOnlyRootFilesystem"] is True
    assert "add" not in pod["containers"][0]["securityContext"]["capabilities"]


def test_ping_and_prometheus_metrics(render):
    rendering = render()
    args = args_of(rendering)
    assert {"--ping=true", "--metrics.prometheus=true"} <= set(args)
    container = traefik_pod(rendering)["containers"][0]
    assert container["readinessProbe"]["httpGet"] == {"path": "/ping", "port": "traefik"}
    metrics = find(rendering, "Service", "traefik", NS)
    assert [(p["port"], p["targetPort"]) for p in metrics["spec"]["ports"]] == [(8080, 8080)]


@pytest.mark.parametrize(
    "tls, present, absent",
    [
        (
            {"mode": "secret", "secret_name": "alderbrook-tls"},
            "--entryPoints.web.http.redirections.entryPoint.to=websecure",
            "--entryPoints.web.forwardedHeaders.insecure=true",
        ),
        (
            {"mode": "external"},
            "--entryPoints.web.forwardedHeaders.insecure=true",
            "--entryPoints.web.http.redirections.entryPoint.to=websecure",
        ),
        (
            {"mode": "cert-manager"},
            "--entryPoints.web.http.redirections.entryPoint.to=websecure",
            "--entryPoints.web.forwardedHeaders.insecure=true",
        ),
    ],
)
def test_tls_mode_decides_redirects_and_forwarded_headers(render, tls, present, absent):
    args = args_of(render({"tls": tls, **CERT_MANAGER}))
    assert present in args and absent not in args


def test_plain_http_trial_neither_redirects_nor_trusts_forwarded_headers(render):
    args = args_of(render({"tls": {"mode": "none"}}))
    assert not [a for a in args if "redirections" in a or "forwardedHeaders" in a]


def test_network_open_on_its_ports_forwarding_to_the_gateway_and_watching_the_api(render):
    rendering = render()
    ingress = find(rendering, "NetworkPolicy", "allow-ingress-traefik", NS)["spec"]["ingress"]
    assert next(r for r in ingress if "from" not in r)["ports"] == [
        {"protocol": "TCP", "port": 8000},
        {"protocol": "TCP", "port": 8443},
        {"protocol": "TCP", "port": 8883},
    ]
    egress = find(rendering, "NetworkPolicy", "allow-egress-traefik", NS)["spec"]["egress"]
    peers = {
        r["to"][0]["podSelector"]["matchLabels"]["app.kubernetes.io/name"]: r
        for r in egress
        if "podSelector" in r["to"][0]
    }
    assert set(peers) == {"gateway", "mosquitto"}
    assert peers["gateway"]["to"] == [
        {
            "podSelector": {"matchLabels": {"app.kubernetes.io/name": "gateway"}},
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": GATEWAY_NS}},
        }
    ]
    assert peers["gateway"]["ports"] == [{"protocol": "TCP", "port": 8080}]
    assert peers["mosquitto"]["ports"] == [{"protocol": "TCP", "port": 1883}]
    [api_server] = [r for r in egress if "ipBlock" in r["to"][0]]
    assert api_server["ports"] == [{"protocol": "TCP", "port": 443}, {"protocol": "TCP", "port": 6443}]
    assert api_server["to"][0] == {"ipBlock": {"cidr": "0.0.0.0/0"}}  # its address differs per cluster


def test_callers_of_public_urls_may_reach_the_entry_points(render):
    """A pod that calls a public URL lands on Traefik's pods; each such caller is let in by name."""
    ingress = find(render(), "NetworkPolicy", "allow-ingress-traefik", NS)["spec"]["ingress"]
    callers = {
        (
            r["from"][0]["podSelector"]["matchLabels"]["app.kubernetes.io/name"],
            r["from"][0]["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"],
        ): [p["port"] for p in r["ports"]]
        for r in ingress
        if "from" in r
    }
    assert callers == {("orion-ld", "alderbrook-broker"): [8000, 8443], ("prometheus", "alderbrook-monitoring"): [8080]}


def test_standard_profile_runs_two_with_a_disruption_budget(render):
    rendering = render({"budget": {"profile": "standard"}})
    assert find(rendering, "Deployment", "traefik", NS)["spec"]["replicas"] == 2
    assert find(rendering, "PodDisruptionBudget", "traefik", NS)["spec"]["minAvailable"] == 1


def test_traefik_reaches_acme_solver_pods_only_in_cert_manager_mode(render):
    assert not [o for o in render().objects() if o["metadata"]["name"] == "allow-egress-traefik-acme-http01-solver"]
    rendering = render({"tls": {"mode": "cert-manager"}, **CERT_MANAGER})
    [rule] = find(rendering, "NetworkPolicy", "allow-egress-traefik-acme-http01-solver", NS)["spec"]["egress"]
    assert rule["ports"] == [{"protocol": "TCP", "port": 8089}]
    assert rule["to"][0]["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"] == GATEWAY_NS


# --- public tcp endpoints (MQTT) -----------------------------------------------------------------


def tcp_routes(rendering) -> dict:
    return yaml.safe_load(find(rendering, "ConfigMap", "traefik-tcp", NS)["data"]["tcp.yaml"])["tcp"]


@pytest.mark.parametrize(
    "tls",
    [{"mode": "secret", "secret_name": "alderbrook-tls"}, {"mode": "cert-manager"}],
    ids=["secret", "cert-manager"],
)
def test_mqtt_entry_point_ends_tls_for_the_mqtt_host_and_forwards_to_mosquitto(render, tls):
    rendering = render({"tls": tls, **CERT_MANAGER})
    args = args_of(rendering)
    assert "--entryPoints.mqtt.address=:8883" in args
    routes = tcp_routes(rendering)
    assert routes["routers"] == {
        "ingestion-mqtt": {
            "entryPoints": ["mqtt"],
            "rule": "HostSNI(`mqtt.data.alderbrook.example`)",
            "service": "ingestion-mqtt",
            "tls": {},
        }
    }
    assert routes["services"]["ingestion-mqtt"] == {
        "loadBalancer": {"servers": [{"address": "mosquitto.alderbrook-ingestion.svc.cluster.local:1883"}]}
    }


def test_mqtt_is_plain_tcp_behind_an_external_tls_terminator(render):
    [router] = tcp_routes(render())["routers"].values()
    assert router["rule"] == "HostSNI(`*`)" and "tls" not in router


def test_routers_without_entry_points_stay_off_the_mqtt_entry_point(render):
    args = args_of(render())
    assert {"--entryPoints.web.asDefault=true", "--entryPoints.websecure.asDefault=true"} <= set(args)


def test_tcp_routes_are_mounted_and_a_change_rolls_the_pods(render):
    rendering = render()
    pod = traefik_pod(rendering)
    assert {"name": "tcp-routes", "configMap": {"name": "traefik-tcp", "defaultMode": 0o440}} in pod["volumes"]
    [container] = pod["containers"]
    assert {"name": "tcp-routes", "mountPath": "/etc/traefik/dynamic", "readOnly": True} in container["volumeMounts"]
    annotation = find(rendering, "Deployment", "traefik", NS)["spec"]["template"]["metadata"]["annotations"]
    other = find(render({"tls": {"mode": "secret", "secret_name": "alderbrook-tls"}}), "Deployment", "traefik", NS)[
        "spec"
    ]["template"]["metadata"]
    assert annotation["mims.io/tcp-config-sha256"] != other["annotations"]["mims.io/tcp-config-sha256"]


def test_no_mqtt_entry_point_on_plain_http_trials_or_without_ingestion(render):
    for patch in ({"tls": {"mode": "none"}}, {"components": {"ingestion": {"enabled": False}}}):
        rendering = render(patch)
        assert not [a for a in args_of(rendering) if "mqtt" in a or a.startswith("--providers.file")]
        assert not [o for o in rendering.objects() if o["metadata"]["name"] == "traefik-tcp"]
        service = find(rendering, "Service", "traefik-lb", NS)
        assert [p["port"] for p in service["spec"]["ports"]] == [80, 443]
