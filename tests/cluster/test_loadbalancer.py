"""The real node's load balancer, against the session's simulated cluster (a real API server)."""

from __future__ import annotations

from kubernetes import client

from mims.cluster import ClusterConnection
from mims.cluster.loadbalancer import assign


def test_load_balancer_services_get_the_node_address_once(sim):
    core = client.CoreV1Api(ClusterConnection("sim", sim.name, sim.kubeconfig).api_client())
    spec = {"selector": {"app": "x"}, "ports": [{"port": 80}]}
    core.create_namespaced_service("default", {"metadata": {"name": "lb"}, "spec": {"type": "LoadBalancer", **spec}})
    core.create_namespaced_service("default", {"metadata": {"name": "plain"}, "spec": spec})
    api = sim.api()
    try:
        assert assign(api, "192.0.2.50") == ["default/lb"]
        assert core.read_namespaced_service_status("lb", "default").status.load_balancer.ingress[0].ip == "192.0.2.50"
        assert assign(api, "192.0.2.50") == []
    finally:
        core.delete_namespaced_service("lb", "default")
        core.delete_namespaced_service("plain", "default")
