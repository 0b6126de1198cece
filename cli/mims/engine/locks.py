"""Stale locks of the file backend. A `pulumi` process killed mid-update (Ctrl-C twice, a CI job
cancelled) leaves `.pulumi/locks/<org>/<project>/<stack>/<id>.json` behind and every later run
fails with "the stack is currently locked". A lock whose process is gone from this host is stale."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path
from urllib.parse import urlparse

import pulumi.automation as auto

from mims.console import err


def clear_stale_lock(stack: auto.Stack) -> None:
    url = stack.workspace.env_vars.get("PULUMI_BACKEND_URL", "")
    if not url.startswith("file://"):
        return  # other backends release their own leases
    project = stack.workspace.project_settings().name
    folder = Path(urlparse(url).path) / ".pulumi" / "locks" / "organization" / project / stack.name
    for lock in folder.glob("*.json"):
        if _stale(lock):
            lock.unlink(missing_ok=True)
            err.print(f"removed a lock left by an interrupted run: {lock}", markup=False)


def _stale(lock: Path) -> bool:
    try:
        owner = json.loads(lock.read_text())
    except (OSError, ValueError):
        return False
    if owner.get("hostname") != socket.gethostname():
        return False
    try:
        os.kill(int(owner["pid"]), 0)
    except ProcessLookupError:
        return True
    except (PermissionError, KeyError, ValueError, TypeError):
        return False
    return False
