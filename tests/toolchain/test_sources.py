"""The sources a tool is installed from besides a build: binaries already on this machine (`present`) and
the official release download (`download`, served here by a local HTTP server), the order they are tried
in, their restriction (`sources=`, MIMS_TOOLCHAIN_SOURCES, MIMS_OFFLINE), and the error when none works.
Nothing here reaches the network; the tests that fall through to a build use the tiny Go modules of
modules.py and need `go`."""

from __future__ import annotations

import hashlib
import http.server
import io
import json
import os
import socket
import subprocess
import sys
import tarfile
import threading
import zipfile
from pathlib import Path

import pytest
import yaml

from mims.errors import ToolchainError, UsageError
from mims.toolchain import checks, download, install, load_tools, modulezip, pulumi_home, sources, status
from tests.conftest import Said
from tests.toolchain.fakes import isolate_sources, script
from tests.toolchain.modules import GO, MODULES, TOOLS, publish

PLATFORM = sources.host_platform()
OS, ARCH = PLATFORM.split("/")
needs_go = pytest.mark.skipif(GO is None, reason="go is not on PATH (the fallback build needs it)")
TINY = f"tiny-v1.0.0-{OS}-{ARCH}.tar.gz"


class Server:
    """Serves `root` over HTTP on 127.0.0.1 and records the paths asked for."""

    def __init__(self, root: Path) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.root = root
        self.requests: list[str] = []
        requests = self.requests

        class Handler(http.server.SimpleHTTPRequestHandler):
            def __init__(self, *args, **kwargs):
                super().__init__(*args, directory=str(root), **kwargs)

            def do_GET(self):
                requests.append(self.path)
                super().do_GET()

            def log_message(self, *_args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server(tmp_path):
    served = Server(tmp_path / "www")
    yield served
    served.close()


def closed_port_url() -> str:
    """A URL nothing listens on: connecting is refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def tarball(path: Path, members: dict[str, str]) -> Path:
    """A .tar.gz of executable shell scripts; `members` maps a path inside to the line it prints."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as tar:
        for name, prints in members.items():
            data = f"#!/bin/sh\necho '{prints}'\n".encode()
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o755
            tar.addfile(info, io.BytesIO(data))
    return path


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def tiny_release(www: Path, published: str | None = None) -> Path:
    """tiny's release archive and a SHA256SUMS listing it (with `published` instead of its hash)."""
    archive = tarball(www / TINY, {"tiny-1.0.0/tiny": "tiny version 1.0.0"})
    (www / "SHA256SUMS").write_text(f"{'0' * 64}  other-file.tar.gz\n{published or sha256(archive)}  {TINY}\n")
    return archive


def tiny_download(base: str) -> dict:
    return {
        "url": base + "/tiny-v{version}-{os}-{arch}.tar.gz",
        "checksums": base + "/SHA256SUMS",
        "paths": {"tiny": "tiny-{version}/tiny"},
    }


def write_tools(path: Path, tools: dict) -> Path:
    path.write_text(yaml.safe_dump({"go": "1.22", "tools": tools}))
    return path


def manifest(cache: Path, dir_name: str) -> dict:
    return json.loads((cache / dir_name / "tool.json").read_text())


def run(path: Path) -> str:
    return subprocess.run([str(path)], capture_output=True, text=True, check=True).stdout.strip()


@pytest.fixture
def machine(monkeypatch, tmp_path):
    """No go, nothing on PATH but `bin`, a HOME of its own, and tiny's module in a file:// GOPROXY
    (where a tool that is not built gets its data files); `tools(...)` writes a tools.yaml."""
    isolate_sources(monkeypatch, tmp_path / "user")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    monkeypatch.setenv("PATH", str(bin_dir))
    zip_path = publish(tmp_path / "proxy", "example.test/tiny", "v1.0.0", MODULES[("example.test/tiny", "v1.0.0")])
    monkeypatch.setenv("GOPROXY", (tmp_path / "proxy").as_uri())
    monkeypatch.setenv("GOMODCACHE", str(tmp_path / "modcache"))
    tiny = {**TOOLS["tiny"], "module_sum": modulezip.module_hash(zip_path)}
    return {
        "bin": bin_dir,
        "cache": tmp_path / "toolchain",
        "zip": zip_path,
        "tiny": tiny,
        "tools_file": tmp_path / "tools.yaml",
        "tmp": tmp_path,
    }


def install_and_log(machine, names=None, **kwargs):
    said = Said()
    result = install(names, cache_dir=machine["cache"], tools_file=machine["tools_file"], progress=said, **kwargs)
    return result, [line.split(": ", 1)[1] for line in said.lines]


# --------------------------------------------------------------------------------------------------
# present


def test_binary_on_path_at_the_right_version_is_linked_without_go(machine):
    write_tools(machine["tools_file"], {"tiny": machine["tiny"]})
    found = script(machine["bin"] / "tiny", ["tiny version 1.0.0"])
    result, messages = install_and_log(machine)
    tiny = result["tiny"]
    assert (tiny.source, tiny.built) == ("present", True)
    assert tiny["tiny"].is_symlink() and tiny["tiny"].resolve() == found
    assert (tiny.dir / "share/stages/fast.yaml").read_text() == "kind: Stage\n"
    data = manifest(machine["cache"], "tiny-1.0.0")
    assert data["source"] == "present" and data["found"] == {"tiny": str(found)}
    assert data["files_from"].endswith("example.test/tiny/@v/v1.0.0.zip")
    assert f"found tiny 1.0.0 at {found}" in messages

    again, messages = install_and_log(machine)
    assert not again["tiny"].built and messages == [f"tiny 1.0.0 is already linked ({found})"]
    [entry] = status(machine["cache"], machine["tools_file"])
    assert (entry.state, entry.source, entry.origin) == ("present", "present", str(found))

    script(found, ["tiny version 1.0.0", "(replaced by another copy)"])
    [entry] = status(machine["cache"], machine["tools_file"])
    assert entry.state == "stale"  # the file linked to changed: checked again on the next install
    assert install_and_log(machine)[0]["tiny"].built


def test_wrong_version_on_path_is_ignored(machine, monkeypatch):
    write_tools(machine["tools_file"], {"tiny": machine["tiny"]})
    wrong = script(machine["bin"] / "tiny", ["tiny version 1.0.0-dirty"])
    with pytest.raises(ToolchainError) as caught:
        install_and_log(machine, sources=["present"])
    assert str(caught.value) == (
        "cannot install tiny 1.0.0:\n  present: no tiny 1.0.0 on PATH; "
        f"{wrong}: `tiny` printed 'tiny version 1.0.0-dirty', not 'tiny version 1.0.0'"
    )
    assert not (machine["cache"] / "tiny-1.0.0").exists()

    extra = machine["tmp"] / "extra"
    right = script(extra / "tiny", ["tiny version 1.0.0"])
    monkeypatch.setenv("MIMS_TOOLCHAIN_SEARCH_PATH", str(extra))
    result, _ = install_and_log(machine, sources=["present"])
    assert result["tiny"]["tiny"].resolve() == right


FAKE_PLUGIN = """#!{python}
from concurrent import futures
import grpc
from pulumi.runtime.proto import plugin_pb2, provider_pb2_grpc

class Provider(provider_pb2_grpc.ResourceProviderServicer):
    def GetPluginInfo(self, request, context):
        return plugin_pb2.PluginInfo(version="{version}")

server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
provider_pb2_grpc.add_ResourceProviderServicer_to_server(Provider(), server)
print(server.add_insecure_port("127.0.0.1:0"), flush=True)
server.start()
try:
    server.wait_for_termination()
except KeyboardInterrupt:
    pass
"""


def fake_plugin(path: Path, version: str) -> Path:
    """A Pulumi resource provider that answers GetPluginInfo with `version`, as the real one does."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(FAKE_PLUGIN.format(python=sys.executable, version=version))
    path.chmod(0o755)
    return path


def test_plugin_is_asked_its_version_and_found_in_pulumis_plugin_dir(machine, monkeypatch):
    write_tools(machine["tools_file"], {"app": TOOLS["app"]})
    wrong = fake_plugin(machine["tmp"] / "extra" / "app-bin", "2.4.0")
    monkeypatch.setenv("MIMS_TOOLCHAIN_SEARCH_PATH", str(wrong.parent))
    with pytest.raises(ToolchainError, match=r"the plugin says it is version '2.4.0', not '2.5.0'"):
        install_and_log(machine, sources=["present"])

    right = fake_plugin(machine["tmp"] / "user/.pulumi/plugins/resource-app-v2.5.0/app-bin", "2.5.0")
    result, messages = install_and_log(machine, sources=["present"])
    assert result["app"].source == "present" and result["app"]["app-bin"].resolve() == right
    placed = pulumi_home(machine["cache"]) / "plugins" / "resource-app-v2.5.0" / "app-bin"
    assert placed.read_bytes() == right.read_bytes() and not placed.is_symlink()
    assert f"found app-bin 2.5.0 at {right}" in messages


def test_present_data_files_offline_come_from_the_module_cache_only(machine, monkeypatch):
    monkeypatch.setenv("MIMS_OFFLINE", "1")
    write_tools(machine["tools_file"], {"tiny": machine["tiny"]})
    script(machine["bin"] / "tiny", ["tiny version 1.0.0"])
    with pytest.raises(ToolchainError, match=r"which is not in the Go module cache .* and nothing is downloaded"):
        install_and_log(machine, sources=["present"])
    cached = machine["tmp"] / "modcache/cache/download/example.test/tiny/@v/v1.0.0.zip"
    cached.parent.mkdir(parents=True)
    cached.write_bytes(machine["zip"].read_bytes())
    install_and_log(machine, sources=["present"])
    assert manifest(machine["cache"], "tiny-1.0.0")["files_from"] == str(cached)


# --------------------------------------------------------------------------------------------------
# download


def test_download_that_works_installs_with_source_download(machine, server):
    write_tools(machine["tools_file"], {"tiny": {**machine["tiny"], "download": tiny_download(server.url)}})
    tiny_release(server.root)
    result, messages = install_and_log(machine)  # nothing on PATH, no go
    tiny = result["tiny"]
    assert (tiny.source, tiny.built) == ("download", True)
    assert run(tiny["tiny"]) == "tiny version 1.0.0" and not tiny["tiny"].is_symlink()
    assert (tiny.dir / "share/stages/fast.yaml").read_text() == "kind: Stage\n"
    url = f"{server.url}/{TINY}"
    assert manifest(machine["cache"], "tiny-1.0.0")["urls"] == {"tiny": url}
    assert server.requests == ["/SHA256SUMS", f"/{TINY}"]
    assert messages[0] == "not found on this machine (no tiny 1.0.0 on PATH); downloading from 127.0.0.1"
    assert f"downloading {url}" in messages and messages[-1].startswith("downloaded tiny 1.0.0 in ")
    [entry] = status(machine["cache"], machine["tools_file"])
    assert (entry.state, entry.source, entry.origin) == ("present", "download", url)


def test_download_of_one_file_per_binary_and_zip_archives(machine, server):
    """dl.k8s.io's layout (a bare file per binary, `<binary>.sha256` holding just the hash) and etcd's
    macOS one (a .zip, chosen by `ext`)."""
    for binary in ("duo-a", "duo-b"):
        path = script(server.root / "bin" / OS / ARCH / binary, [f"{binary} v3.0.0"])
        (path.parent / f"{binary}.sha256").write_text(sha256(path) + "\n")
    with zipfile.ZipFile(server.root / f"zipped-3.0.0-{OS}.zip", "w") as archive:
        info = zipfile.ZipInfo("zipped/zipped")
        info.external_attr = 0o755 << 16
        archive.writestr(info, "#!/bin/sh\necho 'zipped 3.0.0'\n")
    (server.root / "sums.txt").write_text(f"{sha256(server.root / f'zipped-3.0.0-{OS}.zip')} *zipped-3.0.0-{OS}.zip\n")
    base = {"version": "3.0.0", "module": "example.test/none", "module_version": "v3.0.0", "recipe": "install"}
    write_tools(
        machine["tools_file"],
        {
            "duo": {
                **base,
                "binaries": {"duo-a": "./a", "duo-b": "./b"},
                "check": {"duo-a": {"expect": "duo-a v{version}"}, "duo-b": {"expect": "duo-b v{version}"}},
                "download": {
                    "url": server.url + "/bin/{os}/{arch}/{binary}",
                    "checksums": server.url + "/bin/{os}/{arch}/{binary}.sha256",
                },
            },
            "zipped": {
                **base,
                "binaries": {"zipped": "."},
                "check": {"zipped": {"expect": "zipped {version}"}},
                "download": {
                    "url": server.url + "/zipped-{version}-{os}.{ext}",
                    "checksums": server.url + "/sums.txt",
                    "ext": {OS: "zip"},
                    "paths": {"zipped": "zipped/zipped"},
                },
            },
        },
    )
    result, _ = install_and_log(machine, sources=["download"])
    assert run(result["duo"]["duo-b"]) == "duo-b v3.0.0" and run(result["zipped"]["zipped"]) == "zipped 3.0.0"
    assert len(manifest(machine["cache"], "duo-3.0.0")["urls"]) == 2


def test_downloaded_binary_that_prints_another_version_is_rejected(machine, server):
    write_tools(machine["tools_file"], {"tiny": {**machine["tiny"], "download": tiny_download(server.url)}})
    archive = tarball(server.root / TINY, {"tiny-1.0.0/tiny": "tiny version 0.9.0"})
    (server.root / "SHA256SUMS").write_text(f"{sha256(archive)}  {TINY}\n")
    with pytest.raises(ToolchainError) as caught:
        install_and_log(machine, sources=["download"])
    assert "download: the downloaded `tiny` printed 'tiny version 0.9.0', not 'tiny version 1.0.0'" in str(caught.value)


@needs_go
def test_download_with_a_bad_checksum_is_rejected_and_falls_through_to_build(env, server):
    tools = {"tiny": {**TOOLS["tiny"], "download": tiny_download(server.url)}}
    machine = {"cache": env["cache"], "tools_file": write_tools(env["tools_file"], tools)}
    archive = tiny_release(server.root, published="ab" * 32)
    result, messages = install_and_log(machine)
    assert result["tiny"].source == "build" and "go" in manifest(env["cache"], "tiny-1.0.0")
    assert (
        f"download rejected ({TINY} has sha256 {sha256(archive)}, not the published {'ab' * 32}); "
        f"building from the Go module proxy"
    ) in messages


@needs_go
def test_unreachable_download_falls_back_to_build(env):
    tools = {"tiny": {**TOOLS["tiny"], "download": tiny_download(closed_port_url())}}
    machine = {"cache": env["cache"], "tools_file": write_tools(env["tools_file"], tools)}
    result, messages = install_and_log(machine)
    assert result["tiny"].source == "build"
    assert "download unavailable (127.0.0.1: connection refused); building from the Go module proxy" in messages
    assert run(result["tiny"]["tiny"]) == "tiny version 1.0.0"


@needs_go
def test_source_build_skips_the_others(env, server, monkeypatch, tmp_path):
    tools = {"tiny": {**TOOLS["tiny"], "download": tiny_download(server.url)}}
    machine = {"cache": env["cache"], "tools_file": write_tools(env["tools_file"], tools)}
    tiny_release(server.root)
    on_path = script(tmp_path / "bin" / "tiny", ["tiny version 1.0.0"])
    monkeypatch.setenv("PATH", f"{on_path.parent}{os.pathsep}{os.environ['PATH']}")
    result, messages = install_and_log(machine, sources=["build"])
    assert result["tiny"].source == "build" and not result["tiny"]["tiny"].is_symlink()
    assert server.requests == [] and not any(m.startswith("found") for m in messages)


@needs_go
def test_module_hash_is_the_one_go_computes(env):
    out = subprocess.run(
        [GO, "mod", "download", "-json", "example.test/tiny@v1.0.0"], capture_output=True, text=True, check=True
    ).stdout
    info = json.loads(out)
    assert modulezip.module_hash(Path(info["Zip"])) == info["Sum"]


# --------------------------------------------------------------------------------------------------
# Nothing works; offline; choosing sources


def test_nothing_works_names_every_tool_and_why_each_source_failed(machine):
    dead = closed_port_url()
    app_download = {"url": dead + "/app.tar.gz", "checksums": dead + "/sums"}
    write_tools(
        machine["tools_file"],
        {
            "tiny": {**machine["tiny"], "download": tiny_download(dead)},
            "app": {**TOOLS["app"], "download": app_download},
        },
    )
    with pytest.raises(ToolchainError) as caught:
        install_and_log(machine)
    message = str(caught.value)
    for line in [
        "cannot install tiny 1.0.0:",
        "  present: no tiny 1.0.0 on PATH",
        "  download: 127.0.0.1: connection refused",
        "  build: cannot build tiny 1.0.0: `go` is not on PATH",
        "cannot install app 2.5.0:",
        "  present: no app-bin 2.5.0 in Pulumi's plugin dirs or on PATH",
        "  build: cannot build app 2.5.0: `go` is not on PATH",
    ]:
        assert f"\n{line}" in f"\n{message}", line
    assert message.count("download: 127.0.0.1: connection refused") == 2  # the host was asked once
    assert caught.value.tool == "app"  # the first tool of the file (safe_dump sorts them)


def test_offline_never_downloads(machine, server, monkeypatch):
    monkeypatch.setenv("MIMS_OFFLINE", "1")
    write_tools(machine["tools_file"], {"tiny": {**machine["tiny"], "download": tiny_download(server.url)}})
    tiny_release(server.root)
    with pytest.raises(ToolchainError) as caught:
        install_and_log(machine)
    assert server.requests == []
    assert str(caught.value).splitlines()[1:3] == [
        "  present: no tiny 1.0.0 on PATH",
        "  build: cannot build tiny 1.0.0: `go` is not on PATH (mims builds its tools from the Go module proxy; "
        "install Go 1.22 or newer)",
    ]


def test_environment_restricts_the_sources(machine, server, monkeypatch):
    monkeypatch.setenv("MIMS_TOOLCHAIN_SOURCES", "present")
    write_tools(machine["tools_file"], {"tiny": {**machine["tiny"], "download": tiny_download(server.url)}})
    tiny_release(server.root)
    with pytest.raises(ToolchainError, match=r"^cannot install tiny 1.0.0:\n  present: no tiny 1.0.0 on PATH$"):
        install_and_log(machine)
    assert server.requests == []


def test_resolve_sources(monkeypatch):
    monkeypatch.delenv("MIMS_TOOLCHAIN_SOURCES", raising=False)
    monkeypatch.delenv("MIMS_OFFLINE", raising=False)
    assert sources.resolve_sources() == ("present", "download", "build")
    assert sources.resolve_sources(["build", "download,present"]) == ("present", "download", "build")
    monkeypatch.setenv("MIMS_TOOLCHAIN_SOURCES", "build, present")
    assert sources.resolve_sources() == ("present", "build")
    assert sources.resolve_sources(["download"]) == ("download",)  # --source wins over the variable
    with pytest.raises(UsageError, match=r"--source: unknown source ftp; choose from present, download, build"):
        sources.resolve_sources(["present,ftp"])
    monkeypatch.setenv("MIMS_OFFLINE", "1")
    assert sources.resolve_sources(["present,download,build"]) == ("present", "build")
    with pytest.raises(UsageError, match=r"MIMS_OFFLINE=1 rules out downloads"):
        sources.resolve_sources(["download"])
    monkeypatch.setenv("MIMS_OFFLINE", "0")
    assert sources.resolve_sources(["download"]) == ("download",)


@pytest.mark.parametrize(
    "expect, text, matches",
    [
        ("v1.33.13", "Client Version: v1.33.13\nKustomize Version: v5.6.0", True),
        ("v1.33.13", "Client Version: v1.32.4-dispatcher", False),
        ("v1.33.13", "Client Version: v1.33.13-dirty", False),
        ("0.8.0", "kwok version v0.8.0 go1.26.8 (linux/amd64)", True),
        ("0.8.0", "kwok version v10.8.0", False),
        ("etcd Version: 3.6.16", "etcd Version: 3.6.160\n", False),
        ("etcd Version: 3.6.16", "etcd Version: 3.6.16\nGit SHA: x", True),
    ],
)
def test_a_check_matches_whole_versions_only(expect, text, matches):
    assert checks.printed(expect, text) is matches


def test_published_checksum_formats():
    digest = "ab" * 32
    assert download._published_sha256(f"{digest}\n", "kube-apiserver") == digest  # dl.k8s.io: the hash alone
    listing = f"{'cd' * 32}  etcd-v3.6.16-darwin-arm64.zip\n{digest}  etcd-v3.6.16-linux-amd64.tar.gz\n"
    assert download._published_sha256(listing, "etcd-v3.6.16-linux-amd64.tar.gz") == digest
    assert download._published_sha256(f"{digest.upper()} *./kwok-linux-amd64\n", "kwok-linux-amd64") == digest
    assert download._published_sha256(listing, "etcd-v3.6.16-linux-arm64.tar.gz") == ""


def test_shipped_download_urls():
    _, tools = load_tools()
    urls = {
        name: [(f.url, f.checksums or f.sha256) for f in download.release_files(tool, "linux/amd64")]
        for name, tool in tools.items()
        if tool.download is not None
    }
    assert urls["pulumi"] == [
        (
            "https://get.pulumi.com/releases/sdk/pulumi-v3.274.1-linux-x64.tar.gz",
            "https://get.pulumi.com/releases/sdk/pulumi-3.274.1-checksums.txt",
        )
    ]
    assert urls["pulumi-kubernetes"][0][0] == (
        "https://github.com/pulumi/pulumi-kubernetes/releases/download/"
        "v4.25.0/pulumi-resource-kubernetes-v4.25.0-linux-amd64.tar.gz"
    )
    assert urls["kubernetes"][0] == (
        "https://dl.k8s.io/v1.33.13/bin/linux/amd64/kube-apiserver",
        "https://dl.k8s.io/v1.33.13/bin/linux/amd64/kube-apiserver.sha256",
    )
    assert len(urls["kubernetes"]) == 3
    assert urls["kubernetes-node"] == [
        (
            f"https://dl.k8s.io/v1.33.13/bin/linux/amd64/{b}",
            f"https://dl.k8s.io/v1.33.13/bin/linux/amd64/{b}.sha256",
        )
        for b in ("kubelet", "kube-proxy")
    ]
    assert "kube-router" not in urls  # its release binaries print no version (tools.yaml)
    assert urls["etcd"] == [
        (
            "https://github.com/etcd-io/etcd/releases/download/v3.6.16/etcd-v3.6.16-linux-amd64.tar.gz",
            "https://github.com/etcd-io/etcd/releases/download/v3.6.16/SHA256SUMS",
        )
    ]
    assert urls["kwok"][0][0] == "https://github.com/kubernetes-sigs/kwok/releases/download/v0.8.0/kwok-linux-amd64"
    assert download.release_files(tools["etcd"], "darwin/arm64")[0].url.endswith("etcd-v3.6.16-darwin-arm64.zip")
    assert "darwin/arm64" not in tools["kubernetes"].download.platforms  # no macOS server binaries
    assert "darwin/arm64" not in tools["kubernetes-node"].download.platforms
    assert tools["kwok"].module_sum.startswith("h1:")
