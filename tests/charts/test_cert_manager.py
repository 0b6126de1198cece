"""The `cert-manager` add-on: cert-manager v1.21.2 translated from its Helm chart (controller, webhook,
CA injector, upstream CRDs and RBAC), the city's ACME ClusterIssuer with `tls.mode: cert-manager`, and
every custom resource of a rendering checked against the schema of its CRD."""

from __future__ import annotations

import copy
import hashlib

import jsonschema
import pytest
import yaml

from mims.blueprint import load_blueprint
from tests.conftest import REPO, find, pod_specs

NS = "alderbrook-cert-manager"
GATEWAY_NS = "alderbrook-gateway"
TRAEFIK_NS = "alderbrook-ingress-controller"
DOMAIN = "data.alderbrook.example"
CRD_DIR = REPO / "charts" / "cert-manager" / "files" / "crds"
WORKLOADS = ("cert-manager", "cert-manager-webhook", "cert-manager-cainjector")

# deploy/crds/*.yaml of github.com/cert-manager/cert-manager@v1.21.2, byte for byte.
UPSTREAM_CRDS = {
    "acme.cert-manager.io_challenges.yaml": "dff7542a2ee6581e3963a076410212ad3207201b70df8a328aa50826d569161c",
    "acme.cert-manager.io_orders.yaml": "b1e9c938b9724482cc0612aac949b40e062001fc9732234c591f24cb9ffc5ca7",
    "cert-manager.io_certificaterequests.yaml": "74cf3801ab146a1745498de5f3b619cde6f2dc89ae03755084be08129ce726c3",
    "cert-manager.io_certificates.yaml": "7ad91029c00ec959d54215b19d3b1a9b7e0247eaa60f987151c2b70d8661f8af",
    "cert-manager.io_clusterissuers.yaml": "30008001b78aafb8e110af61359561104b5fafc3a4dc6ac0013245d0ee3fe4ca",
    "cert-manager.io_issuers.yaml": "05e37efb02777e0362d24269fa103c2fc11419f9c85e31854ef873e5d9e5c5cc",
}

