"""What rendered objects ask of a cluster: pod by pod (`workloads_of`, the input to the cost
model's packing and pricing) and summed per component (`footprint_of`, for quotas and for sizing
a simulated node). One walk over the objects serves both, so sizing and cost always agree.

Counted: every replica of a Deployment or StatefulSet (requests and limits summed over its
containers, or its largest init container if bigger, as the scheduler does); DaemonSet pods (one
per node); Job and CronJob pods (they run now and then, so they must fit a node but hold no capacity);
PersistentVolumeClaims and StatefulSet volumeClaimTemplates (one volume per replica); Services of
type LoadBalancer.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mims.charts.quantity import bytes_of, cpu_millicores

COMPONENT_LABEL = "mims.io/component"
BACKUPS_LABEL = "mims.io/backups"


@dataclass(frozen=True)
class Pod:
    component: str
    name: str  # `<workload>-<replica index>`, or the Job/DaemonSet name
    cpu_request_m: int
    cpu_limit_m: int
    memory_request: int
    memory_limit: int

    def memory(self, size_by: str) -> int:
        """Memory the pod is sized by: its limit (or its request when it sets no limit), or its request."""
        if size_by == "limits":
            return max(self.memory_limit, self.memory_request)
        return self.memory_request

    @property
    def label(self) -> str:
        return f"{self.component}/{self.name}"


@dataclass(frozen=True)
class Volume:
    component: str
    name: str
    size: int  # bytes
    holds_backups: bool = False  # a backup volume (label mims.io/backups), not data

    @property
    def gib(self) -> float:
        return self.size / 2**30


@dataclass(frozen=True)
class LoadBalancer:
    component: str
    name: str
    namespace: str


@dataclass
class Workloads:
    pods: list[Pod] = field(default_factory=list)
    jobs: list[Pod] = field(default_factory=list)
    daemons: list[Pod] = field(default_factory=list)
    volumes: list[Volume] = field(default_factory=list)
    load_balancers: list[LoadBalancer] = field(default_factory=list)

    def components(self) -> list[str]:
        found = {p.component for p in self.pods + self.jobs + self.daemons}
        found |= {v.component for v in self.volumes} | {lb.component for lb in self.load_balancers}
        return sorted(found)


def workloads_of(objects: list[dict]) -> Workloads:
    found = Workloads()
    for obj in objects:
        kind = obj.get("kind")
        meta = obj.get("metadata") or {}
        spec = obj.get("spec") or {}
        component = (meta.get("labels") or {}).get(COMPONENT_LABEL, "")
        name = meta.get("name", "")
        if kind == "PersistentVolumeClaim":
            size = bytes_of(spec["resources"]["requests"]["storage"])
            found.volumes.append(Volume(component, name, size, (meta.get("labels") or {}).get(BACKUPS_LABEL) == "true"))
        elif kind == "Service" and spec.get("type") == "LoadBalancer":
            found.load_balancers.append(LoadBalancer(component, name, meta.get("namespace", "")))
        elif kind in ("Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob"):
            if kind == "CronJob":  # its Jobs' pods, one at a time (concurrencyPolicy Forbid)
                spec = spec["jobTemplate"]["spec"]
            pod_spec = (spec.get("template") or {}).get("spec") or {}
            cpu_req, cpu_lim, mem_req, mem_lim = pod_resources(pod_spec)
            if kind in ("Job", "CronJob"):
                found.jobs.append(Pod(component, name, cpu_req, cpu_lim, mem_req, mem_lim))
            elif kind == "DaemonSet":
                found.daemons.append(Pod(component, name, cpu_req, cpu_lim, mem_req, mem_lim))
            else:
                replicas = spec.get("replicas", 1)
                found.pods += [
                    Pod(component, f"{name}-{i}", cpu_req, cpu_lim, mem_req, mem_lim) for i in range(replicas)
                ]
                for claim in spec.get("volumeClaimTemplates") or []:
                    size = bytes_of(claim["spec"]["resources"]["requests"]["storage"])
                    claim_name = claim["metadata"]["name"]
                    found.volumes += [Volume(component, f"{claim_name}-{name}-{i}", size) for i in range(replicas)]
    return found


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
            rows.append(
                (
                    cpu_millicores(req.get("cpu", 0)),
                    cpu_millicores(lim.get("cpu", 0)),
                    bytes_of(req.get("memory", 0)),
                    bytes_of(lim.get("memory", 0)),
                )
            )
        return rows

    apps = totals(pod_spec.get("containers") or [])
    inits = totals(pod_spec.get("initContainers") or [])
    summed = tuple(sum(col) for col in zip(*apps)) if apps else (0, 0, 0, 0)
    return tuple(max([summed[i]] + [row[i] for row in inits]) for i in range(4))  # type: ignore[return-value]


def footprint_of(objects: list[dict]) -> Footprint:
    """The steady pods (DaemonSet pods counted once: one node) summed, plus the Jobs' pods apart."""
    work = workloads_of(objects)
    fp = Footprint(storage=sum(v.size for v in work.volumes))
    for pod in work.pods + work.daemons:
        fp.cpu_request_m += pod.cpu_request_m
        fp.cpu_limit_m += pod.cpu_limit_m
        fp.memory_request += pod.memory_request
        fp.memory_limit += pod.memory_limit
        fp.pods += 1
        fp.largest_pod = max(fp.largest_pod, (pod.cpu_request_m, pod.memory_request))
    fp.job_pods = [(pod.cpu_request_m, pod.memory_request) for pod in work.jobs]
    return fp
