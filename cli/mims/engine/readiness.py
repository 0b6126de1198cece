"""Readiness of the platform's workloads and volumes as the Kubernetes API reports them (`mims status`)."""

from __future__ import annotations

from dataclasses import dataclass

from kubernetes import client
from kubernetes.client.exceptions import ApiException


@dataclass(frozen=True)
class WorkloadState:
    namespace: str
    kind: str
    name: str
    ready: str  # "ready/desired" for workloads, the phase for claims, "complete"/"running"/"suspended" for Jobs
    ok: bool


def workload_states(api: client.ApiClient, objects: list[dict]) -> list[WorkloadState]:
    """One row per Deployment, StatefulSet and Job of the rendering, and per volume claim of its
    StatefulSets; a missing object is reported as `missing`, not raised."""
    apps, batch, core = client.AppsV1Api(api), client.BatchV1Api(api), client.CoreV1Api(api)
    states = []
    for obj in objects:
        kind, meta = obj["kind"], obj["metadata"]
        namespace, name = meta.get("namespace", ""), meta["name"]
        try:
            if kind == "Deployment":
                deployment = apps.read_namespaced_deployment_status(name, namespace).status
                states.append(
                    _replicas(namespace, kind, name, obj, deployment.available_replicas if deployment else None)
                )
            elif kind == "StatefulSet":
                statefulset = apps.read_namespaced_stateful_set_status(name, namespace).status
                states.append(
                    _replicas(namespace, kind, name, obj, statefulset.ready_replicas if statefulset else None)
                )
                states.extend(_claims(core, namespace, name, obj))
            elif kind == "Job":
                job = batch.read_namespaced_job_status(name, namespace)
                complete = bool(job.status and job.status.succeeded)
                if not complete and job.spec and job.spec.suspend:  # paused on purpose (an override)
                    states.append(WorkloadState(namespace, kind, name, "suspended", True))
                else:
                    states.append(WorkloadState(namespace, kind, name, "complete" if complete else "running", complete))
        except ApiException as exc:
            if exc.status != 404:
                raise
            states.append(WorkloadState(namespace, kind, name, "missing", False))
    return states


def _replicas(namespace: str, kind: str, name: str, obj: dict, ready: int | None) -> WorkloadState:
    desired = obj.get("spec", {}).get("replicas", 1)
    return WorkloadState(namespace, kind, name, f"{ready or 0}/{desired}", (ready or 0) >= desired)


def _claims(core: client.CoreV1Api, namespace: str, statefulset: str, obj: dict) -> list[WorkloadState]:
    replicas = obj.get("spec", {}).get("replicas", 1)
    states = []
    for template in obj.get("spec", {}).get("volumeClaimTemplates") or []:
        for ordinal in range(replicas):
            claim = f"{template['metadata']['name']}-{statefulset}-{ordinal}"
            try:
                status = core.read_namespaced_persistent_volume_claim(claim, namespace).status
                phase = (status and status.phase) or "unknown"  # the API server always sets a phase
            except ApiException as exc:
                if exc.status != 404:
                    raise
                phase = "missing"
            states.append(WorkloadState(namespace, "PersistentVolumeClaim", claim, phase, phase == "Bound"))
    return states
