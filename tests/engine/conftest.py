"""Fixtures for the engine's integration tests: the real `mims` command, run as a subprocess in an
isolated MIMS_HOME (its own Pulumi state, passphrase and simulated cluster; the toolchain cache is
shared, so nothing is built twice), against real simulated clusters.

One small city is deployed once per session and shared by every test that only reads it; tests that
change or destroy a deployment get their own. Every command's output and every generated secret
value read from a cluster is recorded, so the last test can search all of them for leaks. Clusters
are stopped when their tests are done and deleted at the end of the session."""

from __future__ import annotations

import base64
import copy
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml
from kubernetes import client
from tests.conftest import delete_nodes_of_killed_runs, find, merge

import mims
from mims import paths
from mims.blueprint import load_blueprint
from mims.charts.render import Renderer, Rendering
from mims.cluster import NodeCluster, SimCluster
from mims.cluster.local import stored_type
from mims.cluster.sim import TOOLS
from mims.secrets import ANNOTATION
from mims.toolchain import status as toolchain_status

EXAMPLES_DIR = paths.blueprints_dir() / "examples"
SMALL_CITY = EXAMPLES_DIR / "small-city.yaml"
# The package the tests import is the one the subprocesses run.
PACKAGE_ROOT = Path(mims.__file__).resolve().parents[1]
COMMAND_TIMEOUT = 900
# Settings of the developer's shell that would point `mims` elsewhere than the test's home.
_FOREIGN_ENV = (
    "MIMS_KUBECONFIG",
    "MIMS_CONTEXT",
    "MIMS_BLUEPRINT",
    "MIMS_BACKEND",
    "MIMS_DATA_DIR",
    "KUBECONFIG",
    "PULUMI_BACKEND_URL",
    "PULUMI_CONFIG_PASSPHRASE",
    "PULUMI_HOME",
)


@dataclass
class Run:
    args: tuple[str, ...]
    code: int
    out: str
    err: str
    seconds: float

    def json(self) -> dict:
        return json.loads(self.out)

    def describe(self) -> str:
        return f"`mims {' '.join(self.args)}` exited {self.code} after {self.seconds:.0f} s\nstdout:\n{self.out}\nstderr:\n{self.err}"


@dataclass
class Record:
    """Everything the session produced that must not contain a generated value."""

    runs: list[Run] = field(default_factory=list)
    clients: list[Mims] = field(default_factory=list)
    # (home, namespace/name, key) -> value, as read back from the clusters
    values: dict[tuple[str, str, str], str] = field(default_factory=dict)
    started: float = field(default_factory=time.time)


RECORD = Record()


