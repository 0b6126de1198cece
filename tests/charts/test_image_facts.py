"""charts/image-facts.yaml against the charts: every pinned image has its upstream facts, and what the
rendered containers run, listen on, probe, set and write agrees with what the image really does."""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass

import pytest

from mims import paths
from mims.charts.facts import ImageFacts, load_image_facts
from mims.charts.meta import load_charts
from mims.errors import ChartError
from tests.conftest import pod_specs

# An absolute path in a command line or script; not the tail of a URL (`host/x`,
# `//host`), a variable (`$DIR/x`), a relative path (`./x`, `~/x`) or an MQTT topic filter (`+/x`).
PATH_TOKEN = re.compile(r"(?<![\w.:/~$@%+-])/[\w.][\w.@+-]*(?:/[\w.][\w.@+-]*)*/?")
# `NAME=value` (also after `export`) and `export NAME OTHER`: variables a script sets for the program.
ASSIGNED = re.compile(r"(?<![\w.$-])([A-Z][A-Z0-9_]*)=")
# Read by the POSIX shell that runs the chart's scripts (`/bin/sh`, like its path, is no image fact).
SHELL_VARIABLES = {"IFS"}
EXPORTED = re.compile(r"^\s*export\s+([A-Z][A-Z0-9_]*(?:\s+[A-Z][A-Z0-9_]*)*)\s*$", re.MULTILINE)
# Not the image's to provide: the shells the charts' wrappers run (every image here is built on a
# distribution base that ships them) and the files the kubelet mounts into every container.
NOT_FROM_THE_IMAGE = {"/bin/sh", "/bin/bash", "/etc/resolv.conf", "/etc/hosts", "/etc/hostname"}
PROBES = ("startupProbe", "readinessProbe", "livenessProbe")


@dataclass(frozen=True)
class Run:
    """One container of a rendered example, with what it can see."""

    where: str
    image: str
    container: dict
    mounts: tuple[str, ...]
    files: dict[str, str]

    @property
    def read_only(self) -> bool:
        return bool(self.container.get("securityContext", {}).get("readOnlyRootFilesystem"))

    def mounted(self, path: str) -> bool:
        return any(path == m or path.startswith(m.rstrip("/") + "/") for m in self.mounts)

    def command_line(self) -> str:
        """Command, arguments and exec probes, as one text."""
        parts = list(self.container.get("command", [])) + list(self.container.get("args", []))
        for probe in PROBES:
            parts += self.container.get(probe, {}).get("exec", {}).get("command", [])
        return "\n".join(parts)

    def named_files(self, text: str) -> dict[str, str]:
        """Mounted ConfigMap files the text names, and the files those name in turn."""
        found: dict[str, str] = {}
        pending = [text]
        while pending:
            for path in path_tokens(pending.pop()):
                if path in self.files and path not in found:
                    found[path] = self.files[path]
                    pending.append(found[path])
        return found

    def scripts(self) -> str:
        """Shell text the container runs: its command line and the `.sh` files it names. (Other named
        files are configuration, whose paths are often URL paths: nginx locations, scrape paths.)"""
        line = self.command_line()
        return "\n".join([line] + [t for p, t in self.named_files(line).items() if p.endswith(".sh")])

    def configuration(self, image: ImageFacts) -> str:
        """Everything that configures the program: what it runs (the image's entrypoint and command
        where the container does not override them), `NAME=value` environment, the files named."""
        line = "\n".join(
            [self.command_line(), *image.default_run(self.container.get("command"), self.container.get("args"))]
        )
        env = [f"{e['name']}={e.get('value', '')}" for e in self.container.get("env", [])]
        return "\n".join([line, *env, *self.named_files(line).values()])


def without_comments(text: str) -> str:
    return "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))


def path_tokens(text: str) -> set[str]:
    return {posixpath.normpath(m.group()) for m in PATH_TOKEN.finditer(without_comments(text))}


def image_paths(run: Run) -> set[str]:
    """Absolute paths the container relies on inside its image: in its scripts or environment, not
    on a volume, not provided by the distribution base or the kubelet."""
    text = "\n".join([run.scripts(), *(e.get("value", "") for e in run.container.get("env", []))])
    return {
        p
        for p in path_tokens(text)
        if not run.mounted(p) and p not in NOT_FROM_THE_IMAGE and not p.startswith(("/dev/", "/proc/"))
    }


