"""What a `pulumi` process killed mid-update (Ctrl-C twice, a CI job cancelled) leaves in the file
backend. A lock, `.pulumi/locks/<org>/<project>/<stack>/<id>.json`, and every later run fails with
"the stack is currently locked": a lock whose process is gone from this host is stale. And, if it
died while writing a state file, an empty attributes file beside it (below)."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path
from urllib.parse import urlparse

import pulumi.automation as auto

from mims.progress import Progress


def repair_attributes(backend_url: str, progress: Progress) -> None:
    """The file backend (gocloud's fileblob) writes a state file's attributes, `<file>.attrs` (content
    type and checksum), in place before it renames the new file into place: a process killed between
    the two leaves an empty `.attrs`, and every later command on that stack fails with "failed to
    load checkpoint: EOF". Without its `.attrs` a file is read with default attributes, so an
    unreadable one is removed. Backups are never read back, so they are left alone."""
    if not backend_url.startswith("file://"):
        return
    root = Path(urlparse(backend_url).path) / ".pulumi"
    for attrs in root.rglob("*.attrs"):
        if attrs.relative_to(root).parts[0] == "backups":
            continue
        try:
            json.loads(attrs.read_text())
        except ValueError:
            attrs.unlink(missing_ok=True)
            progress.say(f"removed the unreadable attributes of a state file an interrupted run was writing: {attrs}")
        except OSError:
            continue


def clear_stale_lock(stack: auto.Stack, progress: Progress) -> None:
    for lock in _locks(stack):
        if _stale(lock):
            lock.unlink(missing_ok=True)
            progress.say(f"removed a lock left by an interrupted run: {lock}")


def locked(stack: auto.Stack) -> bool:
    """Whether a file-backend lock exists for the stack (a run in progress, or a killed one)."""
    return bool(_locks(stack))


def _locks(stack: auto.Stack) -> list[Path]:
    url = stack.workspace.env_vars.get("PULUMI_BACKEND_URL", "")
    if not url.startswith("file://"):
        return []  # other backends release their own leases
    project = stack.workspace.project_settings().name
    folder = Path(urlparse(url).path) / ".pulumi" / "locks" / "organization" / project / stack.name
    return sorted(folder.glob("*.json"))


def _stale(lock: Path) -> bool:
    try:
        owner = json.loads(lock.read_text())
    except (OSError, ValueError):
        return False
    if owner.get("hostname") != socket.gethostname():
        return False
    try:
        pid = int(owner["pid"])
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except (PermissionError, KeyError, ValueError, TypeError):
        return False
    return _dead_or_reused(pid)


def _dead_or_reused(pid: int) -> bool:
    """A process that exists but is a zombie (killed, not yet reaped: its parent was killed too) or
    that no longer runs `pulumi` (the id was reused) holds no lock. Without /proc: assume it does."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0]
    except OSError:
        return Path("/proc/self").exists()  # with /proc it has gone since; without, nothing to tell
    state = stat.rsplit(")", 1)[-1].split()[0] if ")" in stat else ""
    return state in ("Z", "X") or not Path(command.decode(errors="replace")).name.startswith("pulumi")