# Every Role and ClusterRole of the upstream Helm chart v1.21.2 rendered with default values (release
# `cert-manager`, no PSP, no startupapicheck), as (apiGroups, resources, verbs, resourceNames); "core"
# is the core group "". mims prefixes cluster-scoped names with `<city>-`.
UPSTREAM_RBAC = {
    ("Role", "cert-manager:leaderelection"): [
        ("coordination.k8s.io", "leases", "get update patch", "cert-manager-controller"),
        ("coordination.k8s.io", "leases", "create", ""),
    ],
    ("ClusterRole", "cert-manager-controller-issuers"): [
        ("cert-manager.io", "issuers issuers/status", "update patch", ""),
        ("cert-manager.io", "issuers", "get list watch", ""),
        ("core", "secrets", "get list watch create update delete", ""),
        ("core", "events", "create patch", ""),
    ],
    ("ClusterRole", "cert-manager-controller-clusterissuers"): [
        ("cert-manager.io", "clusterissuers clusterissuers/status", "update patch", ""),
        ("cert-manager.io", "clusterissuers", "get list watch", ""),
        ("core", "secrets", "get list watch create update delete", ""),
        ("core", "events", "create patch", ""),
    ],
    ("ClusterRole", "cert-manager-controller-certificates"): [
        (
            "cert-manager.io",
            "certificates certificates/status certificaterequests certificaterequests/status",
            "update patch",
            "",
        ),
        ("cert-manager.io", "certificates certificaterequests clusterissuers issuers", "get list watch", ""),
        ("cert-manager.io", "certificates/finalizers certificaterequests/finalizers", "update", ""),
        ("acme.cert-manager.io", "orders", "create delete get list watch", ""),
        ("core", "secrets", "get list watch create update delete patch", ""),
        ("core", "events", "create patch", ""),
    ],
    ("ClusterRole", "cert-manager-controller-orders"): [
        ("acme.cert-manager.io", "orders orders/status", "update patch", ""),
        ("acme.cert-manager.io", "orders challenges", "get list watch", ""),
        ("cert-manager.io", "clusterissuers issuers", "get list watch", ""),
        ("acme.cert-manager.io", "challenges", "create delete", ""),
        ("acme.cert-manager.io", "orders/finalizers", "update", ""),
        ("cert-manager.io", "clusterissuers/finalizers issuers/finalizers", "update", ""),
        ("core", "secrets", "get list watch", ""),
        ("core", "events", "create patch", ""),
    ],
    ("ClusterRole", "cert-manager-controller-challenges"): [
        ("acme.cert-manager.io", "challenges challenges/status", "update patch", ""),
        ("acme.cert-manager.io", "challenges", "get list watch", ""),
        ("cert-manager.io", "issuers clusterissuers", "get list watch", ""),
        ("core", "secrets", "get list watch", ""),
        ("core", "events", "create patch", ""),
        ("core", "pods services", "get list watch create delete", ""),
        ("networking.k8s.io", "ingresses", "get list watch create delete update", ""),
        ("gateway.networking.k8s.io", "httproutes", "get list watch create delete update", ""),
        ("route.openshift.io", "routes/custom-host", "create", ""),
        ("acme.cert-manager.io", "challenges/finalizers", "update", ""),
    ],
    ("ClusterRole", "cert-manager-controller-ingress-shim"): [
        ("cert-manager.io", "certificates certificaterequests", "create update delete", ""),
        ("cert-manager.io", "certificates certificaterequests issuers clusterissuers", "get list watch", ""),
        ("networking.k8s.io", "ingresses", "get list watch", ""),
        ("networking.k8s.io", "ingresses/finalizers", "update", ""),
        ("gateway.networking.k8s.io", "gateways httproutes listenersets", "get list watch", ""),
        (
            "gateway.networking.k8s.io",
            "gateways/finalizers httproutes/finalizers listenersets/finalizers",
            "update",
            "",
        ),
        ("core", "events", "create patch", ""),
    ],
    ("ClusterRole", "cert-manager-cluster-view"): [
        ("cert-manager.io", "clusterissuers", "get list watch", ""),
    ],
    ("ClusterRole", "cert-manager-view"): [
        ("cert-manager.io", "certificates certificaterequests issuers", "get list watch", ""),
        ("acme.cert-manager.io", "challenges orders", "get list watch", ""),
    ],
    ("ClusterRole", "cert-manager-edit"): [
        (
            "cert-manager.io",
            "certificates certificaterequests issuers",
            "create delete deletecollection patch update",
            "",
        ),
        ("cert-manager.io", "certificates/status", "update", ""),
        ("acme.cert-manager.io", "challenges", "delete deletecollection patch update", ""),
        ("acme.cert-manager.io", "orders", "delete deletecollection", ""),
    ],
    ("ClusterRole", "cert-manager-controller-approve:cert-manager-io"): [
        ("cert-manager.io", "signers", "approve", "issuers.cert-manager.io/* clusterissuers.cert-manager.io/*"),
    ],
    ("ClusterRole", "cert-manager-controller-certificatesigningrequests"): [
        ("certificates.k8s.io", "certificatesigningrequests", "get list watch update", ""),
        ("certificates.k8s.io", "certificatesigningrequests/status", "update patch", ""),
        ("certificates.k8s.io", "signers", "sign", "issuers.cert-manager.io/* clusterissuers.cert-manager.io/*"),
        ("authorization.k8s.io", "subjectaccessreviews", "create", ""),
    ],
    ("Role", "cert-manager-webhook:dynamic-serving"): [
        ("core", "secrets", "get list watch update", "cert-manager-webhook-ca"),
        ("core", "secrets", "create", ""),
    ],
    ("ClusterRole", "cert-manager-webhook:subjectaccessreviews"): [
        ("authorization.k8s.io", "subjectaccessreviews", "create", ""),
    ],
    ("ClusterRole", "cert-manager-cainjector"): [
        ("cert-manager.io", "certificates", "get list watch", ""),
        ("core", "secrets", "get list watch", ""),
        ("core", "events", "get create update patch", ""),
        (
            "admissionregistration.k8s.io",
            "validatingwebhookconfigurations mutatingwebhookconfigurations",
            "get list watch update patch",
            "",
        ),
        ("apiregistration.k8s.io", "apiservices", "get list watch update patch", ""),
        ("apiextensions.k8s.io", "customresourcedefinitions", "get list watch update patch", ""),
    ],
    ("Role", "cert-manager-cainjector:leaderelection"): [
        (
            "coordination.k8s.io",
            "leases",
            "get update patch",
            "cert-manager-cainjector-leader-election cert-manager-cainjector-leader-election-core",
        ),
        ("coordination.k8s.io", "leases", "create", ""),
    ],
}
# Upstream's bindings: every role above goes to one service account; view, edit and cluster-view are
# bound to nobody (they aggregate into the cluster's built-in roles).
UPSTREAM_AGGREGATED = {
    "cert-manager-cluster-view": {"cluster-reader"},
    "cert-manager-view": {"view", "edit", "admin", "cluster-reader"},
    "cert-manager-edit": {"edit", "admin"},
}