def configures(run: Run, image: ImageFacts, port: int) -> bool:
    """The container sets `port` itself (a flag, a variable, a `listen` line in a file it names)."""
    return re.search(rf"(?<![\w.]){port}(?![\w.])", run.configuration(image)) is not None


def defines(run: Run, path: str) -> bool:
    """A configuration file the container names defines the HTTP path (an nginx `location`, say)."""
    return any(path in text for text in run.named_files(run.command_line()).values())


def variables_set(run: Run) -> set[str]:
    """Variables the container sets for the image's software: its `env` list plus those its scripts
    assign or export, less `env` entries only the chart's own code reads (named in the command line
    or in a file of the chart's ConfigMaps mounted there: scripts, SQL, JavaScript) and the variables
    the shell itself reads."""
    scripts = without_comments(run.scripts())
    env = {e["name"] for e in run.container.get("env", [])}
    exported = {n for group in EXPORTED.findall(scripts) for n in group.split()}
    own_code = without_comments("\n".join([run.command_line(), *run.files.values()]))
    chart_reads = {n for n in env - exported if re.search(rf"(?<!\w){n}(?!\w)", own_code)}
    return (env - chart_reads) | set(ASSIGNED.findall(scripts)) - SHELL_VARIABLES | exported


def http_probes(run: Run) -> set[tuple[int, str]]:
    named = {p["name"]: p["containerPort"] for p in run.container.get("ports", []) if "name" in p}
    found = set()
    for probe in PROBES:
        get = run.container.get(probe, {}).get("httpGet")
        if get:
            port = get["port"] if isinstance(get["port"], int) else named[get["port"]]
            found.add((port, get["path"]))
    return found


def runs_of(rendering, example: str) -> list[Run]:
    config_maps = {
        (o["metadata"].get("namespace"), o["metadata"]["name"]): o.get("data", {})
        for o in rendering.objects()
        if o["kind"] == "ConfigMap"
    }
    runs = []
    for obj, spec in pod_specs(rendering):
        namespace = obj["metadata"].get("namespace")
        volumes = {v["name"]: v for v in spec.get("volumes", [])}
        for container in spec.get("initContainers", []) + spec["containers"]:
            mounts = container.get("volumeMounts", [])
            files = {}
            for mount in mounts:
                source = volumes.get(mount["name"], {}).get("configMap")
                if source:
                    files.update(config_map_files(config_maps[(namespace, source["name"])], source, mount))
            runs.append(
                Run(
                    where=f"{example}: {namespace}/{obj['kind']}/{obj['metadata']['name']} "
                    f"container {container['name']}",
                    image=container["image"].split("@")[0],
                    container=container,
                    mounts=tuple(m["mountPath"] for m in mounts),
                    files=files,
                )
            )
    return runs


def config_map_files(data: dict, source: dict, mount: dict) -> dict[str, str]:
    """Path in the container -> content, for one ConfigMap volume mount."""
    if "subPath" in mount:
        return {mount["mountPath"]: data[mount["subPath"]]}
    items = source.get("items") or [{"key": k, "path": k} for k in data]
    return {posixpath.join(mount["mountPath"], i["path"]): data[i["key"]] for i in items}


@pytest.fixture(scope="module")
def facts():
    return load_image_facts().images


@pytest.fixture(scope="module")
def runs(rendered_examples) -> list[Run]:
    return [run for name, rendering in rendered_examples.items() for run in runs_of(rendering, name)]


def disagreements(runs: list[Run], facts: dict[str, ImageFacts], check) -> tuple[int, list[str]]:
    """(how many things were compared, what disagreed) for `check(run, facts) -> [(checked, problem)]`."""
    compared, problems = 0, []
    for run in runs:
        image = facts.get(run.image)
        if image is None:
            problems.append(f"{run.where}: {run.image} has no entry in charts/image-facts.yaml")
            continue
        for problem in check(run, image):
            compared += 1
            if problem:
                problems.append(f"{run.where}: {problem} ({run.image})")
    return compared, problems


def assert_agreement(runs: list[Run], facts: dict[str, ImageFacts], check) -> None:
    """Something was compared, and nothing disagreed (every disagreement listed)."""
    compared, problems = disagreements(runs, facts, check)
    assert compared > 0 and problems == [], "\n".join(problems)


