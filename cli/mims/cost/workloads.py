"""What the rendered objects ask of a cluster, pod by pod: the input to packing and pricing.

Counted: every replica of a Deployment or StatefulSet (requests and limits summed over its
containers, or its largest init container if bigger, as the scheduler does); DaemonSet pods (one
per node); Job pods (they run once at deploy time, so they must fit a node but hold no capacity);
PersistentVolumeClaims and StatefulSet volumeClaimTemplates (one volume per replica); Services of
type LoadBalancer.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mims.charts.footprint import pod_resources
from mims.charts.quantity import bytes_of

COMPONENT_LABEL = "mims.io/component"


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
            found.volumes.append(Volume(component, name, bytes_of(spec["resources"]["requests"]["storage"])))
        elif kind == "Service" and spec.get("type") == "LoadBalancer":
            found.load_balancers.append(LoadBalancer(component, name, meta.get("namespace", "")))
        elif kind in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
            pod_spec = (spec.get("template") or {}).get("spec") or {}
            cpu_req, cpu_lim, mem_req, mem_lim = pod_resources(pod_spec)
            if kind == "Job":
                found.jobs.append(Pod(component, name, cpu_req, cpu_lim, mem_req, mem_lim))
            elif kind == "DaemonSet":
                found.daemons.append(Pod(component, name, cpu_req, cpu_lim, mem_req, mem_lim))
            else:
                replicas = spec.get("replicas", 1)
                found.pods += [Pod(component, f"{name}-{i}", cpu_req, cpu_lim, mem_req, mem_lim)
                               for i in range(replicas)]
                for claim in spec.get("volumeClaimTemplates") or []:
                    size = bytes_of(claim["spec"]["resources"]["requests"]["storage"])
                    claim_name = claim["metadata"]["name"]
                    found.volumes += [Volume(component, f"{claim_name}-{name}-{i}", size) for i in range(replicas)]
    return found
