"""How many nodes the pods need: first-fit decreasing on two dimensions (CPU and memory), after a
documented reserve per node for the operating system, the kubelet and the cluster's own pods."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

MIB = 2**20
GIB = 2**30

# Per-node reserve (docs/cost.md). The kubelet and system share follows the tiered formula GKE
# publishes for its node allocatable; the eviction threshold is the kubelet's default hard eviction
# (memory.available < 100Mi); the allowance covers the pods every cluster runs besides the platform
# (CNI agent, kube-proxy, CSI node plugin, CoreDNS, metrics-server), which on a small cluster
# share the same nodes.
CPU_TIERS = ((1.0, 0.06), (1.0, 0.01), (2.0, 0.005), (math.inf, 0.0025))  # (cores, share)
MEMORY_TIERS = ((4.0, 0.25), (4.0, 0.20), (8.0, 0.10), (112.0, 0.06), (math.inf, 0.02))  # (GiB, share)
SMALL_NODE_MEMORY = 255 * MIB  # GKE's reserve for nodes under 1 GiB
EVICTION_MEMORY = 100 * MIB
CLUSTER_PODS_CPU_M = 200
CLUSTER_PODS_MEMORY = 512 * MIB


def _tiered(amount: float, tiers: tuple[tuple[float, float], ...]) -> float:
    reserved, left = 0.0, amount
    for size, share in tiers:
        part = min(left, size)
        reserved += part * share
        left -= part
        if left <= 0:
            break
    return reserved


def system_reserve(vcpu: float, memory_gib: float) -> tuple[int, int]:
    """(CPU millicores, memory bytes) a node of this size keeps back from pods."""
    cpu_m = math.ceil(_tiered(vcpu, CPU_TIERS) * 1000) + CLUSTER_PODS_CPU_M
    if memory_gib < 1:
        kube = SMALL_NODE_MEMORY
    else:
        kube = math.ceil(_tiered(memory_gib, MEMORY_TIERS) * GIB)
    return cpu_m, kube + EVICTION_MEMORY + CLUSTER_PODS_MEMORY


def allocatable(vcpu: float, memory_gib: float, daemons: tuple[tuple[int, int], ...] = ()) -> tuple[int, int]:
    """(CPU millicores, memory bytes) left for the platform's pods on one node; DaemonSet pods
    (cpu, memory) run on every node and come off too. Never negative."""
    cpu_m, memory = system_reserve(vcpu, memory_gib)
    cpu_m += sum(d[0] for d in daemons)
    memory += sum(d[1] for d in daemons)
    return max(0, round(vcpu * 1000) - cpu_m), max(0, round(memory_gib * GIB) - memory)


@dataclass(frozen=True)
class Item:
    name: str
    cpu_m: int
    memory: int


@dataclass
class Bin:
    cpu_m: int
    memory: int
    items: list[Item] = field(default_factory=list)
    used_cpu_m: int = 0
    used_memory: int = 0

    def fits(self, item: Item) -> bool:
        return self.used_cpu_m + item.cpu_m <= self.cpu_m and self.used_memory + item.memory <= self.memory

    def put(self, item: Item) -> None:
        self.items.append(item)
        self.used_cpu_m += item.cpu_m
        self.used_memory += item.memory


class DoesNotFit(Exception):
    def __init__(self, item: Item):
        super().__init__(item.name)
        self.item = item


def first_fit_decreasing(items: list[Item], cpu_m: int, memory: int) -> list[Bin]:
    """Place every item on the first node it fits, largest first, opening a node when none has room.

    Items are ordered by their larger share of a node's CPU or memory (then by name, so the result
    is stable). Raises DoesNotFit for an item bigger than an empty node."""

    def size(item: Item) -> float:
        return max(_share(item.cpu_m, cpu_m), _share(item.memory, memory))

    bins: list[Bin] = []
    for item in sorted(items, key=lambda i: (-size(i), -i.memory, -i.cpu_m, i.name)):
        for candidate in bins:
            if candidate.fits(item):
                candidate.put(item)
                break
        else:
            fresh = Bin(cpu_m, memory)
            if not fresh.fits(item):
                raise DoesNotFit(item)
            fresh.put(item)
            bins.append(fresh)
    return bins


def _share(need: int, capacity: int) -> float:
    if need == 0:
        return 0.0
    return need / capacity if capacity else math.inf


def lower_bound(items: list[Item], cpu_m: int, memory: int) -> int:
    """No packing can use fewer nodes than the totals divided by one node's capacity."""
    if not items:
        return 0
    need_cpu = sum(i.cpu_m for i in items)
    need_memory = sum(i.memory for i in items)
    bounds: list[float] = [1]
    if need_cpu:
        bounds.append(math.ceil(need_cpu / cpu_m) if cpu_m else math.inf)
    if need_memory:
        bounds.append(math.ceil(need_memory / memory) if memory else math.inf)
    return max(bounds)  # type: ignore[return-value]  # math.inf: no node type holds the items
