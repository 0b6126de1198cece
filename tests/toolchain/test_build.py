"""The toolchain builder against tiny Go modules served from a file:// GOPROXY in a temporary directory:
both recipes, the generate step, idempotency, the per-tool lock, plugin placement and error messages.
The real builds (Pulumi, the provider, Kubernetes, etcd, kwok) take minutes each and are not run here."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
import yaml
from mims.errors import MimsError, ToolchainError
from mims.toolchain import build
from mims.toolchain.build import install, load_tools, pulumi_home, status

GO = shutil.which("go")
pytestmark = pytest.mark.skipif(GO is None, reason="go is not on PATH (the toolchain is built with it)")

TIME = "2024-01-01T00:00:00Z"

MODULES = {
    # A plain command with a version stamped in at link time and a data file.
    ("example.test/tiny", "v1.0.0"): {
        "go.mod": "module example.test/tiny\n\ngo 1.22\n",
        "cmd/tiny/main.go": 'package main\n\nimport "fmt"\n\nvar version = "unset"\n\n'
                            'func main() { fmt.Println("tiny version", version) }\n',
        "stages/fast.yaml": "kind: Stage\n",
    },
    # A sibling published on its own; app's go.mod reaches it through a local replace.
    ("example.test/lib", "v1.0.0"): {
        "go.mod": "module example.test/lib\n\ngo 1.22\n",
        "lib.go": 'package lib\n\nfunc Greeting() string { return "hello from lib" }\n',
    },
    # Built as the main module: local replaces dropped, a generated file embedded.
    ("example.test/app", "v1.0.0"): {
        "go.mod": "module example.test/app\n\ngo 1.22\n\nrequire example.test/lib v0.0.0\n\n"
                  "replace example.test/lib => ../lib\n\n"
                  "replace example.test/forbidden => ./FORBIDDEN_DEPENDENCY\n",
        "cmd/app/main.go": 'package main\n\nimport (\n\t_ "embed"\n\t"fmt"\n\n\t"example.test/lib"\n)\n\n'
                           '//go:embed generated.txt\nvar generated string\n\nvar version = "unset"\n\n'
                           'func main() { fmt.Println(lib.Greeting(), version, generated) }\n',
        "cmd/app/gen.go": '//go:build ignore\n\npackage main\n\nimport "os"\n\n'
                          'func main() { os.WriteFile("generated.txt", []byte("schema-"+os.Getenv("VERSION")), 0o644) }\n',
    },
    ("example.test/broken", "v1.0.0"): {
        "go.mod": "module example.test/broken\n\ngo 1.22\n",
        "main.go": "package main\n\nfunc main() { this is not go }\n",
    },
}

TOOLS = {
    "tiny": {
        "version": "1.0.0",
        "module": "example.test/tiny",
        "module_version": "v1.0.0",
        "recipe": "install",
        "binaries": {"tiny": "./cmd/tiny"},
        "ldflags": "-s -w -X main.version={version}",
        "files": {"share/stages/fast.yaml": "stages/fast.yaml"},
        "check": {"tiny": {"args": [], "expect": "tiny version {version}"}},
    },
    "app": {
        "version": "2.5.0",
        "module": "example.test/app",
        "module_version": "v1.0.0",
        "recipe": "main-module",
        "local_replaces": {"example.test/lib": "v1.0.0"},
        "generate": [{"dir": "cmd/app", "env": {"VERSION": "{version}"}, "run": ["go", "run", "gen.go"]}],
        "binaries": {"app-bin": "./cmd/app"},
        "ldflags": "-X main.version=v{version}",
        "plugin": {"kind": "resource", "name": "app", "binary": "app-bin"},
    },
    "broken": {
        "version": "1.0.0",
        "module": "example.test/broken",
        "module_version": "v1.0.0",
        "recipe": "install",
        "binaries": {"broken": "."},
    },
    "absent": {
        "version": "9.9.9",
        "module": "example.test/tiny",
        "module_version": "v9.9.9",
        "recipe": "install",
        "binaries": {"tiny": "./cmd/tiny"},
    },
}


def _publish(proxy: Path, module: str, version: str, files: dict[str, str]) -> None:
    base = proxy / module / "@v"
    base.mkdir(parents=True, exist_ok=True)
    with (base / "list").open("a") as handle:
        handle.write(version + "\n")
    (base / f"{version}.info").write_text(json.dumps({"Version": version, "Time": TIME}))
    (base / f"{version}.mod").write_text(files["go.mod"])
    with zipfile.ZipFile(base / f"{version}.zip", "w") as archive:
        for rel, text in files.items():
            archive.writestr(f"{module}@{version}/{rel}", text)


@pytest.fixture(scope="module")
def goenv(tmp_path_factory):
    """A private module proxy and module cache; the user's build cache is reused (it is keyed by
    content, so nothing of theirs changes) to keep the tests fast."""
    root = tmp_path_factory.mktemp("goproxy")
    proxy = root / "proxy"
    for (module, version), files in MODULES.items():
        _publish(proxy, module, version, files)
    env = {
        "GOPROXY": proxy.as_uri(),
        "GOSUMDB": "off",
        "GOMODCACHE": str(root / "modcache"),
        "GONOSUMDB": "example.test",
    }
    yield env
    subprocess.run([GO, "clean", "-modcache"], env={**os.environ, **env}, check=False,
                   capture_output=True)


@pytest.fixture
def env(goenv, monkeypatch, tmp_path):
    for key, value in goenv.items():
        monkeypatch.setenv(key, value)
    tools_file = tmp_path / "tools.yaml"
    tools_file.write_text(yaml.safe_dump({"go": "1.22", "tools": TOOLS}))
    return {"tools_file": tools_file, "cache": tmp_path / "toolchain"}


def _run(path: Path) -> str:
    return subprocess.run([str(path)], capture_output=True, text=True, check=True).stdout.strip()


def test_shipped_tools_file_loads():
    go_min, tools = load_tools()
    assert set(tools) == {"pulumi", "pulumi-kubernetes", "kubernetes", "kubectl", "etcd", "kwok"}
    assert go_min
    provider = tools["pulumi-kubernetes"]
    assert provider.plugin is not None and provider.plugin.name == "kubernetes"
    assert "{version}" in provider.ldflags and provider.generate
    assert tools["kubernetes"].recipe == "main-module"
    assert set(tools["kubernetes"].binaries) == {"kube-apiserver", "kube-controller-manager", "kube-scheduler"}
    assert tools["kwok"].recipe == "install"
    assert any(dest.endswith("storage-class.yaml") for dest in tools["kwok"].files)


def test_install_recipe_builds_stamps_version_and_copies_files(env):
    messages = []
    result = install(["tiny"], cache_dir=env["cache"], tools_file=env["tools_file"],
                     progress=lambda tool, message: messages.append((tool, message)))
    tiny = result["tiny"]
    assert tiny.built
    assert tiny.dir == env["cache"] / "tiny-1.0.0"
    assert _run(tiny["tiny"]) == "tiny version 1.0.0"
    assert (tiny.dir / "share/stages/fast.yaml").read_text() == "kind: Stage\n"
    manifest = json.loads((tiny.dir / "tool.json").read_text())
    assert manifest["version"] == "1.0.0" and manifest["build_seconds"] >= 0
    assert manifest["binaries"]["tiny"]["bytes"] == tiny["tiny"].stat().st_size
    assert all(tool == "tiny" for tool, _ in messages) and messages
    assert not (env["cache"] / ".work" / f"tiny-1.0.0.{os.getpid()}").exists()


def test_main_module_recipe_drops_local_replaces_and_runs_generate(env):
    result = install(["app"], cache_dir=env["cache"], tools_file=env["tools_file"])
    assert _run(result["app"]["app-bin"]) == "hello from lib v2.5.0 schema-2.5.0"


def test_second_install_does_not_rebuild(env):
    first = install(["tiny"], cache_dir=env["cache"], tools_file=env["tools_file"])["tiny"]
    stamp = first["tiny"].stat().st_mtime_ns
    messages = []
    again = install(["tiny"], cache_dir=env["cache"], tools_file=env["tools_file"],
                    progress=lambda _tool, message: messages.append(message))["tiny"]
    assert not again.built
    assert again["tiny"].stat().st_mtime_ns == stamp
    assert messages == ["tiny 1.0.0 is already built"]


def test_cached_tools_need_no_go(env, monkeypatch, tmp_path):
    install(["tiny"], cache_dir=env["cache"], tools_file=env["tools_file"])
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert not install(["tiny"], cache_dir=env["cache"], tools_file=env["tools_file"])["tiny"].built


def test_changed_recipe_rebuilds(env):
    install(["tiny"], cache_dir=env["cache"], tools_file=env["tools_file"])
    changed = json.loads(json.dumps(TOOLS))
    changed["tiny"]["ldflags"] = "-X main.version=patched"
    changed["tiny"]["check"] = {}
    env["tools_file"].write_text(yaml.safe_dump({"go": "1.22", "tools": changed}))
    [entry] = [s for s in status(env["cache"], env["tools_file"]) if s.name == "tiny"]
    assert entry.state == "stale"
    rebuilt = install(["tiny"], cache_dir=env["cache"], tools_file=env["tools_file"])["tiny"]
    assert rebuilt.built and _run(rebuilt["tiny"]) == "tiny version patched"


def test_status_lists_missing_then_present(env):
    before = {s.name: s.state for s in status(env["cache"], env["tools_file"])}
    assert before == {"tiny": "missing", "app": "missing", "broken": "missing", "absent": "missing"}
    install(["tiny"], cache_dir=env["cache"], tools_file=env["tools_file"])
    after = {s.name: s for s in status(env["cache"], env["tools_file"])}
    assert after["tiny"].state == "present" and after["tiny"].build_seconds is not None
    assert after["tiny"].binaries["tiny"].is_file()
    assert after["app"].state == "missing"


def test_incomplete_tool_dir_is_rebuilt(env):
    tiny = install(["tiny"], cache_dir=env["cache"], tools_file=env["tools_file"])["tiny"]
    tiny["tiny"].unlink()
    assert {s.name: s.state for s in status(env["cache"], env["tools_file"])}["tiny"] == "stale"
    again = install(["tiny"], cache_dir=env["cache"], tools_file=env["tools_file"])["tiny"]
    assert again.built and again["tiny"].is_file()


def test_plugin_is_placed_in_pulumi_home_and_restored(env):
    app = install(["app"], cache_dir=env["cache"], tools_file=env["tools_file"])["app"]
    plugin = pulumi_home(env["cache"]) / "plugins" / "resource-app-v2.5.0" / "app-bin"
    assert plugin.read_bytes() == app["app-bin"].read_bytes()
    assert os.access(plugin, os.X_OK)
    shutil.rmtree(plugin.parent)
    again = install(["app"], cache_dir=env["cache"], tools_file=env["tools_file"])["app"]
    assert not again.built and plugin.read_bytes() == app["app-bin"].read_bytes()
    entry = {s.name: s for s in status(env["cache"], env["tools_file"])}["app"]
    assert entry.state == "present" and entry.plugin_dir == plugin.parent


SCRIPT = """
import json, sys
from pathlib import Path
from mims.toolchain.build import install
result = install(["tiny"], cache_dir=Path(sys.argv[1]), tools_file=Path(sys.argv[2]),
                 progress=lambda tool, message: print(message, file=sys.stderr, flush=True))
