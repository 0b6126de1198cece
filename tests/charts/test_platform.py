"""Rules every example blueprint's rendering must keep: Pod Security `restricted`, resources, probes,
pinned images, no secret values, and the minimal-50k footprint."""

from __future__ import annotations

import pytest

from mims.charts.quantity import bytes_of, cpu_millicores
from mims.secrets import generators
from tests.conftest import EXAMPLES, pod_specs

ALLOWED_VOLUMES = {
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
}
SAFE_SYSCTLS = {
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
}


def restricted_violations(pod: dict) -> list[str]:
    """The Pod Security Standard `restricted` (which includes `baseline`), rule by rule."""
    found = []
    for flag in ("hostNetwork", "hostPID", "hostIPC"):
        if pod.get(flag):
            found.append(f"{flag} is set")
    pod_ctx = pod.get("securityContext") or {}
    for sysctl in pod_ctx.get("sysctls") or []:
        if sysctl["name"] not in SAFE_SYSCTLS:
            found.append(f"unsafe sysctl {sysctl['name']}")
    for volume in pod.get("volumes") or []:
        kinds = set(volume) - {"name"}
        if not kinds <= ALLOWED_VOLUMES:
            found.append(f"volume {volume['name']} of type {sorted(kinds - ALLOWED_VOLUMES)}")
    if pod_ctx.get("runAsUser") == 0:
        found.append("pod runAsUser 0")
    containers = (
        (pod.get("containers") or []) + (pod.get("initContainers") or []) + (pod.get("ephemeralContainers") or [])
    )
    for c in containers:
        ctx = c.get("securityContext") or {}
        name = c["name"]
        if ctx.get("privileged"):
            found.append(f"{name}: privileged")
        if ctx.get("allowPrivilegeEscalation") is not False:
            found.append(f"{name}: allowPrivilegeEscalation not false")
        if not (
            ctx.get("runAsNonRoot") is True
            or (pod_ctx.get("runAsNonRoot") is True and ctx.get("runAsNonRoot") is not False)
        ):
            found.append(f"{name}: runAsNonRoot not true")
        if ctx.get("runAsUser") == 0:
            found.append(f"{name}: runAsUser 0")
        seccomp = (ctx.get("seccompProfile") or pod_ctx.get("seccompProfile") or {}).get("type")
        if seccomp not in ("RuntimeDefault", "Localhost"):
            found.append(f"{name}: seccompProfile {seccomp}")
        caps = ctx.get("capabilities") or {}
        if "ALL" not in (caps.get("drop") or []):
            found.append(f"{name}: capabilities.drop lacks ALL")
        if set(caps.get("add") or []) - {"NET_BIND_SERVICE"}:
            found.append(f"{name}: adds capabilities {caps['add']}")
        for port in c.get("ports") or []:
            if port.get("hostPort"):
                found.append(f"{name}: hostPort")
        if ctx.get("procMount", "Default") != "Default":
            found.append(f"{name}: procMount")
    return found


def test_restricted_checker_catches_a_violation():
    pod = {
        "containers": [{"name": "c", "securityContext": {"runAsNonRoot": True}}],
        "volumes": [{"name": "h", "hostPath": {"path": "/"}}],
    }
    found = restricted_violations(pod)
    assert "c: allowPrivilegeEscalation not false" in found
    assert "c: capabilities.drop lacks ALL" in found
    assert "c: seccompProfile None" in found
    assert "volume h of type ['hostPath']" in found


@pytest.fixture(params=[p.stem for p in EXAMPLES])
def rendering(request, rendered_examples):
    return rendered_examples[request.param]


def test_every_pod_passes_pod_security_restricted(rendering):
    problems = {obj["metadata"]["name"]: restricted_violations(pod) for obj, pod in pod_specs(rendering)}
    assert {k: v for k, v in problems.items() if v} == {}


def test_every_container_has_requests_limits_and_numeric_user(rendering):
    for obj, pod in pod_specs(rendering):
        assert isinstance((pod.get("securityContext") or {}).get("runAsUser"), int), obj["metadata"]["name"]
        for c in (pod.get("containers") or []) + (pod.get("initContainers") or []):
            res = c.get("resources") or {}
            for part in ("requests", "limits"):
                assert set(res.get(part) or {}) >= {"cpu", "memory"}, (obj["metadata"]["name"], c["name"], part)


