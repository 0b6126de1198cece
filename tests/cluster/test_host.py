"""What a real node changes on the machine is put back: real iptables, ipset, links and sysctls,
changed here the way kubelet, kube-proxy, kube-router and the CNI plugins change them."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from mims.cluster import host
from tests.conftest import FIXTURES

needs_root_networking = pytest.mark.skipif(
    os.geteuid() != 0 or not all(shutil.which(p) for p in ("iptables-save", "ipset", "ip")),
    reason="changes iptables, ipsets and links: needs root with iptables, ipset and iproute2",
)


def sh(*argv: str) -> None:
    subprocess.run(argv, check=True, capture_output=True)


@needs_root_networking
def test_restore_undoes_chains_rules_ipsets_links_and_sysctls():
    before = host.snapshot()
    chain, ipset, link = f"MIMS-TEST-{os.getpid()}", f"mims-test-{os.getpid()}", f"mimst{os.getpid() % 10000}"
    try:
        sh("iptables", "-w", "-t", "filter", "-N", chain)
        sh("iptables", "-w", "-t", "filter", "-A", chain, "-p", "tcp", "--dport", "9", "-j", "REJECT")
        sh(
            "iptables",
            "-w",
            "-t",
            "filter",
            "-I",
            "INPUT",
            "-m",
            "comment",
            "--comment",
            "mims test: two words",
            "-j",
            chain,
        )
        sh("iptables", "-w", "-t", "nat", "-A", "POSTROUTING", "-s", "10.244.0.0/24", "-j", "MASQUERADE")
        sh("ipset", "create", ipset, "hash:ip")
        sh("ip", "link", "add", link, "type", "bridge")  # what the CNI bridge plugin adds (no dummy driver here)
        flipped = "1" if before["sysctls"]["net/ipv4/conf/all/route_localnet"] == "0" else "0"
        host.set_sysctl("net/ipv4/conf/all/route_localnet", flipped)
        assert host.snapshot() != before
    finally:
        problems = host.restore(before, [], containerd_address="/nonexistent/containerd.sock")
    assert problems == []
    after = host.snapshot()
    for key in ("sysctls", "iptables", "ipsets", "links", "nft_tables"):
        assert after[key] == before[key], key


def test_a_running_kubelet_is_found_whoever_started_it(fake_kubelet):
    proc, path = fake_kubelet
    assert f"{proc.pid} ({path})" in host.running_kubelets()
    proc.kill()
    proc.wait()
    assert not any(entry.startswith(f"{proc.pid} ") for entry in host.running_kubelets())


def test_cluster_folders_are_found_by_their_kubelet_and_containerd_mounts():
    mounts = (FIXTURES / "host" / "proc-mounts.txt").read_text()
    assert host.mounted_node_folders(mounts) == [
        Path("/tmp/pytest-of-root/pytest-26/home real node/clusters/mims"),
        Path("/var/lib/mims/clusters/city"),
    ]