print(json.dumps({"built": result["tiny"].built}))
"""


def _spawn(env) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", SCRIPT, str(env["cache"]), str(env["tools_file"])],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})


def test_two_processes_build_a_tool_once(env):
    procs = [_spawn(env) for _ in range(2)]
    outcomes = []
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        outcomes.append(json.loads(out)["built"])
    assert sorted(outcomes) == [False, True]
    assert _run(env["cache"] / "tiny-1.0.0" / "bin" / "tiny") == "tiny version 1.0.0"


def test_a_held_lock_makes_install_wait(env):
    locks = env["cache"] / ".locks"
    locks.mkdir(parents=True)
    with (locks / "tiny.lock").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        proc = _spawn(env)
        deadline = time.monotonic() + 60
        line = ""
        while "waiting" not in line and time.monotonic() < deadline:
            line = proc.stderr.readline()
            if not line and proc.poll() is not None:
                break
        assert "waiting for another process building tiny" in line
        assert proc.poll() is None
        assert not (env["cache"] / "tiny-1.0.0").exists()
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert json.loads(out) == {"built": True}


def test_compile_error_names_tool_command_and_output(env):
    with pytest.raises(ToolchainError) as caught:
        install(["broken"], cache_dir=env["cache"], tools_file=env["tools_file"])
    error = caught.value
    message = str(error)
    assert message.startswith("building broken 1.0.0 failed: `")
    assert "go install" in message and "example.test/broken@v1.0.0" in message
    assert "main.go" in error.output_tail  # the compiler's complaint, with its file
    assert error.tool == "broken" and error.command[1] == "install"
    assert isinstance(error, MimsError) and error.exit_code == 4
    assert "full log:" in message
    log = env["cache"] / ".logs" / "broken-1.0.0.log"
    assert "main.go" in log.read_text()
    assert not (env["cache"] / "broken-1.0.0").exists()
    assert not any((env["cache"] / ".work").iterdir())


def test_missing_module_version_is_reported(env):
    with pytest.raises(ToolchainError) as caught:
        install(["absent"], cache_dir=env["cache"], tools_file=env["tools_file"])
    message = str(caught.value)
    assert "building absent 9.9.9 failed" in message
    assert "go mod download -json example.test/tiny@v9.9.9" in message
    assert "v9.9.9" in caught.value.output_tail


def test_missing_go_is_reported(env, monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(ToolchainError, match=r"cannot build tiny 1.0.0: `go` is not on PATH"):
        install(["tiny"], cache_dir=env["cache"], tools_file=env["tools_file"])


def test_too_old_go_is_reported(env):
    data = yaml.safe_load(env["tools_file"].read_text())
    data["go"] = "99.0"
    env["tools_file"].write_text(yaml.safe_dump(data))
    with pytest.raises(ToolchainError, match=r"older than the go99.0"):
        install(["tiny"], cache_dir=env["cache"], tools_file=env["tools_file"])


def test_unknown_tool_is_reported(env):
    with pytest.raises(ToolchainError, match=r"unknown tool\(s\) nope; known: absent, app, broken, tiny"):
        install(["nope"], cache_dir=env["cache"], tools_file=env["tools_file"])


def test_local_replace_without_published_version_is_reported(env):
    data = yaml.safe_load(env["tools_file"].read_text())
    del data["tools"]["app"]["local_replaces"]
    env["tools_file"].write_text(yaml.safe_dump(data))
    with pytest.raises(ToolchainError, match=r"replaces example.test/lib with the local path ../lib"):
        install(["app"], cache_dir=env["cache"], tools_file=env["tools_file"])


def test_default_cache_dir_follows_mims_cache_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("MIMS_CACHE_DIR", str(tmp_path))
    assert build.toolchain_dir() == tmp_path / "toolchain"
    assert pulumi_home() == tmp_path / "toolchain" / "pulumi-home"


@pytest.mark.parametrize("broken, message", [
    ({"tiny": {"version": "1"}}, "`module` is missing"),
    ({"tiny": {**TOOLS["tiny"], "recipe": "make"}}, "unknown recipe 'make'"),
    ({"tiny": {**TOOLS["tiny"], "generate": [{"run": ["true"]}]}}, "need recipe main-module"),
    ({"tiny": {**TOOLS["tiny"], "check": {"other": {"expect": "x"}}}}, "check for unknown binary"),
])
def test_malformed_tools_file_is_reported(tmp_path, broken, message):
    path = tmp_path / "tools.yaml"
    path.write_text(yaml.safe_dump({"tools": broken}))
    with pytest.raises(ToolchainError, match=message):
        load_tools(path)