def test_long_running_containers_have_probes(rendering):
    for obj, pod in pod_specs(rendering):
        if obj["kind"] == "Job":
            continue
        for c in pod["containers"]:
            assert "livenessProbe" in c and "readinessProbe" in c, (obj["metadata"]["name"], c["name"])


def test_images_are_pinned_versions(rendering):
    for _obj, pod in pod_specs(rendering):
        for c in (pod.get("containers") or []) + (pod.get("initContainers") or []):
            image = c["image"]
            tag = image.split("@")[0].rsplit(":", 1)
            assert len(tag) == 2 and "/" not in tag[1] and tag[1] not in ("latest", "stable"), image


def test_no_secret_value_is_rendered(rendering):
    for obj in rendering.objects():
        if obj["kind"] == "Secret":
            assert "data" not in obj and "stringData" not in obj, obj["metadata"]["name"]
            assert generators(obj), f"Secret {obj['metadata']['name']} declares nothing to generate"
    for obj, pod in pod_specs(rendering):
        for c in (pod.get("containers") or []) + (pod.get("initContainers") or []):
            for env in c.get("env") or []:
                assert "secretKeyRef" not in (env.get("valueFrom") or {}), (obj["metadata"]["name"], env["name"])
            assert not [e for e in c.get("envFrom") or [] if "secretRef" in e]


def test_only_a_databases_set_up_step_holds_its_superuser_password(rendering):
    """Applications log in with roles of their own: the Secret `<database>-superuser` is mounted by the
    set-up init container of that database's StatefulSet and by no other container (secrets reach
    containers only as volumes, see test_no_secret_value_is_rendered)."""
    superuser_secrets = {
        o["metadata"]["name"]
        for o in rendering.objects()
        if o["kind"] == "Secret" and o["metadata"]["name"].endswith("-superuser")
    }
    assert superuser_secrets
    holders = set()
    for obj, pod in pod_specs(rendering):
        volumes = {}
        for volume in pod.get("volumes") or []:
            names = [volume.get("secret", {}).get("secretName")] + [
                s["secret"]["name"] for s in (volume.get("projected") or {}).get("sources", []) if "secret" in s
            ]
            volumes[volume["name"]] = {n for n in names if n in superuser_secrets}
        for kind in ("containers", "initContainers"):
            for c in pod.get(kind) or []:
                for mount in c.get("volumeMounts") or []:
                    for secret in volumes.get(mount["name"], ()):
                        assert (obj["kind"], kind, c["name"], secret) == (
                            "StatefulSet",
                            "initContainers",
                            "set-up",
                            f"{obj['metadata']['name']}-superuser",
                        ), (obj["metadata"]["name"], c["name"], secret)
                        holders.add(secret)
    assert holders == superuser_secrets


def test_service_account_tokens_are_not_mounted_by_default(rendering):
    for obj, pod in pod_specs(rendering):
        if pod.get("serviceAccountName"):
            continue  # a workload that reads the Kubernetes API says so with its own account
        assert pod.get("automountServiceAccountToken") is False, obj["metadata"]["name"]


def test_every_object_says_it_is_managed_by_mims_and_for_which_component(rendering):
    for obj in rendering.objects():
        labels = obj["metadata"]["labels"]
        assert labels["app.kubernetes.io/managed-by"] == "mims", obj["metadata"]["name"]
        assert labels["mims.io/component"] and labels["mims.io/city"] == rendering.loaded.blueprint.city.name


def test_data_volumes_are_protected(rendering):
    for obj in rendering.objects():
        for claim in (obj.get("spec") or {}).get("volumeClaimTemplates") or []:
            assert claim["metadata"]["annotations"]["mims.io/protect"] == "true", obj["metadata"]["name"]


def test_minimal_profile_fits_one_4_vcpu_16_gib_node(rendered_examples):
    for name, rendering in rendered_examples.items():
        if rendering.loaded.blueprint.budget.profile != "minimal-50k":
            continue
        total = rendering.total()
        assert total.cpu_request_m <= cpu_millicores("3.5"), name
        assert total.memory_request <= bytes_of("12Gi"), name
        assert total.memory_limit < bytes_of("16Gi"), name


def test_standard_profile_adds_disruption_budgets(rendered_examples):
    for rendering in rendered_examples.values():
        if rendering.loaded.blueprint.budget.profile == "standard":
            assert any(o["kind"] == "PodDisruptionBudget" for o in rendering.objects())
