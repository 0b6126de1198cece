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
from pathlib import Path

import pytest
import yaml

from mims.errors import MimsError, ToolchainError
from mims.toolchain import install, pulumi_home, status, toolchain_dir
from tests.conftest import Said
from tests.toolchain.modules import GO, TOOLS

pytestmark = pytest.mark.skipif(GO is None, reason="go is not on PATH (the toolchain is built with it)")


def _run(path: Path) -> str:
    return subprocess.run([str(path)], capture_output=True, text=True, check=True).stdout.strip()


def test_install_recipe_builds_stamps_version_and_copies_files(env):
    said = Said()
    result = install(["tiny"], cache_dir=env["cache"], tools_file=env["tools_file"], progress=said)
    tiny = result["tiny"]
    assert tiny.built
    assert tiny.dir == env["cache"] / "tiny-1.0.0"
    assert _run(tiny["tiny"]) == "tiny version 1.0.0"
    assert (tiny.dir / "share/stages/fast.yaml").read_text() == "kind: Stage\n"
    manifest = json.loads((tiny.dir / "tool.json").read_text())
    assert manifest["version"] == "1.0.0" and manifest["build_seconds"] >= 0
    assert manifest["binaries"]["tiny"]["bytes"] == tiny["tiny"].stat().st_size
    assert said.lines and all(line.startswith("tiny: ") for line in said.lines)
    assert not (env["cache"] / ".work" / f"tiny-1.0.0.{os.getpid()}").exists()


def test_main_module_recipe_drops_local_replaces_and_runs_generate(env):
    result = install(["app"], cache_dir=env["cache"], tools_file=env["tools_file"])
    assert _run(result["app"]["app-bin"]) == "hello from lib v2.5.0 schema-2.5.0"


def test_second_install_does_not_rebuild(env):
    first = install(["tiny"], cache_dir=env["cache"], tools_file=env["tools_file"])["tiny"]
    stamp = first["tiny"].stat().st_mtime_ns
    said = Said()
    again = install(["tiny"], cache_dir=env["cache"], tools_file=env["tools_file"], progress=said)["tiny"]
    assert not again.built
    assert again["tiny"].stat().st_mtime_ns == stamp
    assert said.lines == ["tiny: tiny 1.0.0 is already built"]


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
from mims.progress import Lines
from mims.toolchain import install
result = install(["tiny"], cache_dir=Path(sys.argv[1]), tools_file=Path(sys.argv[2]), progress=Lines())
print(json.dumps({"built": result["tiny"].built}))
"""


def _spawn(env) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", SCRIPT, str(env["cache"]), str(env["tools_file"])],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )


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
    assert message.startswith("cannot install broken 1.0.0:\n  present: tools.yaml gives no version check")
    assert "\n  download: tools.yaml names no official download for broken\n" in message
    assert "\n  build: building broken 1.0.0 failed: `" in message
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
    assert toolchain_dir() == tmp_path / "toolchain"
    assert pulumi_home() == tmp_path / "toolchain" / "pulumi-home"