def account_of(role: str) -> str:
    for workload in ("cert-manager-webhook", "cert-manager-cainjector"):
        if role.startswith(workload):
            return workload
    return "cert-manager"


def with_cert_manager(tls_mode: str = "cert-manager", **options) -> dict:
    return {
        "tls": {"mode": tls_mode},
        "addons": {
            "ingress_controller": {"enabled": True},
            "cert_manager": {"enabled": True, "options": {"acme_email": "ops@alderbrook.example", **options}},
        },
    }


@pytest.fixture
def render(write_blueprint, renderer):
    """The small-city example plus a patch (default: the add-on on with tls.mode cert-manager)."""

    def run(patch: dict | None = None):
        return renderer.render(load_blueprint(write_blueprint(with_cert_manager() if patch is None else patch)))

    return run


def own(rendering) -> list[dict]:
    """The add-on's objects (namespaced and cluster-scoped)."""
    return [o for o in rendering.objects() if o["metadata"]["labels"].get("mims.io/component") == "cert-manager"]


def pod(rendering, workload: str) -> dict:
    return find(rendering, "Deployment", workload, NS)["spec"]["template"]["spec"]


def skips(obj: dict) -> dict[str, str]:
    return dict(
        v.split("=", 1) for k, v in obj["metadata"].get("annotations", {}).items() if k.startswith("checkov.io/skip")
    )


# --- custom resources against the schemas of their CRDs -------------------------------------------


def _group_version(api_version: str) -> tuple[str, str]:
    group, _, version = api_version.rpartition("/")
    return group, version


def _built_in(group: str) -> bool:
    """Kubernetes' own API groups: the core group, dotless ones (apps, batch, policy...) and *.k8s.io."""
    return "." not in group or group.endswith(".k8s.io")


