"""The real node's load balancer: gives every Service of type LoadBalancer the node's address as its
external address, as a cloud's controller would give a public one. kube-proxy then sends traffic to
that address and the Service's port to the Service's pods, so the gateway answers on the machine's
own address (a single node has nothing to balance between). Without it the Services stay `pending`
and `mims up` waits for them until it gives up.

Run by the node as a supervised process: `python -m mims.cluster.loadbalancer PKI_DIR API_URL NODE_IP`,
as the user mims:loadbalancer (node-addons.yaml: list Services, patch their status).
It polls (every POLL seconds) rather than watches: a handful of Services, and nothing to resume."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from mims.cluster.controlplane import Api

POLL = 2.0


def assign(api: Api, address: str) -> list[str]:
    """Sets `address` on every LoadBalancer Service that lacks it; returns namespace/name of each one set."""
    code, body = api.get("/api/v1/services")
    if code != 200 or not isinstance(body, dict):
        return []
    done = []
    for service in body.get("items", []):
        if service.get("spec", {}).get("type") != "LoadBalancer":
            continue
        ingress = service.get("status", {}).get("loadBalancer", {}).get("ingress") or []
        if any(entry.get("ip") == address for entry in ingress):
            continue
        meta = service["metadata"]
        path = f"/api/v1/namespaces/{meta['namespace']}/services/{meta['name']}/status"
        patch = {"status": {"loadBalancer": {"ingress": [{"ip": address, "ipMode": "VIP"}]}}}
        code, _ = api.call("PATCH", path, patch, 10, content_type="application/merge-patch+json")
        if code == 200:
            done.append(f"{meta['namespace']}/{meta['name']}")
    return done


def main(argv: list[str]) -> None:
    pki_dir, api_url, address = Path(argv[0]), argv[1], argv[2]
    api = Api(api_url, pki_dir, user="loadbalancer")
    while True:
        for name in assign(api, address):
            print(f"{name}: external address {address}", flush=True)
        time.sleep(POLL)


if __name__ == "__main__":
    main(sys.argv[1:])
