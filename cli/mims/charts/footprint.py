"""Resource footprint of rendered objects: what the scheduler will reserve, per component."""

from __future__ import annotations

from dataclasses import dataclass, field

from mims.charts.quantity import bytes_of, cpu_millicores

STEADY_KINDS = ("Deployment", "StatefulSet")


@dataclass
class Footprint:
    cpu_request_m: int = 0
    cpu_limit_m: int = 0
    memory_request: int = 0
    memory_limit: int = 0
    storage: int = 0
    pods: int = 0
    largest_pod: tuple[int, int] = (0, 0)  # (cpu m, memory bytes) of requests
    job_pods: list[tuple[int, int]] = field(default_factory=list)

    def add(self, other: Footprint) -> None:
        self.cpu_request_m += other.cpu_request_m
        self.cpu_limit_m += other.cpu_limit_m
        self.memory_request += other.memory_request
        self.memory_limit += other.memory_limit
        self.storage += other.storage
        self.pods += other.pods
        self.largest_pod = max(self.largest_pod, other.largest_pod)
        self.job_pods.extend(other.job_pods)

    def as_dict(self) -> dict:
        return {
            "requests": {"cpu": self.cpu_request_m / 1000, "memory_gib": round(self.memory_request / 2**30, 3)},
            "limits": {"cpu": self.cpu_limit_m / 1000, "memory_gib": round(self.memory_limit / 2**30, 3)},
            "storage_gib": round(self.storage / 2**30, 3),
            "pods": self.pods,
        }


def pod_resources(pod_spec: dict) -> tuple[int, int, int, int]:
    """(cpu request, cpu limit, memory request, memory limit) the way the scheduler counts a pod:
    the larger of the biggest init container and the sum of the app containers."""
    def totals(containers: list[dict]) -> list[tuple[int, int, int, int]]:
        rows = []
        for c in containers:
            res = c.get("resources") or {}
            req, lim = res.get("requests") or {}, res.get("limits") or {}
            rows.append((cpu_millicores(req.get("cpu", 0)), cpu_millicores(lim.get("cpu", 0)),
                         bytes_of(req.get("memory", 0)), bytes_of(lim.get("memory", 0))))
        return rows

    apps = totals(pod_spec.get("containers") or [])
    inits = totals(pod_spec.get("initContainers") or [])
    summed = tuple(sum(col) for col in zip(*apps)) if apps else (0, 0, 0, 0)
    return tuple(max([summed[i]] + [row[i] for row in inits]) for i in range(4))  # type: ignore[return-value]


def footprint_of(objects: list[dict]) -> Footprint:
    fp = Footprint()
    for obj in objects:
        kind = obj.get("kind")
        spec = obj.get("spec") or {}
        if kind == "PersistentVolumeClaim":
            fp.storage += bytes_of(spec["resources"]["requests"]["storage"])
        if kind not in STEADY_KINDS + ("Job",):
            continue
        pod = (spec.get("template") or {}).get("spec") or {}
        cpu_req, cpu_lim, mem_req, mem_lim = pod_resources(pod)
        if kind == "Job":
            fp.job_pods.append((cpu_req, mem_req))
            continue
        replicas = spec.get("replicas", 1)
        fp.cpu_request_m += cpu_req * replicas
        fp.cpu_limit_m += cpu_lim * replicas
        fp.memory_request += mem_req * replicas
        fp.memory_limit += mem_lim * replicas
        fp.pods += replicas
        fp.largest_pod = max(fp.largest_pod, (cpu_req, mem_req))
        for claim in spec.get("volumeClaimTemplates") or []:
            fp.storage += bytes_of(claim["spec"]["resources"]["requests"]["storage"]) * replicas
    return fp