def chart_images() -> set[str]:
    return {
        f"{image.repository}:{image.tag}"
        for chart in load_charts(paths.charts_dir()).values()
        for image in chart.meta.images.values()
    }


def test_every_pinned_image_has_facts(facts):
    assert sorted(chart_images() - set(facts)) == []


def test_every_facts_entry_is_an_image_a_chart_pins(facts):
    assert sorted(set(facts) - chart_images()) == []


def test_container_paths_exist_in_the_image(runs, facts):
    def check(run, image):
        return [
            None if image.path_known(p) else f"runs {p}, which the image does not have"
            for p in sorted(image_paths(run))
        ]

    assert_agreement(runs, facts, check)


def test_container_ports_are_ports_the_image_serves_or_the_container_configures(runs, facts):
    def check(run, image):
        served = {p.port for p in image.ports}
        return [
            None
            if port in served or configures(run, image, port)
            else f"declares port {port}, which the image does not serve and the container does not configure"
            for port in (p["containerPort"] for p in run.container.get("ports", []))
        ]

    assert_agreement(runs, facts, check)


def test_http_probes_hit_health_endpoints_of_the_image_or_its_configuration(runs, facts):
    def check(run, image):
        endpoints = {(h.port, h.path) for h in image.health}
        paths = {h.path for h in image.health}
        return [
            None
            if probe in endpoints
            or (probe[1] in paths and configures(run, image, probe[0]))  # the image's endpoint, on the port it is told
            or defines(run, probe[1])
            else f"probes port {probe[0]} path {probe[1]}, not a health endpoint of the image"
            for probe in sorted(http_probes(run))
        ]

    assert_agreement(runs, facts, check)


def test_variables_set_are_read_by_the_image(runs, facts):
    def check(run, image):
        read = {e.name for e in image.env}
        return [
            None if name in read else f"sets {name}, which the image's software is not shown to read"
            for name in sorted(variables_set(run))
        ]

    assert_agreement(runs, facts, check)


def test_paths_the_image_writes_are_volumes_on_a_read_only_root(runs, facts):
    def check(run, image):
        if not run.read_only:
            return []
        configuration = run.configuration(image)
        return [
            None if run.mounted(w.path) else f"has a read-only root but no volume at {w.path} ({w.what})"
            for w in image.writable
            if w.written(configuration)
        ]

    assert_agreement(runs, facts, check)


def test_checks_read_scripts_and_named_files_but_skip_volumes_and_urls():
    run = Run(
        where="test",
        image="x",
        mounts=("/etc/app", "/tmp"),
        files={
            "/etc/app/start.sh": "#!/bin/sh\n# /not/a/path\nexport APP_KEY=1\nexec /opt/app/bin/app -c /etc/app/app.conf\n",
            "/etc/app/app.conf": "data /var/lib/app\nurl http://host:80/api/x\n",
        },
        container={
            "command": ["/bin/sh", "/etc/app/start.sh"],
            "env": [{"name": "HOME", "value": "/tmp"}],
            "readinessProbe": {"exec": {"command": ["sh", "-c", "TOKEN=$(cat /run/t) /usr/bin/check"]}},
        },
    )
    assert image_paths(run) == {"/opt/app/bin/app", "/run/t", "/usr/bin/check"}
    assert variables_set(run) == {"HOME", "APP_KEY", "TOKEN"}
    assert "data /var/lib/app" in run.configuration(load_image_facts().images["docker.io/library/mongo:8.0.26"])
    assert path_tokens("topic write +/+/attrs\nurl https://host/a/b") == set()


def test_a_wrong_key_in_the_facts_file_is_reported_with_its_position(tmp_path):
    path = tmp_path / "image-facts.yaml"
    path.write_text(
        "images:\n  docker.io/library/x:1.0:\n    upstream: {repository: a/b, ref: v1}\n"
        "    traced: false\n    note: not read\n    paths: []\n    writable: []\n"
        "    ports: [{port: 80, what: http, source: Dockerfile, proto: tcp}]\n    health: []\n    env: []\n"
    )
    with pytest.raises(ChartError, match=r"image-facts\.yaml:8:\d+: .*unknown key `proto`"):
        load_image_facts(path)
