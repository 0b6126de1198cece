"""The probe Job: what only a pod can see (which services a pod of a foreign namespace reaches).
It runs in a namespace of its own, made for the run and removed after it (also by the next run,
should this one be interrupted), under Pod Security `restricted`."""

from __future__ import annotations

from dataclasses import dataclass

from kubernetes import client
from kubernetes.client.rest import ApiException

from mims.jobs import wait_for_job
from mims.verify.probe import ProbeFailed

PROBE_LABEL = "mims.io/verify-probe"
# The API server answers every pod of a namespace without NetworkPolicies: a probe that reaches
# nothing at all proves nothing.
CONTROL = ("kubernetes.default.svc.cluster.local", 443)
TIMEOUT_S = 180


@dataclass(frozen=True)
class Target:
    name: str  # what the report calls it: namespace/service:port
    host: str
    port: int


def sweep(api: client.ApiClient) -> None:
    """Removes probe namespaces an interrupted run left."""
    core = client.CoreV1Api(api)
    for ns in core.list_namespace(label_selector=PROBE_LABEL).items:
        if ns.metadata and ns.metadata.name:
            _delete_namespace(core, ns.metadata.name)


def reachable(api: client.ApiClient, run_id: str, targets: list[Target], image: str) -> set[str]:
    """The names of the targets a pod in a fresh namespace connects to."""
    core, batch = client.CoreV1Api(api), client.BatchV1Api(api)
    namespace = f"mims-verify-{run_id}"
    core.create_namespace(
        {  # type: ignore[arg-type]  # the client takes plain dicts too
            "metadata": {
                "name": namespace,
                "labels": {PROBE_LABEL: "true", "pod-security.kubernetes.io/enforce": "restricted"},
            }
        }
    )
    try:
        batch.create_namespaced_job(namespace, _job(targets, image))  # type: ignore[arg-type]
        log = wait_for_job(core, namespace, "probe", TIMEOUT_S, ProbeFailed, container="probe").log
    finally:
        _delete_namespace(core, namespace)
    lines = log.splitlines()
    if "open control" not in lines:
        raise ProbeFailed(
            f"the probe pod reached nothing, not even the API server at {CONTROL[0]}:{CONTROL[1]}: "
            "cannot tell isolation from a broken pod network"
        )
    return {line.removeprefix("open ") for line in lines if line.startswith("open ") and line != "open control"}


def _job(targets: list[Target], image: str) -> dict:
    checks = [f"try control {CONTROL[0]} {CONTROL[1]}"] + [f"try '{t.name}' {t.host} {t.port}" for t in targets]
    script = "\n".join(
        [
            'try() { if nc -w 3 "$2" "$3" </dev/null >/dev/null 2>&1; then echo "open $1"; else echo "closed $1"; fi; }',
            *checks,
        ]
    )
    return {
        "metadata": {"name": "probe"},
        "spec": {
            "backoffLimit": 0,
            "activeDeadlineSeconds": TIMEOUT_S,
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "automountServiceAccountToken": False,
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": 65534,
                        "runAsGroup": 65534,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "containers": [
                        {
                            "name": "probe",
                            "image": image,
                            "imagePullPolicy": "IfNotPresent",
                            "command": ["sh", "-c", script],
                            "resources": {
                                "requests": {"cpu": "10m", "memory": "16Mi"},
                                "limits": {"cpu": "100m", "memory": "32Mi"},
                            },
                            "securityContext": {
                                "allowPrivilegeEscalation": False,
                                "readOnlyRootFilesystem": True,
                                "capabilities": {"drop": ["ALL"]},
                            },
                        }
                    ],
                }
            },
        },
    }


def _delete_namespace(core: client.CoreV1Api, name: str) -> None:
    try:
        core.delete_namespace(name, propagation_policy="Background")
    except ApiException as error:
        if error.status != 404:
            raise
