"""Shared fixtures: the example blueprints, rendering helpers, and temporary blueprint files."""

from __future__ import annotations

import getpass
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from mims import paths
from mims.app import main
from mims.blueprint import load_blueprint
from mims.charts.render import Renderer, Rendering

REPO = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).parent / "fixtures"
EXAMPLES = sorted((paths.blueprints_dir() / "examples").glob("*.yaml"))


@pytest.fixture(scope="session")
def renderer() -> Renderer:
    return Renderer()


@pytest.fixture(scope="session")
def rendered_examples(renderer: Renderer) -> dict[str, Rendering]:
    return {path.stem: renderer.render(load_blueprint(path)) for path in EXAMPLES}


@pytest.fixture
def write_blueprint(tmp_path: Path):
    """Write a blueprint (a dict, merged over the small-city example, or raw text) and return its path."""

    def write(content: dict | str, name: str = "blueprint.yaml") -> Path:
        path = tmp_path / name
        if isinstance(content, str):
            path.write_text(content)
        else:
            base = yaml.safe_load((paths.blueprints_dir() / "examples" / "small-city.yaml").read_text())
            path.write_text(yaml.safe_dump(merge(base, content), sort_keys=False))
        examples_algorithms = paths.blueprints_dir() / "examples" / "algorithms"
        if not (tmp_path / "algorithms").exists() and examples_algorithms.is_dir():
            (tmp_path / "algorithms").symlink_to(examples_algorithms)
        return path

    return write


def delete_nodes_of_killed_runs() -> None:
    """A test run that was killed (a lost session, a timeout) leaves its real node's mounts, pods and
    iptables chains behind, and mims refuses a new node beside them. Those under pytest's temporary
    folders are this suite's own: deleted as a person would, with `mims cluster delete`."""
    from mims.cluster import NodeCluster, host

    if host.running_kubelets():
        return  # a live node, maybe not the suite's: creating one reports it
    pytest_folders = Path(tempfile.gettempdir()) / f"pytest-of-{getpass.getuser()}"
    for folder in host.node_folders_with_mounts():
        if pytest_folders in folder.parents:
            NodeCluster(folder.name, folder.parent).delete()


def require_tool(name: str) -> str:
    """Path of an external checker: `$MIMS_<NAME>` or PATH. scripts/test installs every one, so in CI
    a missing tool fails the test; on a developer's machine it skips with the reason."""
    found = (
        os.environ.get(f"MIMS_{name.upper().replace('-', '_')}")
        or shutil.which(name)
        or shutil.which(name, path="/usr/sbin:/usr/local/sbin")
    )
    if not found:
        if os.environ.get("CI"):
            pytest.fail(f"{name} is not installed; scripts/test installs it")
        pytest.skip(f"{name} is not installed (scripts/test installs it)")
    return found


def merge(base, patch):
    """Deep merge of blueprint fragments: mappings merge, anything else replaces."""
    if isinstance(base, dict) and isinstance(patch, dict):
        out = dict(base)
        for key, value in patch.items():
            out[key] = merge(base.get(key), value)
        return out
    return patch


def env_of(container: dict) -> dict:
    """A container's plain environment variables (name -> value)."""
    return {e["name"]: e.get("value") for e in container.get("env", [])}


def find(rendering: Rendering, kind: str, name: str, namespace: str | None = None) -> dict:
    hits = [
        o
        for o in rendering.objects()
        if o["kind"] == kind
        and o["metadata"]["name"] == name
        and (namespace is None or o["metadata"].get("namespace") == namespace)
    ]
    assert len(hits) == 1, f"expected one {kind} {name}, found {len(hits)}"
    return hits[0]


def pod_specs(rendering: Rendering):
    """(object, pod spec) for every object that creates pods."""
    for obj in rendering.objects():
        if obj["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
            yield obj, obj["spec"]["template"]["spec"]


@pytest.fixture
def cli(monkeypatch, capsys):
    """Run `mims ARGS` through the real entry point; return (exit code, stdout, stderr)."""

    def run(*args: str) -> tuple[int, str, str]:
        monkeypatch.setattr(sys, "argv", ["mims", *map(str, args)])
        with pytest.raises(SystemExit) as exit_info:
            main()
        captured = capsys.readouterr()
        return exit_info.value.code, captured.out, captured.err

    return run


class Said:
    """A `mims.progress.Progress` that keeps its lines, for tests of what a step reports."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def say(self, text: str, style: str | None = None) -> None:
        self.lines.append(text)


def wait_for(
    what: str, check: Callable[[], Any], timeout: float = 30.0, ignoring: tuple[type[BaseException], ...] = ()
) -> Any:
    """The first true result of `check`, polled until `timeout`; an exception in `ignoring` counts as
    not yet. Fails the test naming `what` when time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            result = check()
        except ignoring:
            result = None
        if result:
            return result
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {what}")
