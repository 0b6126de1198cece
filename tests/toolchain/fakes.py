"""A fake toolchain for command and doctor tests: tool directories that `mims.toolchain.status()` and
`install()` take for built ones (manifest with the shipped recipe's digest, executable binaries, the
provider plugin placed), whose binaries are shell scripts printing what tools.yaml's checks expect.
Nothing is built and nothing needs `go`."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

from mims.toolchain import layout
from mims.toolchain.recipes import load_tools

GO_VERSION = "go1.26.8"


def script(path: Path, lines: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n" + "".join(f"echo '{line}'\n" for line in lines))
    path.chmod(0o755)
    return path


def fake_tool(root: Path, name: str, prints: list[str] | None = None) -> Path:
    """`name` of the shipped tools.yaml as if built into `root` (the toolchain dir); its binaries print
    `prints`, by default what the tool's checks expect."""
    _, tools = load_tools()
    tool = tools[name]
    target = root / tool.dir_name
    expected = [tool.expand(c.expect) for c in tool.check.values()]
    binaries = {}
    for binary in tool.binaries:
        path = script(target / "bin" / binary, expected if prints is None else prints)
        data = path.read_bytes()
        binaries[binary] = {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
    (target / layout.MANIFEST).write_text(
        json.dumps(
            {
                "name": name,
                "version": tool.version,
                "module": f"{tool.module}@{tool.module_version}",
                "recipe": tool.recipe,
                "digest": tool.digest(),
                "go": GO_VERSION,
                "build_seconds": 12.0,
                "binaries": binaries,
            }
        )
    )
    pdir = layout.plugin_dir(tool, root)
    if pdir is not None:
        assert tool.plugin is not None
        pdir.mkdir(parents=True, exist_ok=True)
        (pdir / tool.plugin.binary).write_bytes((target / "bin" / tool.plugin.binary).read_bytes())
        (pdir / tool.plugin.binary).chmod(0o755)
        (pdir / layout.PLUGIN_MARKER).write_text(binaries[tool.plugin.binary]["sha256"] + "\n")
    return target


def fake_toolchain(root: Path, names: list[str] | None = None) -> Path:
    """Every tool (or `names`) as if built; returns the toolchain dir."""
    _, tools = load_tools()
    for name in names if names is not None else tools:
        fake_tool(root, name)
    return root


def isolate_sources(monkeypatch, home: Path) -> None:
    """No toolchain settings of the person running the tests, and a HOME of the test's own (so no
    ~/.pulumi/plugins of theirs is found as a `present` provider)."""
    home.mkdir(parents=True, exist_ok=True)
    monkeypatch.setenv("HOME", str(home))
    for name in ("MIMS_TOOLCHAIN_SOURCES", "MIMS_TOOLCHAIN_SEARCH_PATH", "MIMS_OFFLINE", "PULUMI_HOME"):
        monkeypatch.delenv(name, raising=False)


def fake_machine(monkeypatch, tmp_path: Path) -> dict[str, Path]:
    """A cache with the whole toolchain built, an empty MIMS_HOME, no MIMS_PASSPHRASE, a PATH holding
    only `bin` (empty: no go, no docker; tests add fakes with `script`), and a HOME of its own."""
    cache, home, bin_dir = tmp_path / "cache", tmp_path / "home", tmp_path / "bin"
    bin_dir.mkdir()
    isolate_sources(monkeypatch, tmp_path / "user")
    monkeypatch.setenv("MIMS_CACHE_DIR", str(cache))
    monkeypatch.setenv("MIMS_HOME", str(home))
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.delenv("MIMS_PASSPHRASE", raising=False)
    toolchain = fake_toolchain(cache / "toolchain")
    return {"cache": cache, "toolchain": toolchain, "home": home, "bin": bin_dir}


def fake_go(bin_dir: Path, version: str = GO_VERSION) -> Path:
    """A `go` that answers `go env GOVERSION` (enough for the doctor; it cannot build)."""
    return script(bin_dir / "go", [version])


def remove_tool(root: Path, name: str) -> None:
    _, tools = load_tools()
    shutil.rmtree(root / tools[name].dir_name)
