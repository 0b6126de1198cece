"""Host processes a local cluster runs (etcd, the API server, kwok or kubelet ...): started in their own
sessions so they outlive the `mims` that started them and a Ctrl-C does not stop them half-way,
recognised again by pid and binary, stopped in reverse start order."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from mims.errors import ClusterError

STOP_TIMEOUT = 10.0
READY_TIMEOUT = 90.0  # generous: a loaded 2-core CI machine
TAIL_LINES = 15

# Children started by this process, so they are reaped (not left as zombies) when they stop.
_children: dict[int, subprocess.Popen] = {}


@dataclass(frozen=True)
class ProcessStatus:
    name: str
    pid: int | None
    running: bool
    rss_mib: float | None
    log: Path


class Supervisor:
    """Starts a cluster's processes with their output in `logs/<name>.log`, records them in the state
    dict it is given, and waits for conditions while watching that none of them exits."""

    def __init__(self, label: str, workdir: Path, logs: Path, save: Callable[[dict], None]) -> None:
        self.label = label  # "simulated cluster `mims`": the start of every error message
        self.workdir = workdir
        self.logs = logs
        self.save = save

    def spawn(self, name: str, argv: list, state: dict, env: dict[str, str] | None = None) -> None:
        argv = [str(a) for a in argv]
        log_path = self.logs / f"{name}.log"
        with log_path.open("ab") as log:
            log.write(f"\n--- {time.strftime('%Y-%m-%dT%H:%M:%S%z')} mims starts: {' '.join(argv)}\n".encode())
            log.flush()
            try:
                child = subprocess.Popen(
                    argv,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=self.workdir,
                    start_new_session=True,
                    env=None if env is None else {**os.environ, **env},
                )
            except OSError as exc:
                raise ClusterError(f"{self.label}: cannot start {name} ({argv[0]}): {exc}") from exc
        _children[child.pid] = child
        state["processes"][name] = {"pid": child.pid, "binary": argv[0]}
        self.save(state)

    def wait(self, what: str, component: str, state: dict, check: Callable[[], bool], timeout: float = 0) -> None:
        """Polls `check` until it holds; fails at once, with the log's last lines, when a started
        process exits, and names `component`'s log when time runs out."""
        timeout = timeout or READY_TIMEOUT
        deadline = time.monotonic() + timeout
        while True:
            for name, entry in state["processes"].items():
                if not is_running(entry["pid"], entry["binary"]):
                    raise self.failure(f"{name} exited while waiting for {what}", name)
            try:
                if check():
                    return
            except (OSError, ValueError, KeyError, TypeError):
                pass  # not answering yet, or answering with something unexpected: retry
            if time.monotonic() > deadline:
                raise self.failure(f"timed out after {timeout:.0f} s waiting for {what}", component)
            time.sleep(0.2)

    def failure(self, what: str, component: str) -> ClusterError:
        log = self.logs / f"{component}.log"
        try:
            lines = log.read_text(errors="replace").splitlines()[-TAIL_LINES:]
        except OSError:
            lines = []
        tail = "".join(f"\n  {line}" for line in lines)
        return ClusterError(
            f"{self.label}: {what}; {component} log {log}" + (f" ends with:{tail}" if tail else " is empty")
        )

    def statuses(self, state: dict, components: Iterable[str]) -> list[ProcessStatus]:
        result = []
        for name in components:
            entry = state.get("processes", {}).get(name)
            running = bool(entry) and is_running(entry["pid"], entry["binary"])
            result.append(
                ProcessStatus(
                    name,
                    entry["pid"] if entry else None,
                    running,
                    rss_mib(entry["pid"]) if running else None,
                    self.logs / f"{name}.log",
                )
            )
        return result


def alive(state: dict) -> dict[str, dict]:
    return {
        name: entry for name, entry in state.get("processes", {}).items() if is_running(entry["pid"], entry["binary"])
    }


def is_running(pid: int, binary: str) -> bool:
    """True when `pid` is alive and still runs `binary` (after a reboot the id may be another's)."""
    child = _children.get(pid)
    if child is not None:
        return child.poll() is None
    proc = Path(f"/proc/{pid}")
    if Path("/proc/self").exists():
        try:
            cmdline = (proc / "cmdline").read_bytes()  # empty for a zombie
        except OSError:
            return False
        return cmdline.split(b"\0")[0] == binary.encode()
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def rss_mib(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return None


def terminate(processes: dict[str, dict], order: Iterable[str]) -> None:
    """SIGTERM in reverse start `order`, each waited for; SIGKILL after STOP_TIMEOUT."""
    for name in reversed(list(order)):
        entry = processes.get(name)
        if not entry:
            continue
        pid, binary = entry["pid"], entry["binary"]
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                break
            deadline = time.monotonic() + STOP_TIMEOUT
            while is_running(pid, binary) and time.monotonic() < deadline:
                time.sleep(0.05)
            if not is_running(pid, binary):
                break
        _children.pop(pid, None)


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """Distinct free ports: all sockets stay open until every port is picked."""
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind((host, 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()