class Mims:
    """`mims` in one MIMS_HOME with its own passphrase; its cluster is `mims` there (simulated, or a
    real node)."""

    def __init__(self, home: Path, node: bool = False):
        self.home = home
        self.python: Path | None = None  # another installation's interpreter (an older release); None: this tree
        self.passphrase = secrets.token_urlsafe(24)
        root = home / "clusters"
        self.cluster: SimCluster | NodeCluster = NodeCluster("mims", root) if node else SimCluster("mims", root)
        RECORD.clients.append(self)

    @property
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in _FOREIGN_ENV}
        env.update(MIMS_HOME=str(self.home), MIMS_PASSPHRASE=self.passphrase)
        if self.python is None:
            env["PYTHONPATH"] = os.pathsep.join([str(PACKAGE_ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])
        else:
            env.pop("PYTHONPATH", None)
        return env

    @property
    def argv(self) -> list[str]:
        return [str(self.python or sys.executable), "-m", "mims"]

    def run(self, *args: str | Path, timeout: float = COMMAND_TIMEOUT) -> Run:
        argv = tuple(map(str, args))
        started = time.monotonic()
        done = subprocess.run(
            [*self.argv, *argv],
            env=self.env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=self.home.parent,
        )
        run = Run(argv, done.returncode, done.stdout, done.stderr, time.monotonic() - started)
        RECORD.runs.append(run)
        return run

    def ok(self, *args: str | Path) -> Run:
        run = self.run(*args)
        assert run.code == 0, run.describe()
        return run

    def start(self, *args: str | Path) -> subprocess.Popen:
        """`mims ARGS` in a process group of its own (so it can be killed with its `pulumi` children),
        stderr readable line by line."""
        return subprocess.Popen(
            [*self.argv, *map(str, args)],
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=self.home.parent,
            start_new_session=True,
        )

    def api(self):
        from kubernetes import config

        return config.new_client_from_config(config_file=str(self.cluster.kubeconfig), persist_config=False)

    def generated_values(self) -> dict[tuple[str, str], dict[str, str]]:
        """`namespace/name` -> decoded data of every Secret the engine generated, from the API server;
        recorded for the leak search."""
        from kubernetes import client

        found = {}
        for secret in client.CoreV1Api(self.api()).list_secret_for_all_namespaces().items:
            if ANNOTATION in (secret.metadata.annotations or {}):
                ref = f"{secret.metadata.namespace}/{secret.metadata.name}"
                found[ref] = {k: base64.b64decode(v).decode() for k, v in (secret.data or {}).items()}
                for key, value in found[ref].items():
                    RECORD.values[(str(self.home), ref, key)] = value
        return found

    def leftover_processes(self) -> list[int]:
        """`pulumi` and provider plugin processes of this home's state that outlived their `mims`
        (a killed run's plugins are in process groups of their own)."""
        marker = f"PULUMI_BACKEND_URL={(self.home / 'state').as_uri()}".encode()
        pids = []
        for proc in Path("/proc").glob("[0-9]*"):
            try:
                if marker in (proc / "environ").read_bytes().split(b"\0"):
                    pids.append(int(proc.name))
            except OSError:
                continue
        return pids

    def kill_leftovers(self) -> None:
        for pid in self.leftover_processes():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def stop(self) -> None:
        """Stops the cluster but keeps its files (logs included) for the leak search."""
        self.kill_leftovers()
        self.cluster.stop()

    def delete(self) -> None:
        self.kill_leftovers()
        self.cluster.delete()


@dataclass
class Deployed:
    """A blueprint deployed by `mims up --yes --json` in its own home."""

    mims: Mims
    blueprint: Path
    up: Run
    rendering: Rendering
    values: dict[tuple[str, str], dict[str, str]]


def render(path: Path) -> Rendering:
    return Renderer().render(load_blueprint(path))


def blueprint_copy(
    folder: Path,
    source: Path = SMALL_CITY,
    *,
    replace: tuple[str, str] | None = None,
    patch: dict | None = None,
    name: str = "blueprint.yaml",
) -> Path:
    """A copy of an example blueprint in `folder` (with its algorithms and contexts folders):
    `replace` changes exactly one line, `patch` merges a fragment over it."""
    folder.mkdir(parents=True, exist_ok=True)
    text = source.read_text()
    if replace is not None:
        old, new = replace
        assert text.count(old) == 1 and "\n" not in old + new, f"{old!r} must be one line, once in {source}"
        text = text.replace(old, new)
    if patch is not None:
        text = yaml.safe_dump(merge(yaml.safe_load(text), patch), sort_keys=False)
    for data in ("algorithms", "contexts", "places"):
        if (source.parent / data).is_dir() and not (folder / data).exists():
            (folder / data).symlink_to(source.parent / data)
    path = folder / name
    path.write_text(text)
    return path


def deploy(home: Path, blueprint: Path) -> Deployed:
    """`mims up --yes --json` on a new simulated cluster (mims up creates and sizes it)."""
    client = Mims(home)
    up = client.run("up", blueprint, "--yes", "--json")
    if up.code != 0:
        client.delete()
        pytest.fail(up.describe())
    return Deployed(client, blueprint, up, render(blueprint), client.generated_values())


@pytest.fixture(scope="session")
def toolchain() -> None:
    """The simulated cluster's and Pulumi's binaries: built by `mims up` when missing, which needs go."""
    needed = set(TOOLS) | {"pulumi", "pulumi-kubernetes"}
    missing = [s.name for s in toolchain_status() if s.name in needed and s.state != "present"]
    if missing and not shutil.which("go"):
        pytest.skip(f"the toolchain ({', '.join(missing)}) is not built and `go` is not on PATH to build it")


@pytest.fixture(scope="session")
def homes(tmp_path_factory):
    """Makes MIMS_HOME folders; deletes every cluster made in them at the end of the session, also
    the simulated ones a `mims` subprocess made (the pipeline test's), which RECORD never saw."""
    made: list[Path] = []

    def make(name: str) -> Path:
        made.append(tmp_path_factory.mktemp(f"home-{name}"))
        return made[-1]

    yield make
    for cluster in list(RECORD.clients):
        cluster.delete()
    for home in made:
        for state in sorted((home / "clusters").glob("*/state.json")):
            if stored_type(state.parent.name, state.parent.parent) == "sim":
                SimCluster(state.parent.name, state.parent.parent).delete()


@pytest.fixture(scope="session")
def small_city(homes, toolchain) -> Deployed:
    """The small city, deployed once for every test that only reads it."""
    deployed = deploy(homes("small-city"), SMALL_CITY)
    yield deployed
    deployed.mims.stop()


@pytest.fixture(scope="session")
def standard_city(homes, toolchain) -> Deployed:
    """The standard city in a home of its own (its simulated node is sized 8 CPU / 32 GiB)."""
    deployed = deploy(homes("standard-city"), EXAMPLES_DIR / "standard-city.yaml")
    yield deployed
    deployed.mims.stop()


@pytest.fixture(scope="session")
def example(request) -> Deployed:
    """`small-city` or `standard-city`, deployed (indirect parametrisation)."""
    return request.getfixturevalue(request.param.replace("-", "_"))


def example_names() -> list[str]:
    names = sorted(p.stem for p in EXAMPLES_DIR.glob("*.yaml"))
    assert names == ["small-city", "standard-city"], "a new example blueprint needs a fixture here"
    return names


# -- reading the cluster ---------------------------------------------------------------------------

MANAGED = "app.kubernetes.io/managed-by=mims"


def _get(api, path: str, **query) -> dict:
    method, url, headers, body, post = api.param_serialize(
        "GET",
        path,
        query_params=list(query.items()),
        header_params={"Accept": "application/json"},
        auth_settings=["BearerToken"],
    )
    response = api.call_api(method, url, headers, body, post)
    response.read()
    assert response.status == 200, f"GET {url}: HTTP {response.status}"
    return json.loads(response.data)


def list_objects(api, selector: str | None = None, kinds: set[str] | None = None) -> set[tuple[str, str, str]]:
    """(kind, namespace, name) of every object of every listable API resource, optionally only those
    matching a label selector or of some kinds: what is on the cluster, whatever mims thinks."""
    group_versions = ["/api/v1"] + [
        f"/apis/{g['preferredVersion']['groupVersion']}" for g in _get(api, "/apis")["groups"]
    ]
    found = set()
    for gv in group_versions:
        for resource in _get(api, gv)["resources"]:
            if "/" in resource["name"] or "list" not in resource.get("verbs", []) or resource["kind"] == "Event":
                continue
            if kinds is not None and resource["kind"] not in kinds:
                continue
            query = {"labelSelector": selector} if selector else {}
            for item in _get(api, f"{gv}/{resource['name']}", **query)["items"]:
                meta = item["metadata"]
                found.add((resource["kind"], meta.get("namespace", ""), meta["name"]))
    return found


def statefulset_patch(deployed: Deployed, name: str, namespace: str, change) -> dict:
    """A blueprint fragment with an override that changes the rendered StatefulSet's spec (`change`
    edits a copy; merge patches replace lists, so the whole changed list goes in)."""
    spec = copy.deepcopy(find(deployed.rendering, "StatefulSet", name, namespace)["spec"])
    change(spec)
    target = {"kind": "StatefulSet", "name": name, "namespace": namespace}
    return {"overrides": [{"target": target, "patch": {"spec": spec}}]}


def with_image(image: str):
    def change(spec: dict) -> None:
        spec["template"]["spec"]["containers"][0]["image"] = image

    return change


def live_image(deployed: Deployed, name: str, namespace: str) -> str:
    live = client.AppsV1Api(deployed.mims.api()).read_namespaced_stateful_set(name, namespace)
    return live.spec.template.spec.containers[0].image


def start_real_node(mims: Mims, images: tuple[str, ...]) -> None:
    """`mims cluster create --node` in the home of `mims`, with the test images (tests/images, built
    when not cached) loaded into it."""
    from tests.images.build import build

    from mims.cluster.node import missing_packages

    if missing_packages():
        pytest.fail(f"a real node needs {', '.join(missing_packages())} (scripts/test installs them)")
    archives = [build(name) for name in images]
    delete_nodes_of_killed_runs()
    mims.ok("cluster", "create", "--node")
    mims.ok("cluster", "load-images", *archives)
