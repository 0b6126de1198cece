"""The OCI archive writer (fast, no root): what `ctr image import` reads must check out."""

from __future__ import annotations

import gzip
import io
import json
import os
import tarfile
from pathlib import Path

import pytest

from tests.images.oci import CONTAINERD_NAME, REF_NAME, ImageConfig, InvalidArchive, inspect_archive, write_archive

NAME = "docker.io/library/example:1.0"


@pytest.fixture
def rootfs(tmp_path: Path) -> Path:
    root = tmp_path / "rootfs"
    (root / "usr/bin").mkdir(parents=True)
    (root / "etc").mkdir()
    (root / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    tool = root / "usr/bin/tool"
    tool.write_text("#!/bin/sh\necho hi\n")
    tool.chmod(0o4755)
    os.link(tool, root / "usr/bin/tool-again")
    (root / "bin").symlink_to("usr/bin")
    (root / "tmp").mkdir()
    (root / "tmp").chmod(0o1777)
    return root


@pytest.fixture
def archive(tmp_path: Path, rootfs: Path) -> Path:
    config = ImageConfig(
        user="101",
        entrypoint=["/docker-entrypoint.sh"],
        cmd=["nginx", "-g", "daemon off;"],
        env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},
        workdir="/data",
        ports=[8080],
        volumes=["/data"],
        stop_signal="SIGQUIT",
    )
    out = tmp_path / "image.tar"
    write_archive(rootfs, config, NAME, out)
    return out


def layer_members(archive: Path) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(archive) as outer:
        manifest_name = json.loads(outer.extractfile("index.json").read())["manifests"][0]["digest"]
        manifest = json.loads(outer.extractfile("blobs/sha256/" + manifest_name.split(":")[1]).read())
        layer = outer.extractfile("blobs/sha256/" + manifest["layers"][0]["digest"].split(":")[1]).read()
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(layer))) as tar:
        return {m.name: m for m in tar.getmembers()}


def test_layout_names_the_image_and_every_digest_and_size_checks_out(archive: Path):
    checked = inspect_archive(archive)
    assert checked.name == NAME
    with tarfile.open(archive) as tar:
        index = json.loads(tar.extractfile("index.json").read())
        assert json.loads(tar.extractfile("oci-layout").read()) == {"imageLayoutVersion": "1.0.0"}
    assert index["manifests"][0]["annotations"] == {REF_NAME: NAME, CONTAINERD_NAME: NAME}
    assert index["manifests"][0]["platform"] == {"architecture": "amd64", "os": "linux"}


def test_config_carries_the_runtime_contract(archive: Path):
    config = inspect_archive(archive).config
    assert config["config"] == {
        "User": "101",
        "Entrypoint": ["/docker-entrypoint.sh"],
        "Cmd": ["nginx", "-g", "daemon off;"],
        "Env": ["PATH=/usr/bin:/bin", "LANG=C.UTF-8"],
        "WorkingDir": "/data",
        "ExposedPorts": {"8080/tcp": {}},
        "Volumes": {"/data": {}},
        "StopSignal": "SIGQUIT",
    }
    assert (config["os"], config["architecture"], config["rootfs"]["type"]) == ("linux", "amd64", "layers")


def test_layer_keeps_modes_links_and_numeric_owners(archive: Path):
    members = layer_members(archive)
    assert members["usr/bin/tool"].mode == 0o4755
    assert members["tmp"].mode == 0o1777
    assert members["bin"].issym() and members["bin"].linkname == "usr/bin"
    assert members["usr/bin/tool-again"].islnk() and members["usr/bin/tool-again"].linkname == "usr/bin/tool"
    assert {(m.uname, m.gname) for m in members.values()} == {("", "")}


def test_a_blob_that_does_not_match_its_digest_is_refused(archive: Path, tmp_path: Path):
    tampered = tmp_path / "tampered.tar"
    with tarfile.open(archive) as source, tarfile.open(tampered, "w") as target:
        manifest = json.loads(source.extractfile("index.json").read())["manifests"][0]["digest"]
        for member in source.getmembers():
            data = source.extractfile(member).read() if member.isfile() else None
            if member.name.endswith(manifest.split(":")[1]):
                data = data.replace(b'"schemaVersion":2', b'"schemaVersion":3')
                member.size = len(data)
            target.addfile(member, io.BytesIO(data) if data is not None else None)
    with pytest.raises(InvalidArchive, match="does not match its digest"):
        inspect_archive(tampered)
