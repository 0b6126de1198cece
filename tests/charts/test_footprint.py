"""Reading what the rendered objects ask of a cluster, object kind by object kind, pod by pod and summed."""

from __future__ import annotations

from mims.charts.footprint import footprint_of, workloads_of
from mims.cost.model import pack
from mims.cost.packing import allocatable
from mims.cost.sheets import NodeType

MIB = 2**20


def _pod(containers, init=()):
    return {
        "template": {
            "spec": {
                "containers": [{"name": f"c{i}", "resources": r} for i, r in enumerate(containers)],
                "initContainers": [{"name": f"i{i}", "resources": r} for i, r in enumerate(init)],
            }
        }
    }


def _obj(kind, name, spec, component="broker"):
    return {
        "kind": kind,
        "metadata": {"name": name, "namespace": f"x-{component}", "labels": {"mims.io/component": component}},
        "spec": spec,
    }


SMALL = {"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"cpu": "1", "memory": "128Mi"}}
BIG_INIT = {"requests": {"cpu": "500m", "memory": "32Mi"}, "limits": {"cpu": "2", "memory": "32Mi"}}


def test_every_kind_is_counted_the_way_a_cluster_would():
    objects = [
        _obj(
            "StatefulSet",
            "db",
            {
                "replicas": 3,
                **_pod([SMALL, SMALL], init=[BIG_INIT]),
                "volumeClaimTemplates": [
                    {"metadata": {"name": "data"}, "spec": {"resources": {"requests": {"storage": "5Gi"}}}}
                ],
            },
        ),
        _obj("Deployment", "off", {"replicas": 0, **_pod([SMALL])}),
        _obj("Deployment", "one", _pod([SMALL])),  # replicas default to 1
        _obj("DaemonSet", "agent", _pod([SMALL]), component="monitoring"),
        _obj("Job", "once", _pod([SMALL]), component="ai-registry"),
        _obj("PersistentVolumeClaim", "files", {"resources": {"requests": {"storage": "1Gi"}}}),
        _obj("Service", "lb", {"type": "LoadBalancer"}, component="gateway"),
        _obj("Service", "internal", {"ports": [{"port": 80}]}),
    ]
    work = workloads_of(objects)
    # db: two 100m containers = 200m, but the 500m init container is bigger; memory 2 x 64 = 128Mi requested.
    assert [(p.label, p.cpu_request_m, p.memory_request // MIB, p.memory_limit // MIB) for p in work.pods] == [
        ("broker/db-0", 500, 128, 256),
        ("broker/db-1", 500, 128, 256),
        ("broker/db-2", 500, 128, 256),
        ("broker/one-0", 100, 64, 128),
    ]
    assert [v.name for v in work.volumes] == ["data-db-0", "data-db-1", "data-db-2", "files"]
    assert sum(v.gib for v in work.volumes) == 16
    assert [(d.label, d.cpu_request_m) for d in work.daemons] == [("monitoring/agent", 100)]
    assert [j.label for j in work.jobs] == ["ai-registry/once"]
    assert [(b.component, b.name) for b in work.load_balancers] == [("gateway", "lb")]
    assert work.components() == ["ai-registry", "broker", "gateway", "monitoring"]


def test_a_pod_without_a_memory_limit_is_sized_by_its_request():
    [pod] = workloads_of([_obj("Deployment", "x", _pod([{"requests": {"cpu": "10m", "memory": "200Mi"}}]))]).pods
    assert pod.memory("limits") == pod.memory("requests") == 200 * MIB


def test_daemonset_pods_come_off_every_node():
    work = workloads_of([_obj("DaemonSet", "agent", _pod([SMALL])), _obj("Deployment", "one", _pod([SMALL]))])
    [node] = pack(work, NodeType(name="n", vcpu=4, memory_gib=16), "limits")
    assert (node.cpu_m, node.memory) == allocatable(4, 16, ((100, 128 * MIB),))


def test_the_sum_counts_the_same_pods_as_the_cost_model():
    """Sizing (quotas, the simulated node) and cost read one list: a DaemonSet's pod counts in both."""
    objects = [
        _obj("DaemonSet", "agent", _pod([SMALL])),
        _obj("Deployment", "two", {"replicas": 2, **_pod([SMALL])}),
        _obj("Job", "once", _pod([BIG_INIT])),
    ]
    work, fp = workloads_of(objects), footprint_of(objects)
    steady = work.pods + work.daemons
    assert fp.pods == len(steady) == 3
    assert fp.cpu_request_m == sum(p.cpu_request_m for p in steady) == 300
    assert fp.memory_limit == sum(p.memory_limit for p in steady) == 3 * 128 * MIB
    assert fp.job_pods == [(500, 32 * MIB)]
