"""tools.yaml as a model: the shipped file loads, each rule of an entry rejects what breaks it with
file:line:column (the broken files are in tests/fixtures/toolchain/), and the recipe digest covers what
a build depends on."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from mims.errors import ToolchainError
from mims.toolchain import load_tools
from tests.conftest import FIXTURES
from tests.toolchain.modules import TOOLS

BROKEN = FIXTURES / "toolchain"


def test_shipped_tools_file_loads():
    go_min, tools = load_tools()
    assert set(tools) == {
        "pulumi",
        "pulumi-kubernetes",
        "kubernetes",
        "kubernetes-node",
        "kubectl",
        "etcd",
        "kwok",
        "kube-router",
        "local-path-provisioner",
    }
    assert go_min
    provider = tools["pulumi-kubernetes"]
    assert provider.plugin is not None and provider.plugin.name == "kubernetes"
    assert "{version}" in provider.ldflags and provider.generate
    assert tools["kubernetes"].recipe == "main-module"
    assert set(tools["kubernetes"].binaries) == {"kube-apiserver", "kube-controller-manager", "kube-scheduler"}
    assert tools["kwok"].recipe == "install"
    assert any(dest.endswith("storage-class.yaml") for dest in tools["kwok"].files)


def test_node_binaries_are_built_as_the_control_plane_in_a_tool_of_their_own():
    """kubelet and kube-proxy must match the API server's version and build; a tool of their own keeps
    the simulated cluster (tool `kubernetes`) from building them."""
    _, tools = load_tools()
    plane, node = tools["kubernetes"], tools["kubernetes-node"]
    assert set(node.binaries) == {"kubelet", "kube-proxy"}
    same = ("version", "module", "module_version", "recipe", "local_replaces", "ldflags", "tags")
    assert {k: getattr(node, k) for k in same} == {k: getattr(plane, k) for k in same}


@pytest.mark.parametrize(
    "name, problems",
    [
        ("misspelt-key", ["11:5: tools.tiny.ldflag: unknown key `ldflag`; did you mean `ldflags`?"]),
        ("no-tools", ["1:1: required key `tools` is missing", "3:1: tool: unknown key `tool`; did you mean `tools`?"]),
        ("missing-key", ["4:3: tools.tiny: required key `module` is missing"]),
        ("unknown-recipe", ["8:13: tools.tiny.recipe: unknown recipe 'make' (install or main-module)"]),
        (
            "install-with-generate",
            ["12:7: tools.tiny.generate: `local_replaces` and `generate` need recipe main-module"],
        ),
        ("binaries-not-a-map", ["9:15: tools.tiny.binaries: input should be a valid dictionary (got './cmd/tiny')"]),
        (
            "local-replaces-list",
            ["11:21: tools.tiny.local_replaces: `local_replaces` is a version or a map module -> version"],
        ),
        ("check-unknown-binary", ["12:7: tools.tiny.check: check for unknown binary 'other' (binaries: tiny)"]),
        (
            "plugin-unknown-binary",
            ["11:13: tools.tiny.plugin: plugin binary 'pulumi-resource-tiny' is not among `binaries`"],
        ),
        ("download-without-url", ["14:7: tools.tiny.download: `download` needs a `url`"]),
        (
            "download-without-checksums",
            ["12:7: tools.tiny.download: `download` needs `checksums` (a URL) or pinned `sha256` values"],
        ),
        (
            "download-paths-unknown-binary",
            ["12:7: tools.tiny.download: `download.paths` names a binary that is not among `binaries`"],
        ),
        (
            "download-url-not-archive",
            [
                "13:7: tools.tiny.download: a `download.url` without {binary} must be an archive or the tool's only binary"
            ],
        ),
    ],
)
def test_broken_tools_file_is_reported_with_its_position(name, problems):
    path = BROKEN / f"{name}.yaml"
    with pytest.raises(ToolchainError) as caught:
        load_tools(path)
    assert str(caught.value).splitlines() == [f"{path}:{problem}" for problem in problems]


@pytest.mark.parametrize(
    "broken, message",
    [
        ({"tiny": {"version": "1"}}, "`module` is missing"),
        ({"tiny": {**TOOLS["tiny"], "recipe": "make"}}, "unknown recipe 'make'"),
        ({"tiny": {**TOOLS["tiny"], "generate": [{"run": ["true"]}]}}, "need recipe main-module"),
        ({"tiny": {**TOOLS["tiny"], "check": {"other": {"expect": "x"}}}}, "check for unknown binary"),
    ],
)
def test_malformed_tools_file_is_reported(tmp_path, broken, message):
    path = tmp_path / "tools.yaml"
    path.write_text(yaml.safe_dump({"tools": broken}))
    with pytest.raises(ToolchainError, match=message):
        load_tools(path)


@pytest.mark.parametrize(
    "download, message",
    [
        ({"checksums": "https://example.test/sums"}, "`download` needs a `url`"),
        ({"url": "https://example.test/tiny"}, "`download` needs `checksums` .* or pinned `sha256`"),
        (
            {"url": "https://example.test/t.tgz", "checksums": "x", "paths": {"other": "o"}},
            "names a binary that is not",
        ),
    ],
)
def test_malformed_download_entry_is_reported(tmp_path, download, message):
    path = _write(tmp_path, {"tiny": {**TOOLS["tiny"], "download": download}})
    with pytest.raises(ToolchainError, match=message):
        load_tools(path)


def test_plugin_binary_defaults_to_the_first_binary(tmp_path):
    app = {**TOOLS["app"], "plugin": {"kind": "resource", "name": "app"}}
    [tool] = load_tools(_write(tmp_path, {"app": app}))[1].values()
    assert tool.plugin is not None and tool.plugin.binary == "app-bin"


def test_download_platforms_default_to_those_that_can_be_verified():
    _, tools = load_tools()
    assert tools["pulumi"].download.platforms == ("linux/amd64", "linux/arm64", "darwin/amd64", "darwin/arm64")
    assert tools["kwok"].download.platforms == ("linux/amd64", "darwin/arm64")  # its pinned sha256 values


def test_digest_follows_the_recipe_not_the_download(tmp_path):
    digest = load_tools(_write(tmp_path, TOOLS))[1]["tiny"].digest()
    downloaded = {
        **TOOLS,
        "tiny": {
            **TOOLS["tiny"],
            "module_sum": "h1:x",
            "download": {"url": "https://example.test/tiny", "checksums": "https://example.test/SHA256SUMS"},
        },
    }
    assert load_tools(_write(tmp_path, downloaded))[1]["tiny"].digest() == digest
    patched = {**TOOLS, "tiny": {**TOOLS["tiny"], "ldflags": "-X main.version=patched"}}
    assert load_tools(_write(tmp_path, patched))[1]["tiny"].digest() != digest


def _write(tmp_path: Path, tools: dict) -> Path:
    path = tmp_path / "tools.yaml"
    path.write_text(yaml.safe_dump({"go": "1.22", "tools": tools}))
    return path
