"""Start time and memory of a real node (`mims cluster create --node`) against the simulated cluster's
(`--sim`), measured in the same run on the same machine, with the toolchain already built: seconds
until a pod could be created, resident memory of the cluster's host processes, seconds to delete
(for the node: until the machine is as it was). Needs root and the real node's packages.

    python benchmarks/bench_node.py [--runs N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from mims.cluster import NodeCluster, SimCluster
from mims.cluster.local import LocalCluster


def measure(make: type[LocalCluster], root: Path) -> tuple[float, float, float]:
    """(create seconds, resident MiB, delete seconds) of one cluster made and deleted under `root`."""
    cluster = make("bench", root)
    started = time.monotonic()
    cluster.create()
    created = time.monotonic() - started
    time.sleep(5)  # let start-up work settle before reading memory
    rss = cluster.status().rss_mib or 0.0
    started = time.monotonic()
    cluster.delete()
    return created, rss, time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("a real node needs root")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for label, make in (("baseline: simulated cluster", SimCluster), ("real node", NodeCluster)):
            runs = [measure(make, Path(tmp) / "clusters") for _ in range(args.runs)]
            rows.append((label, *(statistics.median(r[i] for r in runs) for i in range(3))))
    print(f"{'cluster':30} {'create s':>9} {'resident MiB':>13} {'delete s':>9}")
    for label, created, rss, deleted in rows:
        print(f"{label:30} {created:9.1f} {rss:13.0f} {deleted:9.1f}")
    sim, node = rows
    print(
        f"\nthe real node: {node[1] - sim[1]:+.1f} s to create and {node[2] - sim[2]:+.0f} MiB over the simulated cluster"
    )


if __name__ == "__main__":
    main()
