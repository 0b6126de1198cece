"""What a real node changes on this machine, recorded before its first start and put back when it is
deleted: kernel settings, iptables rules and chains, nftables tables, ipsets, network links, cgroups,
mounts and folders outside the cluster's own. Kubelet, kube-proxy, kube-router and the CNI plugins
each add some of these (REALNODE measurements are summarised in docs/cluster.md)."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Any

# Set by kubelet (it refuses other values unless protectKernelDefaults is off, and then sets them),
# by mims for pod traffic, and possibly by kube-proxy.
SYSCTLS = (
    "net/ipv4/ip_forward",
    "net/bridge/bridge-nf-call-iptables",
    "net/bridge/bridge-nf-call-ip6tables",
    "net/ipv4/conf/all/route_localnet",
    "kernel/panic",
    "kernel/panic_on_oops",
    "vm/overcommit_memory",
)
TABLES = ("filter", "nat", "mangle", "raw")
FAMILIES = ("iptables", "ip6tables")
# Written by kubelet, containerd or libcni whatever their configured roots are.
OUTSIDE_PATHS = (
    "/var/lib/kubelet",
    "/var/log/containers",
    "/var/log/pods",
    "/run/containerd",
    "/var/lib/cni",
    "/run/netns",
)
CGROUP_ROOT = Path("/sys/fs/cgroup")


def snapshot() -> dict[str, Any]:
    """The parts of the machine a node changes, as they are now (JSON-able, kept in state.json)."""
    return {
        "sysctls": {name: _read_sysctl(name) for name in SYSCTLS},
        "iptables": {f: {t: _iptables(f, t) for t in TABLES} for f in FAMILIES if shutil.which(f"{f}-save")},
        "nft_tables": _nft_tables(),
        "ipsets": _ipsets(),
        "links": _links(),
        "paths": [p for p in OUTSIDE_PATHS if os.path.lexists(p)],
        "cgroups": _kubepods_cgroups(),
    }


def set_sysctl(name: str, value: str) -> None:
    Path("/proc/sys", name).write_text(value)


def restore(before: dict[str, Any], own_dirs: list[Path], containerd_address: str) -> list[str]:
    """Undoes what changed since `before`; returns what could not be undone (to report, not raise:
    a half-restored machine is better than a stopped restore)."""
    problems: list[str] = []
    kill_pod_processes(containerd_address)
    unmount_under([*own_dirs, *(Path(p) for p in OUTSIDE_PATHS)], problems)
    for family, tables in before.get("iptables", {}).items():
        for table, (chains, rules) in tables.items():
            _restore_iptables(family, table, set(chains), rules, problems)
    for table in _nft_tables():
        if table not in before.get("nft_tables", []):
            _run(["nft", "delete", "table", *table.split()], problems)
    for name in _ipsets():
        if name not in before.get("ipsets", []):
            _run(["ipset", "destroy", name], problems)
    for name in _links():
        if name not in before.get("links", []):
            _run(["ip", "link", "delete", name], problems, quiet_if_gone=True)
    for path in OUTSIDE_PATHS:
        if path not in before.get("paths", []) and os.path.lexists(path):
            shutil.rmtree(path, ignore_errors=True)
            if os.path.lexists(path):
                problems.append(f"could not remove {path}")
    for cgroup in _kubepods_cgroups():
        if cgroup not in before.get("cgroups", []):
            _remove_cgroup(Path(cgroup), problems)
    for name, value in before.get("sysctls", {}).items():
        if value is not None and _read_sysctl(name) != value:
            try:
                set_sysctl(name, value)
            except OSError as exc:
                problems.append(f"could not set {name} back to {value}: {exc}")
    return problems


def running_kubelets() -> list[str]:
    """Kubelets running on this machine (as `pid (path)`), whoever started them: two kubelets would
    share the kubepods cgroups, the pod network and the iptables chains."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if (proc / "comm").read_text().strip() == "kubelet":
                found.append(f"{proc.name} ({os.readlink(proc / 'exe')})")
        except OSError:  # gone meanwhile, or not ours to read
            pass
    return sorted(found)


def node_folders_with_mounts() -> list[Path]:
    """Cluster folders (`<MIMS_HOME>/clusters/<name>`) that have mounts of kubelet or containerd on
    this machine. With no kubelet running they belong to a node that did not stop (its process was
    killed, its session lost): its iptables chains and pod sandboxes are still there, and a new node
    would take its pod addresses into their rules."""
    return mounted_node_folders(Path("/proc/mounts").read_text())


def mounted_node_folders(mounts: str) -> list[Path]:
    folders = set()
    for line in mounts.splitlines():
        # /proc/mounts writes a space in a path as \040 (tab, newline and backslash likewise in octal)
        mountpoint = re.sub(r"\\([0-7]{3})", lambda code: chr(int(code.group(1), 8)), line.split()[1])
        match = re.match(r"(/.*/clusters/[^/]+)/(kubelet|containerd)(/|$)", mountpoint)
        if match:
            folders.add(Path(match.group(1)))
    return sorted(folders)


