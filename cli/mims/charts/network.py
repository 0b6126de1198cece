"""NetworkPolicies derived from chart metadata: one ingress and one egress allow-list per workload.

Every namespace starts from default-deny (foundation chart); this module opens exactly the flows
that charts declare, so a reviewer reads the allowed traffic in `chart.yaml`, not in YAML soup.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from mims.charts.meta import ENTRANCE, Chart

NAME_LABEL = "app.kubernetes.io/name"
NS_LABEL = "kubernetes.io/metadata.name"


NON_PUBLIC_V4 = ["10.0.0.0/8", "100.64.0.0/10", "169.254.0.0/16", "172.16.0.0/12", "192.168.0.0/16"]
NON_PUBLIC_V6 = ["fc00::/7", "fe80::/10"]


@dataclass(frozen=True)
class Peer:
    namespace: str | None  # None: an address outside any selector (see `outside`)
    workload: str | None
    port: int
    outside: str = "anywhere"  # for a peer that is addresses: "internet" or "anywhere"


def tcp_exposed(tls_mode: str) -> bool:
    """A public tcp endpoint carries passwords (MQTT devices'): never over plain TCP from outside, so
    with `tls.mode: none` (local trials) it stays inside the cluster."""
    return tls_mode != "none"


def network_policies(
    charts: dict[str, Chart], namespaces: dict[str, str], tls_mode: str, backups: bool
) -> dict[str, list[dict]]:
    """Policies per component id, for the enabled charts given as {component: chart}. With
    `tls.mode: none` (plain-HTTP trials) public tcp endpoints stay internal: nothing calls them
    through `*tcp`. With `backups`, each database's backup pods reach it."""
    ingress: dict[tuple[str, str], set[Peer]] = defaultdict(set)  # (component, workload) -> sources
    egress: dict[tuple[str, str], set[Peer]] = defaultdict(set)  # (component, workload) -> targets
    endpoints = {f"{c}/{e.name}": (c, e) for c, chart in charts.items() for e in chart.meta.endpoints}
    public_http = [(c, e) for c, e in endpoints.values() if e.public and e.protocol == "http"]
    public_tcp = [(c, e) for c, e in endpoints.values() if e.public and e.protocol == "tcp" and tcp_exposed(tls_mode)]
    # The pods and ports a public URL reaches once kube-proxy or the CNI has rewritten its address.
    entrance = [
        (c, e.workload, e.port)
        for c, chart in charts.items()
        for e in chart.meta.network.entrance
        if e.unless not in charts and (e.tls is None or tls_mode in e.tls)
    ]

    def connect(src_c: str, src_w: str, dst_c: str, dst_w: str, port: int) -> None:
        ingress[(dst_c, dst_w)].add(Peer(namespaces[src_c], src_w, port))
        egress[(src_c, src_w)].add(Peer(namespaces[dst_c], dst_w, port))

    for component, chart in charts.items():
        net = chart.meta.network
        for flow in net.flows:
            connect(component, flow.source, component, flow.to, flow.port)
        for database in chart.meta.databases if backups else []:
            connect(component, database.backup_workload, component, database.workload, database.port)
        for call in net.calls:
            if call.unless in charts or (call.tls is not None and tls_mode not in call.tls):
                continue
            if call.endpoint == "*":
                targets = [(c, e.workload, e.port) for c, e in public_http]
            elif call.endpoint == "*tcp":
                targets = [(c, e.workload, e.port) for c, e in public_tcp]
                # The caller is the public entry point: it listens on each endpoint's public port.
                for _, endpoint in public_tcp:
                    assert endpoint.public_port is not None  # Endpoint's validator: a public tcp endpoint has one
                    ingress[(component, call.source)].add(Peer(None, None, endpoint.public_port))
            elif call.endpoint == ENTRANCE:
                targets = entrance
            elif call.endpoint in endpoints:
                target_component, endpoint = endpoints[call.endpoint]
                targets = [(target_component, endpoint.workload, endpoint.port)]
            else:
                targets = []
            for target_component, workload, port in targets:
                connect(component, call.source, target_component, workload, port)
        for opening in net.open:
            if opening.unless not in charts:
                ingress[(component, opening.workload)].add(Peer(None, None, opening.port, opening.source))
        for external in net.external:
            for port in external.ports:
                egress[(component, external.source)].add(Peer(None, None, port, external.to))
        if net.scrapes:
            for target_component, target in charts.items():
                for metric in target.meta.metrics:
                    connect(component, net.scrapes, target_component, metric.workload, metric.port)

    out: dict[str, list[dict]] = defaultdict(list)
    for (component, workload), peers in sorted(ingress.items()):
        out[component].append(_policy(namespaces[component], workload, "Ingress", peers))
    for (component, workload), peers in sorted(egress.items()):
        out[component].append(_policy(namespaces[component], workload, "Egress", peers))
    return out


def _policy(namespace: str, workload: str, direction: str, peers: set[Peer]) -> dict:
    by_peer: dict[tuple, set[int]] = defaultdict(set)
    for peer in peers:
        by_peer[(peer.namespace, peer.workload, peer.outside)].add(peer.port)
    rules = []
    for (peer_ns, peer_workload, outside), ports in sorted(
        by_peer.items(), key=lambda kv: tuple(k or "" for k in kv[0])
    ):
        rule: dict = {"ports": [{"protocol": "TCP", "port": p} for p in sorted(ports)]}
        if peer_ns is not None:
            selector = {"podSelector": {"matchLabels": {NAME_LABEL: peer_workload}}}
            if peer_ns != namespace:
                selector["namespaceSelector"] = {"matchLabels": {NS_LABEL: peer_ns}}
            rule["from" if direction == "Ingress" else "to"] = [selector]
        elif outside == "internet":
            rule["from" if direction == "Ingress" else "to"] = [
                {"ipBlock": {"cidr": "0.0.0.0/0", "except": list(NON_PUBLIC_V4)}},
                {"ipBlock": {"cidr": "::/0", "except": list(NON_PUBLIC_V6)}},
            ]
        elif direction == "Egress":
            rule["to"] = [{"ipBlock": {"cidr": "0.0.0.0/0"}}, {"ipBlock": {"cidr": "::/0"}}]
        # Ingress from anywhere: a rule without `from` admits every source, pods included.
        rules.append(rule)
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": f"allow-{direction.lower()}-{workload}", "namespace": namespace},
        "spec": {
            "podSelector": {"matchLabels": {NAME_LABEL: workload}},
            "policyTypes": [direction],
            direction.lower(): rules,
        },
    }
