"""`mims up`, `mims plan` and the cluster start against a hand-run baseline, each on a cluster of its
own (a simulated one; with `--node` the real node, one after the other), in one run:

- `mims cluster create --sim` (or `--node`, then `mims cluster load-images` of the `--images`
  archives, timed apart) in a fresh MIMS_HOME: wall time, and the RSS of its processes after the
  start and after the deployment;
- cold `mims up BLUEPRINT --yes` (fresh MIMS_HOME, the cluster already running), the no-op second
  `mims up --yes` and `mims plan` with nothing to change: wall time, and the peak RSS of the mims
  process tree (mims, pulumi, the provider plugin), sampled from /proc;
- the baseline, on a second fresh cluster: `mims render BLUEPRINT -o DIR`, the generated Secrets
  filled with mims's generator (not timed: containers do not start without them), then
  `kubectl apply --server-side` of the foundation folder and of the rest, then waiting as a person
  would (`kubectl rollout status` for every Deployment and StatefulSet, `kubectl wait` for Jobs to
  complete, unless suspended, and PVCs to be Bound): the time from the first apply to all ready;
- the ratios and the targets (cold up within 3x the baseline, no-op up and plan under 20 s);
- the one-time toolchain build, as the toolchain cache records it (`mims toolchain status`).

Clusters are deleted at the end, also when a step fails or the run is interrupted.

    python benchmarks/bench_engine.py [--blueprint FILE] [--json] [--logs DIR]
    sudo python benchmarks/bench_engine.py --node --images DIR   # DIR: python -m tests.images build all --out DIR
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_BLUEPRINT = ROOT / "blueprints" / "examples" / "small-city.yaml"
NODE_BLUEPRINT = ROOT / "tests" / "fixtures" / "real-node" / "blueprint.yaml"
PASSPHRASE = "bench-engine-passphrase"  # throw-away stacks in a throw-away MIMS_HOME
WAIT_TIMEOUT = "600s"
# The targets of the engine issue.
TARGET_COLD_RATIO = 3.0
TARGET_NOOP_S = 20.0
TARGET_PLAN_S = 20.0
# Cold from-scratch builds measured on the development machine before the cache held them (empty
# GOMODCACHE and GOCACHE, except kubectl: built after kubernetes, so with a warm GOCACHE).
EARLIER_COLD_BUILDS = {
    "pulumi": 304,
    "pulumi-kubernetes": 504,
    "kubernetes": 296,
    "etcd": 28,
    "kwok": 91,
    "kubectl": 174,
}
PAGE = os.sysconf("SC_PAGE_SIZE")


class StepFailed(Exception):
    pass


@dataclass
class Target:
    """The cluster each system gets: `mims cluster create` arguments, and the image archives loaded
    into it before anything is deployed (the real node cannot pull here)."""

    label: str
    create: list[str]
    images: list[Path] = field(default_factory=list)


# --------------------------------------------------------------------------------------------------
# Processes


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def _children_map() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry.name}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(")") + 2 :].split()[1])  # the name may hold spaces and parentheses
        children.setdefault(ppid, []).append(int(entry.name))
    return children


def _rss_bytes(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE
    except (OSError, IndexError, ValueError):
        return 0


class TreeSampler(threading.Thread):
    """Samples the summed RSS of a process and all its descendants every `interval` seconds."""

    def __init__(self, pid: int, interval: float = 0.25) -> None:
        super().__init__(daemon=True)
        self.pid, self.interval = pid, interval
        self.peak_bytes = 0
        self.peak_processes = 0
        self.samples = 0
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.is_set():
            children = _children_map()
            tree, todo = [], [self.pid]
            while todo:
                pid = todo.pop()
                tree.append(pid)
                todo.extend(children.get(pid, []))
            total = sum(_rss_bytes(pid) for pid in tree)
            self.samples += 1
            if total > self.peak_bytes:
                self.peak_bytes, self.peak_processes = total, len(tree)
            self._done.wait(self.interval)

    def stop(self) -> None:
        self._done.set()
        self.join()


@dataclass
class Run:
    label: str
    argv: list[str]
    seconds: float
    returncode: int
    stdout: str
    stderr: str
    max_rss_mib: float  # largest single process of the tree (wait4's ru_maxrss)
    tree_peak_mib: float | None  # summed RSS of the whole tree, sampled
    tree_processes: int | None
    load_before: str
    log: Path | None = None
    stderr_lines: list[tuple[float, str]] = field(default_factory=list)

    def first(self, suffix: str) -> float | None:
        """Seconds from the start to the first stderr line ending with `suffix` (say ": started")."""
        return next((at for at, line in self.stderr_lines if line.rstrip().endswith(suffix)), None)


class LineClock(threading.Thread):
    """Reads a pipe line by line, noting when each line arrived (seconds since `start`)."""

    def __init__(self, pipe, start: float) -> None:
        super().__init__(daemon=True)
        self.pipe, self.start_time = pipe, start
        self.lines: list[tuple[float, str]] = []

    def run(self) -> None:
        for raw in self.pipe:
            self.lines.append((time.perf_counter() - self.start_time, raw.decode(errors="replace")))
        self.pipe.close()


class Bench:
    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.runs: list[Run] = []
        self.kubectl = ""
        self._counter = 0

    def run(
        self,
        label: str,
        argv: list[str],
        env: dict[str, str],
        *,
        sample: bool = False,
        check: bool = True,
        ok_codes: tuple[int, ...] = (0,),
    ) -> Run:
        """Runs a command to its end, timed; stdout and stderr go to a log file per step."""
        load = loadavg()
        print(f"[{time.strftime('%H:%M:%S')}] {label} (load {load})", file=sys.stderr, flush=True)
        self._counter += 1
        log = self.logs / f"{self._counter:02d}-{label.replace(' ', '-').replace('/', '_')}.log"
        with tempfile.TemporaryFile() as out:
            start = time.perf_counter()
            proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, env=env)
            reader = LineClock(proc.stderr, start)
            reader.start()
            sampler = TreeSampler(proc.pid) if sample else None
            if sampler:
                sampler.start()
            code: int | None = None
            try:
                _, status, usage = os.wait4(proc.pid, 0)
                proc.returncode = code = os.waitstatus_to_exitcode(status)
            except BaseException:
                _interrupt(proc)
                raise
            finally:
                if sampler:
                    sampler.stop()
                seconds = time.perf_counter() - start
                reader.join(10)
                out.seek(0)
                stdout = out.read().decode(errors="replace")
                log.write_text(
                    f"$ {' '.join(argv)}\n# exit {code} after {seconds:.2f} s\n--- stdout\n{stdout}"
                    "\n--- stderr (seconds since the start)\n"
                    + "".join(f"{at:7.2f}  {line}" for at, line in reader.lines)
                )
        stderr = "".join(line for _, line in reader.lines)
        result = Run(
            label,
            argv,
            seconds,
            code,
            stdout,
            stderr,
            usage.ru_maxrss / 1024,
            sampler.peak_bytes / 2**20 if sampler else None,
            sampler.peak_processes if sampler else None,
            load,
            log,
            reader.lines,
        )
        self.runs.append(result)
        print(f"    {seconds:.2f} s, exit {code}", file=sys.stderr, flush=True)
        if check and code not in ok_codes:
            tail = "\n".join(("    " + line) for line in (stderr or stdout).rstrip().splitlines()[-30:])
            raise StepFailed(f"{label} failed (exit {code}; log {log}):\n{tail}")
        return result

    def parallel(self, label: str, commands: list[list[str]], env: dict[str, str]) -> float:
        """Starts every command at once and waits for all; the wall time until the last one ends."""
        load = loadavg()
        print(
            f"[{time.strftime('%H:%M:%S')}] {label}: {len(commands)} commands (load {load})",
            file=sys.stderr,
            flush=True,
        )
        start = time.perf_counter()
        procs = [
            subprocess.Popen(
                c, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, text=True
            )
            for c in commands
        ]
        outputs = []
        try:
            for p in procs:
                outputs.append(p.communicate()[0])
        except BaseException:
            for p in procs:
                _interrupt(p)
            raise
        seconds = time.perf_counter() - start
        self._counter += 1
        log = self.logs / f"{self._counter:02d}-{label.replace(' ', '-')}.log"
        log.write_text(
            "".join(f"$ {' '.join(c)}\n# exit {p.returncode}\n{o}\n" for c, p, o in zip(commands, procs, outputs))
        )
        failed = [(c, o) for c, p, o in zip(commands, procs, outputs) if p.returncode != 0]
        if failed:
            raise StepFailed(
                f"{label}: {len(failed)} of {len(commands)} failed (log {log}), first: "
                f"{' '.join(failed[0][0])}\n    {failed[0][1].strip()}"
            )
        print(f"    {seconds:.2f} s", file=sys.stderr, flush=True)
        return seconds


def _interrupt(proc: subprocess.Popen) -> None:
    """Ctrl-C for a step still running: SIGINT (mims cancels its Pulumi operations), then after 30 s
    SIGKILL for it and every descendant it had. Pulumi starts its provider plugins in process groups
    of their own, so the tree is collected from /proc (and checked by start time before the kill)."""
    if proc.poll() is not None:
        return
    tree = _descendants(proc.pid)
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        tree |= _descendants(proc.pid)
        proc.kill()
        proc.wait()
    for pid, started in tree:
        if _start_time(pid) == started:
            try:
                os.kill(pid, signal.SIGKILL)
                print(f"    killed leftover process {pid}", file=sys.stderr)
            except OSError:
                pass


def _start_time(pid: int) -> str | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat[stat.rindex(")") + 2 :].split()[19]  # field 22: start time in clock ticks


def _descendants(root: int) -> set[tuple[int, str | None]]:
    children = _children_map()
    found, todo = set(), list(children.get(root, []))
    while todo:
        pid = todo.pop()
        found.add((pid, _start_time(pid)))
        todo.extend(children.get(pid, []))
    return found


def _on_sigterm(_signum, _frame) -> None:
    raise KeyboardInterrupt  # unwinds like Ctrl-C, so the clusters are deleted


# --------------------------------------------------------------------------------------------------
# Clusters


@dataclass
class System:
    """One measured system: a MIMS_HOME with one simulated cluster in it."""

    name: str
    home: Path
    env: dict[str, str] = field(default_factory=dict)
    created: bool = False

    def mims(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "mims", *args]

    def kubeconfig(self) -> Path:
        return self.home / "clusters" / "mims" / "kubeconfig"


def make_system(name: str, parent: Path) -> System:
    home = parent / name
    home.mkdir()
    env = {
        k: v
        for k, v in os.environ.items()
        if k
        not in (
            "KUBECONFIG",
            "MIMS_KUBECONFIG",
            "MIMS_CONTEXT",
            "MIMS_BLUEPRINT",
            "MIMS_BACKEND",
            "PULUMI_BACKEND_URL",
            "PULUMI_CONFIG_PASSPHRASE",
        )
    }
    env.update(
        {
            "MIMS_HOME": str(home),
            "MIMS_PASSPHRASE": PASSPHRASE,
            "NO_COLOR": "1",
            "KUBECONFIG": str(home / "clusters" / "mims" / "kubeconfig"),
        }
    )
    return System(name, home, env)


def cluster_memory(bench: Bench, system: System, label: str) -> dict:
    run = bench.run(f"{system.name} cluster status ({label})", system.mims("cluster", "status", "--json"), system.env)
    status = json.loads(run.stdout)
    if status.get("state") != "running":
        raise StepFailed(f"{system.name}: cluster is {status.get('state')} after {label}")
    return {"total_mib": status["rss_mib"], "processes": {p["name"]: p["rss_mib"] for p in status["processes"]}}


def create_cluster(bench: Bench, system: System, target: Target) -> dict:
    system.created = True  # from here on it must be deleted, whatever happens
    run = bench.run(
        f"{system.name} cluster create", system.mims("cluster", "create", *target.create, "--json"), system.env
    )
    reported = json.loads(run.stdout).get("seconds")
    result = {"seconds": round(run.seconds, 2), "reported_seconds": reported}
    if target.images:
        loaded = bench.run(
            f"{system.name} cluster load-images",
            system.mims("cluster", "load-images", *map(str, target.images)),
            system.env,
        )
        result["load_images_seconds"] = round(loaded.seconds, 2)
    result["memory_after_start"] = cluster_memory(bench, system, "after start")
    return result


def delete_cluster(bench: Bench, system: System) -> float | None:
    if not system.created:
        return None
    try:
        run = bench.run(
            f"{system.name} cluster delete", system.mims("cluster", "delete", "--yes"), system.env, check=False
        )
        if run.returncode == 0:
            system.created = False
            return round(run.seconds, 2)
    except Exception as exc:  # cleanup: report and go on to the fallback
        print(f"    cluster delete failed: {exc}", file=sys.stderr)
    _kill_cluster_processes(system)
    return None


def _kill_cluster_processes(system: System) -> None:
    """Fallback when `mims cluster delete` fails: stop the processes its state.json names, by id."""
    state_file = system.home / "clusters" / "mims" / "state.json"
    try:
        state = json.loads(state_file.read_text())
    except (OSError, ValueError):
        return
    for name, entry in state.get("processes", {}).items():
        pid, binary = entry.get("pid"), entry.get("binary", "")
        try:
            if Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0] == binary.encode():
                os.kill(pid, signal.SIGKILL)
                print(f"    killed {name} ({pid})", file=sys.stderr)
        except (OSError, TypeError):
            pass
    system.created = False


# --------------------------------------------------------------------------------------------------
# The two systems


def measure_mims(bench: Bench, system: System, blueprint: Path, target: Target) -> dict:
    result = {"cluster": create_cluster(bench, system, target)}
    cold = bench.run("mims up (cold)", system.mims("up", str(blueprint), "--yes", "--json"), system.env, sample=True)
    summary = json.loads(cold.stdout)
    result["cold_up"] = _summary(cold) | {
        "changes": summary["changes"],
        "stacks": {s["name"]: s["seconds"] for s in summary["stacks"]},
    }
    result["cluster"]["memory_after_up"] = cluster_memory(bench, system, "after up")
    status_run = bench.run("mims status", system.mims("status", str(blueprint), "--json"), system.env)
    status = json.loads(status_run.stdout)
    result["status_seconds"] = round(status_run.seconds, 2)
    waiting = [f"{w['namespace']}/{w['kind']}/{w['name']}: {w['ready']}" for w in status["workloads"] if not w["ok"]]
    result["ready_after_up"] = {"ready": status["ready"], "workloads": len(status["workloads"]), "not_ready": waiting}
    noop = bench.run("mims up (no-op)", system.mims("up", str(blueprint), "--yes", "--json"), system.env, sample=True)
    summary = json.loads(noop.stdout)
    result["noop_up"] = _summary(noop) | {
        "changes": summary["changes"],
        "stacks": {s["name"]: s["seconds"] for s in summary["stacks"]},
    }
    plan = bench.run(
        "mims plan",
        system.mims("plan", str(blueprint), "--detailed-exitcode"),
        system.env,
        sample=True,
        ok_codes=(0, 2),
    )
    result["plan"] = _summary(plan) | {"changes": plan.returncode == 2}
    result["warnings"] = _warnings([cold, noop, plan])
    return result


def _summary(run: Run) -> dict:
    """Wall time, memory, and where the time went: before the first stack started (imports, render,
    cluster check, secrets) and after the last one finished (the summary)."""
    first = run.first(": started")
    done = [at for at, line in run.stderr_lines if ": done in " in line]
    return {
        "seconds": round(run.seconds, 2),
        "load_before": run.load_before,
        "before_first_stack_seconds": round(first, 2) if first is not None else None,
        "after_last_stack_seconds": round(run.seconds - max(done), 2) if done else None,
        "tree_peak_rss_mib": round(run.tree_peak_mib, 1) if run.tree_peak_mib is not None else None,
        "tree_processes_at_peak": run.tree_processes,
        "largest_process_rss_mib": round(run.max_rss_mib, 1),
    }


def _warnings(runs: list[Run]) -> list[str]:
    """stderr lines of the mims commands that look like problems (for the report, not judged here)."""
    found = []
    for run in runs:
        for line in run.stderr.splitlines():
            low = line.lower()
            if any(word in low for word in ("warning", "error", "failed", "traceback", "timed out", "retry")):
                found.append(f"{run.label}: {line.strip()}")
    return found


def measure_baseline(bench: Bench, system: System, blueprint: Path, target: Target, work: Path) -> dict:
    result = {"cluster": create_cluster(bench, system, target)}
    rendered = work / "rendered"
    render = bench.run("mims render", system.mims("render", str(blueprint), "-o", str(rendered)), system.env)
    result["render_seconds"] = round(render.seconds, 2)
    _fill_generated_secrets(rendered)
    objects = _rendered_objects(rendered)
    folders = sorted(d for d in rendered.iterdir() if d.is_dir() and d.name != "foundation" and any(d.glob("*.yaml")))
    kubectl, env = bench.kubectl, system.env
    started = time.perf_counter()
    steps = {}
    steps["apply foundation"] = bench.run(
        "kubectl apply foundation",
        [kubectl, "apply", "--server-side", "-f", str(rendered / "foundation"), "--recursive"],
        env,
    ).seconds
    apply_rest = [kubectl, "apply", "--server-side", "--recursive"]
    for folder in folders:
        apply_rest += ["-f", str(folder)]
    steps["apply the rest"] = bench.run("kubectl apply rest", apply_rest, env).seconds
    workloads = [
        (o["metadata"]["namespace"], o["kind"].lower(), o["metadata"]["name"])
        for o in objects
        if o["kind"] in ("Deployment", "StatefulSet")
    ]
    # A suspended Job (the real-node blueprint's upload to a broker that does not run) never completes.
    jobs = [
        (o["metadata"]["namespace"], o["metadata"]["name"])
        for o in objects
        if o["kind"] == "Job" and not o["spec"].get("suspend")
    ]
    waits = [
        [kubectl, "rollout", "status", f"{kind}/{name}", "-n", ns, f"--timeout={WAIT_TIMEOUT}"]
        for ns, kind, name in workloads
    ]
    waits += [
        [kubectl, "wait", "--for=condition=complete", f"job/{name}", "-n", ns, f"--timeout={WAIT_TIMEOUT}"]
        for ns, name in jobs
    ]
    steps["rollouts and jobs"] = bench.parallel("kubectl rollout status and wait job", waits, env)
    # PVCs exist once the StatefulSets made them, that is after their rollouts.
    pvc_namespaces = sorted(
        {
            o["metadata"]["namespace"]
            for o in objects
            # A StatefulSet scaled to 0 (the real-node blueprint's overrides) makes no PVC.
            if o["kind"] == "StatefulSet" and o["spec"].get("volumeClaimTemplates") and o["spec"].get("replicas", 1)
        }
        | {o["metadata"]["namespace"] for o in objects if o["kind"] == "PersistentVolumeClaim"}
    )
    pvc_waits = [
        [kubectl, "wait", "--for=jsonpath={.status.phase}=Bound", "pvc", "--all", "-n", ns, f"--timeout={WAIT_TIMEOUT}"]
        for ns in pvc_namespaces
    ]
    steps["pvcs bound"] = bench.parallel("kubectl wait pvc bound", pvc_waits, env) if pvc_waits else 0.0
    result["apply_to_ready_seconds"] = round(time.perf_counter() - started, 2)
    result["steps"] = {k: round(v, 2) for k, v in steps.items()}
    result["objects"] = len(objects)
    result["waited_for"] = {
        "rollouts": len(workloads),
        "jobs": len(jobs),
        "pvc_namespaces": len(pvc_namespaces),
    }
    result["cluster"]["memory_after_apply"] = cluster_memory(bench, system, "after apply")
    return result


def _fill_generated_secrets(rendered: Path) -> None:
    """What a person applying the rendered files must do first (not timed): give every generated
    Secret its values, here with mims's own generator. Throw-away values for a throw-away cluster,
    in the benchmark's private work folder."""
    from mims.secrets import SecretValues, is_generated

    values = SecretValues.from_dict(None)
    for path in sorted(rendered.rglob("*.yaml")):
        docs = [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
        if not any(doc["kind"] == "Secret" and is_generated(doc) for doc in docs):
            continue
        for doc in docs:
            if doc["kind"] == "Secret" and is_generated(doc):
                doc["stringData"], _ = values.fill(doc)
        path.write_text(yaml.safe_dump_all(docs, sort_keys=False))
        path.chmod(0o600)


def _rendered_objects(rendered: Path) -> list[dict]:
    objects = []
    for path in sorted(rendered.rglob("*.yaml")):
        objects += [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
    return objects


# --------------------------------------------------------------------------------------------------
# Machine and toolchain


def machine() -> dict:
    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    models = [line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")]
    meminfo = {
        line.split(":")[0]: line.split(":")[1].strip() for line in Path("/proc/meminfo").read_text().splitlines()
    }
    os_name = platform.platform()
    try:
        release = dict(line.split("=", 1) for line in Path("/etc/os-release").read_text().splitlines() if "=" in line)
        os_name = f"{release.get('PRETTY_NAME', '').strip(chr(34))}, kernel {platform.release()}"
    except OSError:
        pass
    go = shutil.which("go")
    go_version = subprocess.run([go, "version"], capture_output=True, text=True).stdout.strip() if go else "not on PATH"
    return {
        "cpu_model": models[0] if models else platform.processor(),
        "cpus": os.cpu_count(),
        "memory_gib": round(int(meminfo["MemTotal"].split()[0]) / 2**20, 1),
        "os": os_name,
        "python": platform.python_version(),
        "go": go_version,
    }


def toolchain_builds(bench: Bench) -> dict:
    run = bench.run(
        "mims toolchain status", [sys.executable, "-m", "mims", "toolchain", "status", "--json"], dict(os.environ)
    )
    status = json.loads(run.stdout)
    tools = {}
    for tool in status["tools"]:
        built_at = None
        try:
            built_at = json.loads((Path(tool["dir"]) / "tool.json").read_text()).get("built_at")
        except (OSError, ValueError):
            pass
        tools[tool["name"]] = {
            "version": tool["version"],
            "state": tool.get("state"),
            "recorded_build_seconds": tool.get("build_seconds"),
            "built_at": built_at,
            "earlier_cold_seconds": EARLIER_COLD_BUILDS.get(tool["name"]),
        }
    return {"toolchain_dir": status["toolchain_dir"], "tools": tools}


# --------------------------------------------------------------------------------------------------
# Report


def targets(mims: dict, baseline: dict) -> list[dict]:
    ratio = mims["cold_up"]["seconds"] / baseline["apply_to_ready_seconds"]
    return [
        {
            "target": f"cold mims up within {TARGET_COLD_RATIO:g}x the baseline",
            "value": f"{ratio:.2f}x",
            "pass": ratio <= TARGET_COLD_RATIO,
        },
        {
            "target": f"no-op mims up under {TARGET_NOOP_S:g} s",
            "value": f"{mims['noop_up']['seconds']:.1f} s",
            "pass": mims["noop_up"]["seconds"] < TARGET_NOOP_S and mims["noop_up"]["changes"] == 0,
        },
        {
            "target": f"mims plan under {TARGET_PLAN_S:g} s",
            "value": f"{mims['plan']['seconds']:.1f} s",
            "pass": mims["plan"]["seconds"] < TARGET_PLAN_S and not mims["plan"]["changes"],
        },
    ]


def print_report(report: dict) -> None:
    m, b = report["mims"], report["baseline"]
    print(
        f"blueprint {report['blueprint']}; machine: {report['machine']['cpus']} x {report['machine']['cpu_model']}, "
        f"{report['machine']['memory_gib']} GiB; load average at start {report['load_start']}, "
        f"at end {report['load_end']}"
    )
    print()
    print(
        f"{'measure':54} {'seconds':>8} {'1st stack at':>13} {'after last':>11} {'tree peak MiB':>14} "
        f"{'load before':>16}"
    )
    rows = [
        (f"cluster start (mims cluster create {report['cluster']})", m["cluster"], None),
        ("cluster start, baseline's cluster", b["cluster"], None),
        *(
            [
                (
                    "image archives loaded (mims cluster load-images)",
                    {"seconds": m["cluster"]["load_images_seconds"]},
                    None,
                )
            ]
            if "load_images_seconds" in m["cluster"]
            else []
        ),
        (f"cold mims up ({m['cold_up']['changes']} changes)", m["cold_up"], m["cold_up"]),
        (f"no-op mims up ({m['noop_up']['changes']} changes)", m["noop_up"], m["noop_up"]),
        (f"mims plan ({'changes' if m['plan']['changes'] else 'no changes'})", m["plan"], m["plan"]),
        ("mims status (after the cold up)", {"seconds": m["status_seconds"]}, None),
        ("baseline: mims render -o DIR (not counted below)", {"seconds": b["render_seconds"]}, None),
        ("baseline: kubectl apply --server-side to all ready", {"seconds": b["apply_to_ready_seconds"]}, None),
    ]
    for name, data, sampled in rows:
        sampled = sampled or {}
        peak = f"{sampled['tree_peak_rss_mib']:.0f}" if sampled.get("tree_peak_rss_mib") else ""
        first = f"{sampled['before_first_stack_seconds']:.1f}" if sampled.get("before_first_stack_seconds") else ""
        last = f"{sampled['after_last_stack_seconds']:.1f}" if sampled.get("after_last_stack_seconds") else ""
        print(
            f"{name:54} {data['seconds']:8.2f} {first:>13} {last:>11} {peak:>14} {sampled.get('load_before', ''):>16}"
        )
    for step, seconds in b["steps"].items():
        print(f"  baseline step: {step:39} {seconds:8.2f}")
    print()
    print(
        "cold mims up per stack (seconds, as mims up --json reports them): "
        + ", ".join(f"{k} {v:.1f}" for k, v in m["cold_up"]["stacks"].items())
    )
    print("no-op mims up per stack: " + ", ".join(f"{k} {v:.1f}" for k, v in m["noop_up"]["stacks"].items()))
    ready = m["ready_after_up"]
    print(
        f"after cold up, mims status: {'all' if ready['ready'] else 'NOT all'} of {ready['workloads']} workloads "
        f"and volumes ready" + (f"; waiting: {', '.join(ready['not_ready'])}" if ready["not_ready"] else "")
    )
    print()
    print(f"{'cluster memory (RSS MiB)':34} {'total':>7}  per process")
    for label, mem in (
        ("mims cluster after start", m["cluster"]["memory_after_start"]),
        ("mims cluster after cold up", m["cluster"]["memory_after_up"]),
        ("baseline cluster after start", b["cluster"]["memory_after_start"]),
        ("baseline cluster after apply", b["cluster"]["memory_after_apply"]),
    ):
        per = ", ".join(f"{k} {v:.0f}" for k, v in mem["processes"].items() if v is not None)
        print(f"{label:34} {mem['total_mib']:7.0f}  {per}")
    print()
    print(
        f"ratio cold mims up / baseline: {report['ratios']['cold_up_over_baseline']:.2f}x; "
        f"cold mims up / (render + baseline): {report['ratios']['cold_up_over_render_and_baseline']:.2f}x"
    )
    for t in report["targets"]:
        print(f"{'PASS' if t['pass'] else 'FAIL'}  {t['target']}: {t['value']}")
    print()
    print(
        "one-time toolchain build, as the cache records it (tool.json build_seconds; a rebuild with warm "
        "Go caches records less than a cold build):"
    )
    for name, t in report["toolchain"]["tools"].items():
        recorded = f"{t['recorded_build_seconds']:.1f} s" if t["recorded_build_seconds"] is not None else "-"
        earlier = f"{t['earlier_cold_seconds']} s" if t["earlier_cold_seconds"] is not None else "-"
        print(
            f"  {name:18} {t['version']:9} recorded {recorded:>9} (built {t['built_at']}); "
            f"cold build measured earlier: {earlier}"
        )
    if m["warnings"]:
        print()
        print("mims stderr lines mentioning warnings or errors:")
        for line in m["warnings"]:
            print(f"  {line}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description="Times cluster start, cold and no-op `mims up` and `mims plan` against kubectl apply "
        "on simulated clusters or the real node (see the module docstring)."
    )
    parser.add_argument(
        "--blueprint",
        type=Path,
        help="Blueprint to deploy (default: blueprints/examples/small-city.yaml).",
    )
    parser.add_argument("--json", action="store_true", help="Print the figures as JSON.")
    parser.add_argument("--logs", type=Path, help="Keep every command's output in this folder.")
    parser.add_argument(
        "--node",
        action="store_true",
        help="On the real node (root; one node at a time), blueprint tests/fixtures/real-node/blueprint.yaml by default.",
    )
    parser.add_argument("--images", type=Path, help="With --node: folder of image archives (*.tar) to load first.")
    args = parser.parse_args()
    blueprint = (args.blueprint or (NODE_BLUEPRINT if args.node else DEFAULT_BLUEPRINT)).resolve()

    from mims.blueprint import load_blueprint
    from mims.charts.render import Renderer
    from mims.engine.deployment import sim_node_for
    from mims.toolchain import install

    if args.node:
        if os.geteuid() != 0:
            sys.exit("the real node needs root")
        images = sorted(args.images.glob("*.tar")) if args.images else []
        target = Target("--node", ["--node"], images)
    else:
        cpu, memory = sim_node_for(Renderer().render(load_blueprint(blueprint)))  # the node `mims up` would create
        target = Target(f"--sim --cpu {cpu} --memory {memory}", ["--sim", "--cpu", cpu, "--memory", memory])
    work = Path(tempfile.mkdtemp(prefix="mims-bench-engine-"))
    logs = args.logs or work / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    bench = Bench(logs)
    bench.kubectl = str(install(["kubectl"])["kubectl"]["kubectl"])
    report: dict = {
        "date": time.strftime("%Y-%m-%d %H:%M %Z"),
        "blueprint": str(blueprint.relative_to(ROOT)) if blueprint.is_relative_to(ROOT) else str(blueprint),
        "cluster": target.label,
        "machine": machine(),
        "load_start": loadavg(),
    }
    systems = [make_system("mims", work), make_system("baseline", work)]
    failed = False
    signal.signal(signal.SIGTERM, _on_sigterm)  # a CI timeout: the finally below still deletes the clusters
    try:
        report["toolchain"] = toolchain_builds(bench)
        report["mims"] = measure_mims(bench, systems[0], blueprint, target)
        report["mims"]["cluster"]["delete_seconds"] = delete_cluster(bench, systems[0])  # one cluster at a time
        report["baseline"] = measure_baseline(bench, systems[1], blueprint, target, work)
        report["baseline"]["cluster"]["delete_seconds"] = delete_cluster(bench, systems[1])
        m, b = report["mims"], report["baseline"]
        report["ratios"] = {
            "cold_up_over_baseline": round(m["cold_up"]["seconds"] / b["apply_to_ready_seconds"], 2),
            "cold_up_over_render_and_baseline": round(
                m["cold_up"]["seconds"] / (b["apply_to_ready_seconds"] + b["render_seconds"]), 2
            ),
        }
        report["targets"] = targets(m, b)
    except (StepFailed, KeyboardInterrupt) as exc:
        failed = True
        print(f"benchmark failed: {str(exc) or 'interrupted'}", file=sys.stderr)
    except BaseException:
        failed = True
        raise
    finally:
        for system in systems:
            delete_cluster(bench, system)
        report["load_end"] = loadavg()
        (logs / "report.json").write_text(json.dumps(report, indent=2) + "\n")
        if failed:
            print(f"kept {work} (MIMS_HOMEs and the rendered folder) and the logs in {logs}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)  # the logs too, unless --logs put them elsewhere
    if failed:
        sys.exit(1)
    if args.json:
        json.dump(report, sys.stdout, indent=2)
        print()
    else:
        print_report(report)


if __name__ == "__main__":
    main()