def kill_pod_processes(containerd_address: str) -> None:
    """SIGKILLs every process in the kubepods cgroups (the containers) and the shims of the node's
    containerd (found by its socket address): stopping containerd leaves both running."""
    for _ in range(3):
        pids = {pid for cgroup in _kubepods_cgroups() for pid in _cgroup_pids(Path(cgroup))}
        pids |= _shim_pids(containerd_address)
        if not pids:
            return
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.3)


def unmount_under(dirs: list[Path], problems: list[str]) -> None:
    """Unmounts every mount point inside `dirs`, deepest first (overlay rootfs, netns, volumes)."""
    roots = [str(d.resolve()) if d.exists() else str(d) for d in dirs]
    points = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].encode().decode("unicode_escape")
        if any(point == r or point.startswith(r + "/") for r in roots):
            points.append(point)
    for point in sorted(set(points), key=len, reverse=True):
        done = subprocess.run(["umount", point], capture_output=True, text=True)
        if done.returncode != 0:
            lazy = subprocess.run(["umount", "-l", point], capture_output=True, text=True)
            if lazy.returncode != 0:
                problems.append(f"could not unmount {point}: {lazy.stderr.strip()}")


# --------------------------------------------------------------------------------------------------


def _read_sysctl(name: str) -> str | None:
    try:
        return Path("/proc/sys", name).read_text().strip()
    except OSError:
        return None


def _iptables(family: str, table: str) -> list[list[str]]:
    """[chain names, `-A` rule lines] of one table (lists, as they come back from state.json)."""
    done = subprocess.run([f"{family}-save", "-t", table], capture_output=True, text=True)
    if done.returncode != 0:
        return [[], []]
    lines = done.stdout.splitlines()
    chains = [line[1:].split()[0] for line in lines if line.startswith(":")]
    rules = [line for line in lines if line.startswith("-A ")]
    return [chains, rules]


def _restore_iptables(family: str, table: str, chains: set[str], rules: list[str], problems: list[str]) -> None:
    now_chains, now_rules = _iptables(family, table)
    added = Counter(now_rules) - Counter(rules)
    for rule in added.elements():  # rules in chains that stay; those in new chains go with them
        chain = rule.split()[1]
        if chain in chains:
            _run([family, "-w", "-t", table, "-D", *shlex.split(rule)[1:]], problems)
    new = [c for c in now_chains if c not in chains]
    for chain in new:
        _run([family, "-w", "-t", table, "-F", chain], problems)
    for chain in new:
        _run([family, "-w", "-t", table, "-X", chain], problems)


def _nft_tables() -> list[str]:
    if not shutil.which("nft"):
        return []
    done = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True)
    return [line.removeprefix("table ").strip() for line in done.stdout.splitlines() if line.startswith("table ")]


def _ipsets() -> list[str]:
    if not shutil.which("ipset"):
        return []
    done = subprocess.run(["ipset", "list", "-n"], capture_output=True, text=True)
    return done.stdout.split()


def _links() -> list[str]:
    done = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True)
    return [line.split(":")[1].strip().split("@")[0] for line in done.stdout.splitlines() if ":" in line]


def _kubepods_cgroups() -> list[str]:
    """The kubepods folders kubelet makes in each cgroup v1 controller (or the v2 root)."""
    found = []
    for top in (CGROUP_ROOT, *(p for p in CGROUP_ROOT.iterdir() if p.is_dir())) if CGROUP_ROOT.is_dir() else ():
        candidate = top / "kubepods"
        if candidate.is_dir():
            found.append(str(candidate))
    return sorted(set(found))


def _cgroup_pids(cgroup: Path) -> set[int]:
    pids = set()
    for procs in cgroup.rglob("cgroup.procs"):
        try:
            pids |= {int(p) for p in procs.read_text().split()}
        except (OSError, ValueError):
            pass
    return pids


def _shim_pids(containerd_address: str) -> set[int]:
    pids = set()
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                argv = (proc / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if argv[0].endswith(b"containerd-shim-runc-v2") and containerd_address.encode() in argv:
                pids.add(int(proc.name))
    return pids


def _remove_cgroup(cgroup: Path, problems: list[str]) -> None:
    """cgroup folders are removed leaf first with rmdir (their files cannot be deleted)."""
    for folder in sorted((p for p in cgroup.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True):
        try:
            folder.rmdir()
        except OSError:
            pass
    try:
        cgroup.rmdir()
    except OSError as exc:
        problems.append(f"could not remove cgroup {cgroup}: {exc}")


def _run(argv: list[str], problems: list[str], quiet_if_gone: bool = False) -> None:
    done = subprocess.run(argv, capture_output=True, text=True)
    if done.returncode != 0 and not (quiet_if_gone and "Cannot find device" in done.stderr):
        problems.append(f"`{' '.join(argv)}` failed: {done.stderr.strip()}")
