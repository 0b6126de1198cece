"""Tiny Go modules and the tools.yaml entries that build them, for the toolchain tests: published into
a file:// GOPROXY in a temporary directory (conftest.py), so nothing is fetched from the network."""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

GO = shutil.which("go")
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
        "func main() { fmt.Println(lib.Greeting(), version, generated) }\n",
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


def publish(proxy: Path, module: str, version: str, files: dict[str, str]) -> Path:
    """Lays out `module@version` as a GOPROXY serves it; returns the zip."""
    base = proxy / module / "@v"
    base.mkdir(parents=True, exist_ok=True)
    with (base / "list").open("a") as handle:
        handle.write(version + "\n")
    (base / f"{version}.info").write_text(json.dumps({"Version": version, "Time": TIME}))
    (base / f"{version}.mod").write_text(files["go.mod"])
    with zipfile.ZipFile(base / f"{version}.zip", "w") as archive:
        for rel, text in files.items():
            archive.writestr(f"{module}@{version}/{rel}", text)
    return base / f"{version}.zip"


def publish_all(proxy: Path) -> None:
    for (module, version), files in MODULES.items():
        publish(proxy, module, version, files)
