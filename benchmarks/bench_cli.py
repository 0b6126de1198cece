"""Wall time and peak memory of `mims validate` and `mims render` on the example blueprints,
against two baselines measured in the same run: a bare interpreter start, and importing the CLI.
Also prints the rendered resource totals per blueprint (and so per profile).

    python benchmarks/bench_cli.py [--runs N]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "blueprints" / "examples").glob("*.yaml"))


def measure(argv: list[str], runs: int) -> tuple[float, float]:
    """Median wall seconds and max peak RSS (MiB) over `runs` runs of a command."""
    times, peaks = [], []
    for _ in range(runs):
        start = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        _, status, usage = os.wait4(proc.pid, 0)
        times.append(time.perf_counter() - start)
        if os.waitstatus_to_exitcode(status) != 0:
            sys.exit(f"failed: {' '.join(argv)}\n{proc.stderr.read().decode()}")
        peaks.append(usage.ru_maxrss / 1024)  # Linux reports KiB
    return statistics.median(times), max(peaks)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    py = sys.executable
    rows = [
        ("baseline: python -c pass", *measure([py, "-c", "pass"], args.runs)),
        ("baseline: import mims.app", *measure([py, "-c", "import mims.app"], args.runs)),
    ]
    totals = {}
    with tempfile.TemporaryDirectory() as tmp:
        for example in EXAMPLES:
            rows.append((f"validate {example.name}", *measure([py, "-m", "mims", "validate", str(example)], args.runs)))
            out = Path(tmp) / example.stem
            rows.append(
                (
                    f"render {example.name}",
                    *measure([py, "-m", "mims", "render", str(example), "-o", str(out)], args.runs),
                )
            )
            summary = subprocess.run(
                [py, "-m", "mims", "render", str(example), "-o", str(out), "--json"],
                capture_output=True,
                text=True,
                check=True,
            )
            totals[example.name] = json.loads(summary.stdout)
    import_time = rows[1][1]
    print(f"{'command':44} {'median s':>9} {'over import':>12} {'peak MiB':>9}")
    for name, seconds, peak in rows:
        print(f"{name:44} {seconds:9.3f} {seconds - import_time:+12.3f} {peak:9.1f}")
    print()
    print(
        f"{'blueprint':24} {'profile':12} {'objects':>7} {'cpu req':>8} {'mem req GiB':>12} "
        f"{'mem lim GiB':>12} {'storage GiB':>12} {'pods':>5}"
    )
    for name, s in totals.items():
        t = s["total"]
        print(
            f"{name:24} {s['profile']:12} {s['objects']:7d} {t['requests']['cpu']:8.2f} "
            f"{t['requests']['memory_gib']:12.2f} {t['limits']['memory_gib']:12.2f} {t['storage_gib']:12.1f} "
            f"{t['pods']:5d}"
        )


if __name__ == "__main__":
    main()