def _strict(schema):
    """The API server's strict field validation: a field a structural schema does not name is an
    error (jsonschema would let it through), unless the schema preserves unknown fields."""
    if isinstance(schema, list):
        return [_strict(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {
        k: _strict(v) if k in ("items", "additionalProperties", "allOf", "anyOf", "oneOf", "not") else v
        for k, v in schema.items()
    }
    if "properties" in schema:
        out["properties"] = {name: _strict(sub) for name, sub in schema["properties"].items()}
        if "additionalProperties" not in schema and not schema.get("x-kubernetes-preserve-unknown-fields"):
            out["additionalProperties"] = False
    return out


def crd_schemas(rendering) -> dict[tuple[str, str, str], dict]:
    """(group, version, kind) -> strict openAPIV3Schema, for every served version of every rendered CRD."""
    schemas = {}
    for crd in (o for o in rendering.objects() if o["kind"] == "CustomResourceDefinition"):
        spec = crd["spec"]
        for version in spec["versions"]:
            if version.get("served"):
                key = (spec["group"], version["name"], spec["names"]["kind"])
                schemas[key] = _strict(version["schema"]["openAPIV3Schema"])
    return schemas


def custom_resource_problems(rendering) -> tuple[int, list[str]]:
    """(custom resources checked, problems): each against its CRD's schema; one without a CRD in the
    rendering is a problem too (kubernetes-validate only warns about kinds it does not know)."""
    schemas = crd_schemas(rendering)
    checked, problems = 0, []
    for obj in rendering.objects():
        group, version = _group_version(obj["apiVersion"])
        if _built_in(group):
            continue
        name = f"{obj['kind']} {obj['metadata']['name']}"
        schema = schemas.get((group, version, obj["kind"]))
        if schema is None:
            problems.append(f"{name}: no CRD in the rendering serves {obj['apiVersion']} {obj['kind']}")
            continue
        checked += 1
        for error in jsonschema.Draft4Validator(schema).iter_errors(obj):
            where = "/".join(str(p) for p in error.absolute_path)
            problems.append(f"{name}: {where}: {error.message}")
    return checked, problems


def test_every_custom_resource_of_every_example_matches_its_crd(rendered_examples):
    total = 0
    for name, rendering in rendered_examples.items():
        checked, problems = custom_resource_problems(rendering)
        assert problems == [], name
        total += checked
    assert total >= 1  # the standard example's ClusterIssuer


def test_crd_check_catches_unknown_fields_missing_fields_and_kinds_without_a_crd(render):
    rendering = render()
    issuer = find(rendering, "ClusterIssuer", "alderbrook-acme")
    solver = issuer["spec"]["acme"]["solvers"][0]["http01"]["ingress"]
    solver["ingressClassname"] = solver.pop("ingressClassName")  # a typo the API server would refuse
    del issuer["spec"]["acme"]["server"]
    stray = {"apiVersion": "example.org/v1", "kind": "Widget", "metadata": {"name": "w"}}
    rendering.layers[0].objects.append(stray)
    _, problems = custom_resource_problems(rendering)
    assert any("ingressClassname" in p and "not allowed" in p for p in problems)
    assert any("'server' is a required property" in p for p in problems)
    assert any(p.startswith("Widget w: no CRD") for p in problems)


# --- CRDs -----------------------------------------------------------------------------------------


def test_crd_files_are_upstream_v1_21_2_unchanged():
    files = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in CRD_DIR.glob("*.yaml")}
    assert files == UPSTREAM_CRDS


def test_every_crd_is_rendered_as_in_its_file(render):
    rendered = {o["metadata"]["name"]: o for o in render().objects() if o["kind"] == "CustomResourceDefinition"}
    expected = {}
    for path in CRD_DIR.glob("*.yaml"):
        crd = yaml.safe_load(path.read_text())
        expected[crd["metadata"]["name"]] = crd
    assert (
        set(rendered)
        == set(expected)
        == {
            "certificates.cert-manager.io",
            "certificaterequests.cert-manager.io",
            "issuers.cert-manager.io",
            "clusterissuers.cert-manager.io",
            "orders.acme.cert-manager.io",
            "challenges.acme.cert-manager.io",
        }
    )
    for name, crd in rendered.items():
        crd = copy.deepcopy(crd)
        labels = crd["metadata"].pop("labels")
        assert labels["mims.io/component"] == "cert-manager"  # mims's labels are the only addition
        assert crd == expected[name], name


def test_rendered_only_when_the_blueprint_asks(render):
    rendering = render({})
    assert own(rendering) == []
    assert not [o for o in rendering.objects() if o["kind"] == "CustomResourceDefinition"]
    assert {o["kind"] for o in own(render(with_cert_manager("external")))} >= {"CustomResourceDefinition", "Deployment"}


# --- the ClusterIssuer and the gateway's Ingresses -------------------------------------------------


def test_cluster_issuer_only_in_cert_manager_mode(render):
    assert not [o for o in render(with_cert_manager("external")).objects() if o["kind"] == "ClusterIssuer"]
    staging = "https://acme-staging-v02.api.letsencrypt.org/directory"
    issuer = find(render(with_cert_manager(acme_server=staging)), "ClusterIssuer", "alderbrook-acme")
    assert issuer["spec"]["acme"] == {
        "server": staging,
        "email": "ops@alderbrook.example",
        "privateKeySecretRef": {"name": "alderbrook-acme-account-key"},
        "solvers": [{"http01": {"ingress": {"ingressClassName": "traefik", "serviceType": "ClusterIP"}}}],
    }


def test_cluster_issuer_defaults_to_lets_encrypt(render):
    issuer = find(render(), "ClusterIssuer", "alderbrook-acme")
    assert issuer["spec"]["acme"]["server"] == "https://acme-v02.api.letsencrypt.org/directory"


def test_gateway_ingresses_ask_the_city_issuer_for_one_certificate_per_host(render):
    rendering = render()
    find(rendering, "ClusterIssuer", "alderbrook-acme")
    ingresses = [o for o in rendering.objects() if o["kind"] == "Ingress"]
    assert len(ingresses) >= 6
    for ingress in ingresses:
        assert ingress["metadata"]["namespace"] == GATEWAY_NS
        annotations = ingress["metadata"]["annotations"]
        assert annotations["cert-manager.io/cluster-issuer"] == "alderbrook-acme"
        assert annotations["traefik.ingress.kubernetes.io/router.entrypoints"] == "websecure"
        assert annotations["traefik.ingress.kubernetes.io/router.tls"] == "true"
        [host] = [r["host"] for r in ingress["spec"]["rules"]]
        assert ingress["spec"]["tls"] == [{"hosts": [host], "secretName": f"alderbrook-tls-{host.split('.')[0]}"}]
    secrets = [i["spec"]["tls"][0]["secretName"] for i in ingresses]
    assert len(set(secrets)) == len(secrets)


def test_other_tls_modes_do_not_ask_cert_manager(render):
    for rendering in (
        render(with_cert_manager("external")),
        render({"addons": {"ingress_controller": {"enabled": True}}}),
    ):
        for ingress in (o for o in rendering.objects() if o["kind"] == "Ingress"):
            assert "cert-manager.io/cluster-issuer" not in ingress["metadata"]["annotations"]


# --- the three workloads ---------------------------------------------------------------------------


def test_images_are_v1_21_2_and_the_solver_image_matches(render):
    rendering = render()
    for workload, image in (
        ("cert-manager", "controller"),
        ("cert-manager-webhook", "webhook"),
        ("cert-manager-cainjector", "cainjector"),
    ):
        [container] = pod(rendering, workload)["containers"]
        assert container["image"] == f"quay.io/jetstack/cert-manager-{image}:v1.21.2"
    [controller] = pod(rendering, "cert-manager")["containers"]
    assert "--acme-http01-solver-image=quay.io/jetstack/cert-manager-acmesolver:v1.21.2" in controller["args"]


def test_cluster_resources_and_leader_election_stay_in_the_addon_namespace(render):
    rendering = render()
    [controller] = pod(rendering, "cert-manager")["containers"]
    assert f"--cluster-resource-namespace={NS}" in controller["args"]
    assert f"--leader-election-namespace={NS}" in controller["args"]
    [cainjector] = pod(rendering, "cert-manager-cainjector")["containers"]
    assert f"--leader-election-namespace={NS}" in cainjector["args"]
    assert not [o for o in rendering.objects() if o["metadata"].get("namespace") == "kube-system"]
    for role in (o for o in own(rendering) if o["kind"] in ("Role", "RoleBinding")):
        assert role["metadata"]["namespace"] == NS


def test_concurrent_challenges_fit_the_gateway_quota(render):
    """Each challenge runs a solver pod (10m/64Mi) in the gateway namespace, whose quota leaves room
    for two extra pods (a rolling update's surge and one operator pod)."""
    rendering = render()
    [controller] = pod(rendering, "cert-manager")["containers"]
    assert "--max-concurrent-challenges=2" in controller["args"]
    quota = find(rendering, "ResourceQuota", "component-budget", GATEWAY_NS)["spec"]["hard"]
    steady = sum(
        d["spec"]["replicas"]
        for d in rendering.objects()
        if d["kind"] == "Deployment" and d["metadata"]["namespace"] == GATEWAY_NS
    )
    assert int(quota["pods"]) - steady >= 2


def test_pods_keep_their_api_token_and_say_why(render):
    rendering = render()
    for workload in WORKLOADS:
        deployment = find(rendering, "Deployment", workload, NS)
        spec = deployment["spec"]["template"]["spec"]
        assert spec["automountServiceAccountToken"] is True
        assert spec["serviceAccountName"] == workload
        assert find(rendering, "ServiceAccount", workload, NS)["automountServiceAccountToken"] is False
        assert "Kubernetes API" in skips(deployment)["CKV_K8S_38"]


def test_pods_run_as_10900_with_a_read_only_root(render):
    rendering = render()
    for workload in WORKLOADS:
        spec = pod(rendering, workload)
        assert spec["securityContext"]["runAsUser"] == 10900
        assert spec["securityContext"]["runAsNonRoot"] is True
        [container] = spec["containers"]
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert "volumes" not in spec


def test_probes_use_each_program_s_own_endpoints(render):
    rendering = render()
    [controller] = pod(rendering, "cert-manager")["containers"]
    assert controller["livenessProbe"]["httpGet"]["path"] == "/livez"
    assert controller["livenessProbe"]["httpGet"]["port"] == "http-healthz"
    [webhook] = pod(rendering, "cert-manager-webhook")["containers"]
    assert (webhook["livenessProbe"]["httpGet"]["path"], webhook["readinessProbe"]["httpGet"]["path"]) == (
        "/livez",
        "/healthz",
    )
    [cainjector] = pod(rendering, "cert-manager-cainjector")["containers"]
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert cainjector[probe]["httpGet"] == {"path": "/metrics", "port": "http-metrics", "scheme": "HTTP"}


# --- the webhook -------------------------------------------------------------------------------------


def test_webhook_configurations_point_at_the_webhook_service(render):
    rendering = render()
    service = find(rendering, "Service", "cert-manager-webhook", NS)
    [https] = [p for p in service["spec"]["ports"] if p["name"] == "https"]
    assert https["port"] == 443
    [container] = pod(rendering, "cert-manager-webhook")["containers"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports[https["targetPort"]] == 10250 and "--secure-port=10250" in container["args"]
    dns_names = {a.split("=", 1)[1] for a in container["args"] if a.startswith("--dynamic-serving-dns-names=")}
    assert f"cert-manager-webhook.{NS}.svc" in dns_names
    assert "--dynamic-serving-ca-secret-name=cert-manager-webhook-ca" in container["args"]
    for kind, path in (("ValidatingWebhookConfiguration", "/validate"), ("MutatingWebhookConfiguration", "/mutate")):
        config = find(rendering, kind, "alderbrook-cert-manager-webhook")
        assert (
            config["metadata"]["annotations"]["cert-manager.io/inject-ca-from-secret"]
            == f"{NS}/cert-manager-webhook-ca"
        )
        [hook] = config["webhooks"]
        assert hook["clientConfig"] == {"service": {"name": "cert-manager-webhook", "namespace": NS, "path": path}}
        assert hook["failurePolicy"] == "Fail" and hook["sideEffects"] == "None"
        assert {g for rule in hook["rules"] for g in rule["apiGroups"]} <= {"cert-manager.io", "acme.cert-manager.io"}


def test_cluster_scoped_objects_carry_no_namespace(render):
    rendering = render()
    for kind in (
        "ClusterIssuer",
        "ValidatingWebhookConfiguration",
        "MutatingWebhookConfiguration",
        "ClusterRole",
        "ClusterRoleBinding",
        "CustomResourceDefinition",
    ):
        for obj in (o for o in own(rendering) if o["kind"] == kind):
            assert "namespace" not in obj["metadata"], (kind, obj["metadata"]["name"])


# --- RBAC ---------------------------------------------------------------------------------------------


def grants(rules: list) -> set[tuple[str, str, str, str]]:
    """Every (group, resource, verb, resourceName or "*") a list of rules allows."""
    out = set()
    for rule in rules:
        if isinstance(rule, tuple):
            groups, resources, verbs, names = (part.split() for part in rule)
            groups = ["" if g == "core" else g for g in groups]
        else:
            groups, resources, verbs, names = (
                rule["apiGroups"],
                rule["resources"],
                rule["verbs"],
                rule.get("resourceNames", []),
            )
        for g in groups:
            for r in resources:
                for v in verbs:
                    for n in names or ["*"]:
                        out.add((g, r, v, n))
    return out


def test_rbac_is_upstream_s_and_not_wider(render):
    rendering = render()
    roles = {
        (o["kind"], o["metadata"]["name"].removeprefix("alderbrook-")): o
        for o in own(rendering)
        if o["kind"] in ("Role", "ClusterRole")
    }
    assert set(roles) == set(UPSTREAM_RBAC)
    for key, role in roles.items():
        granted, upstream = grants(role["rules"]), grants(UPSTREAM_RBAC[key])
        assert not [g for g in granted if "*" in g[:3]], key  # no wildcard group, resource or verb
        assert granted <= upstream, (key, granted - upstream)
        assert granted == upstream, (key, upstream - granted)  # narrowing is fine, but say so here


def test_each_role_is_bound_to_its_own_account_only(render):
    rendering = render()
    bindings = {
        (o["kind"], o["metadata"]["name"].removeprefix("alderbrook-")): o
        for o in own(rendering)
        if o["kind"] in ("RoleBinding", "ClusterRoleBinding")
    }
    expected = {(kind + "Binding", name) for kind, name in UPSTREAM_RBAC if name not in UPSTREAM_AGGREGATED}
    assert set(bindings) == expected
    for (_kind, name), binding in bindings.items():
        assert binding["roleRef"]["name"].removeprefix("alderbrook-") == name
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": account_of(name), "namespace": NS}]


def test_view_and_edit_roles_aggregate_like_upstream(render):
    rendering = render()
    for name, targets in UPSTREAM_AGGREGATED.items():
        labels = find(rendering, "ClusterRole", f"alderbrook-{name}")["metadata"]["labels"]
        aggregated = {
            k.removeprefix("rbac.authorization.k8s.io/aggregate-to-")
            for k, v in labels.items()
            if k.startswith("rbac.authorization.k8s.io/aggregate-to-") and v == "true"
        }
        assert aggregated == targets, name


def test_only_the_ca_injector_role_skips_the_webhook_check(render):
    rendering = render()
    skipped = {
        o["metadata"]["name"]: skips(o) for o in own(rendering) if o["kind"] in ("Role", "ClusterRole") and skips(o)
    }
    assert list(skipped) == ["alderbrook-cert-manager-cainjector"]
    assert set(skipped["alderbrook-cert-manager-cainjector"]) == {"CKV_K8S_155"}


# --- network, metrics, sizes -----------------------------------------------------------------------


def test_network_webhook_open_to_the_api_server_and_api_egress_for_all(render):
    rendering = render()
    ingress = find(rendering, "NetworkPolicy", "allow-ingress-cert-manager-webhook", NS)["spec"]["ingress"]
    assert [r["ports"] for r in ingress if "from" not in r] == [[{"protocol": "TCP", "port": 10250}]]
    for workload in WORKLOADS:
        egress = find(rendering, "NetworkPolicy", f"allow-egress-{workload}", NS)["spec"]["egress"]
        [api] = [r for r in egress if "ipBlock" in r["to"][0]]
        assert api["to"][0] == {"ipBlock": {"cidr": "0.0.0.0/0"}}
        ports = {p["port"] for p in api["ports"]}
        assert ports == ({80, 443, 6443} if workload == "cert-manager" else {443, 6443}), workload


def pod_egress(rendering, workload: str, namespace: str = NS) -> list[dict]:
    egress = find(rendering, "NetworkPolicy", f"allow-egress-{workload}", namespace)["spec"]["egress"]
    return [r for r in egress if "podSelector" in r["to"][0]]


def test_http01_self_check_reaches_traefik_s_entry_points_and_nothing_wider(rendered_examples):
    """The self-check of http://<host>/... (redirected to https) lands on Traefik's pods on 8000/8443:
    kube-proxy or the CNI rewrites the load balancer's address before NetworkPolicy sees it."""
    rendering = rendered_examples["standard-city"]
    assert pod_egress(rendering, "cert-manager", "riverton-cert-manager") == [
        {
            "ports": [{"protocol": "TCP", "port": 8000}, {"protocol": "TCP", "port": 8443}],
            "to": [
                {
                    "podSelector": {"matchLabels": {"app.kubernetes.io/name": "traefik"}},
                    "namespaceSelector": {
                        "matchLabels": {"kubernetes.io/metadata.name": "riverton-ingress-controller"}
                    },
                }
            ],
        }
    ]
    for workload in ("cert-manager-webhook", "cert-manager-cainjector"):
        assert pod_egress(rendering, workload, "riverton-cert-manager") == []


def test_no_self_check_flow_without_the_city_issuer(render):
    assert pod_egress(render(with_cert_manager("external")), "cert-manager") == []


def test_prometheus_scrapes_all_three_on_9402(render):
    rendering = render()
    for workload in WORKLOADS:
        service = find(rendering, "Service", workload, NS)
        assert 9402 in {p["port"] for p in service["spec"]["ports"]}
        ingress = find(rendering, "NetworkPolicy", f"allow-ingress-{workload}", NS)["spec"]["ingress"]
        [scrape] = [r for r in ingress if "from" in r]
        assert scrape["from"][0]["podSelector"]["matchLabels"] == {"app.kubernetes.io/name": "prometheus"}
        assert scrape["ports"] == [{"protocol": "TCP", "port": 9402}]


def test_minimal_profile_sizes(render):
    rendering = render()
    sizes = {w: pod(rendering, w)["containers"][0]["resources"] for w in WORKLOADS}
    assert sizes == {
        "cert-manager": {"requests": {"cpu": "25m", "memory": "64Mi"}, "limits": {"cpu": "200m", "memory": "256Mi"}},
        "cert-manager-webhook": {
            "requests": {"cpu": "10m", "memory": "32Mi"},
            "limits": {"cpu": "100m", "memory": "128Mi"},
        },
        "cert-manager-cainjector": {
            "requests": {"cpu": "10m", "memory": "64Mi"},
            "limits": {"cpu": "100m", "memory": "256Mi"},
        },
    }
    assert not [o for o in own(rendering) if o["kind"] == "PodDisruptionBudget"]


def test_standard_profile_runs_two_controllers_and_two_webhooks_with_budgets(render):
    rendering = render({**with_cert_manager(), "budget": {"profile": "standard"}})
    replicas = {w: find(rendering, "Deployment", w, NS)["spec"]["replicas"] for w in WORKLOADS}
    assert replicas == {"cert-manager": 2, "cert-manager-webhook": 2, "cert-manager-cainjector": 1}
    budgets = {o["metadata"]["name"] for o in own(rendering) if o["kind"] == "PodDisruptionBudget"}
    assert budgets == {"cert-manager", "cert-manager-webhook"}
    for workload in ("cert-manager", "cert-manager-webhook"):
        assert pod(rendering, workload)["topologySpreadConstraints"][0]["topologyKey"] == "kubernetes.io/hostname"


def test_pods_are_in_the_addon_namespace(render):
    rendering = render()
    mine = [o for o, _ in pod_specs(rendering) if o["metadata"]["labels"]["mims.io/component"] == "cert-manager"]
    assert sorted(o["metadata"]["name"] for o in mine) == sorted(WORKLOADS)
    assert {o["metadata"]["namespace"] for o in mine} == {NS}


def test_gateway_quota_makes_room_for_two_solver_pods(renderer, write_blueprint):
    def hard(tls_mode: str) -> dict:
        patch = {
            "tls": {"mode": tls_mode},
            "addons": {
                "ingress_controller": {"enabled": True},
                "cert_manager": {"enabled": True, "options": {"acme_email": "it@alderbrook.example"}},
            },
        }
        rendering = renderer.render(load_blueprint(write_blueprint(patch)))
        return find(rendering, "ResourceQuota", "component-budget", "alderbrook-gateway")["spec"]["hard"]

    with_solvers, without = hard("cert-manager"), hard("external")
    assert int(with_solvers["pods"]) == int(without["pods"]) + 2
    assert int(with_solvers["requests.cpu"].rstrip("m")) == int(without["requests.cpu"].rstrip("m")) + 20
    assert int(with_solvers["requests.memory"].rstrip("Mi")) == int(without["requests.memory"].rstrip("Mi")) + 128
