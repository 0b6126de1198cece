"""OCI image-layout archives written from a root filesystem, without Docker or a registry.

The archive is what `ctr image import` (and so a cluster that cannot pull) reads: `oci-layout`,
`index.json` naming the image, and `blobs/sha256/` with one manifest, one config and one gzip layer
that holds the whole root filesystem. The layout is the OCI image spec's (image-spec v1.0:
image-layout.md, manifest.md, config.md, annotations.md); `io.containerd.image.name` is the
annotation containerd's importer names the image by."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

INDEX = "application/vnd.oci.image.index.v1+json"
MANIFEST = "application/vnd.oci.image.manifest.v1+json"
CONFIG = "application/vnd.oci.image.config.v1+json"
LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
REF_NAME = "org.opencontainers.image.ref.name"
CONTAINERD_NAME = "io.containerd.image.name"


@dataclass(frozen=True)
class ImageConfig:
    """What a runtime reads from the image config: the process, its user and its environment."""

    user: str | None = None
    entrypoint: list[str] | None = None
    cmd: list[str] | None = None
    env: dict[str, str] = field(default_factory=dict)
    workdir: str | None = None
    ports: list[int] = field(default_factory=list)
    volumes: list[str] = field(default_factory=list)
    stop_signal: str | None = None

    def as_oci(self) -> dict:
        out: dict = {"Env": [f"{k}={v}" for k, v in self.env.items()]}
        if self.user is not None:
            out["User"] = self.user
        if self.entrypoint is not None:
            out["Entrypoint"] = self.entrypoint
        if self.cmd is not None:
            out["Cmd"] = self.cmd
        if self.workdir:
            out["WorkingDir"] = self.workdir
        if self.ports:
            out["ExposedPorts"] = {f"{p}/tcp": {} for p in self.ports}
        if self.volumes:
            out["Volumes"] = {v: {} for v in self.volumes}
        if self.stop_signal:
            out["StopSignal"] = self.stop_signal
        return out


@dataclass(frozen=True)
class Blob:
    digest: str  # sha256:<hex>
    size: int

    def descriptor(self, media_type: str, **extra) -> dict:
        return {"mediaType": media_type, "digest": self.digest, "size": self.size, **extra}


class _Hashing(io.RawIOBase):
    """A write-through file that hashes and counts what passes, so a layer is digested while written."""

    def __init__(self, target: BinaryIO):
        self.target, self.sha, self.size = target, hashlib.sha256(), 0

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:  # type: ignore[override]
        self.sha.update(data)
        self.size += len(data)
        self.target.write(data)
        return len(data)

    def blob(self) -> Blob:
        return Blob(f"sha256:{self.sha.hexdigest()}", self.size)


def write_layer(rootfs: Path, out: BinaryIO) -> tuple[Blob, str]:
    """The gzip tar of `rootfs` into `out`: (blob of the compressed bytes, diff_id of the tar).

    Entries are sorted, owners numeric only (the build host's user names mean nothing in the image),
    hard links kept as links, file capabilities kept; sockets are skipped (tar cannot hold them)."""
    compressed = _Hashing(out)
    with gzip.GzipFile(fileobj=compressed, mode="wb", compresslevel=6, mtime=0, filename="") as gz:
        plain = _Hashing(gz)  # type: ignore[arg-type]
        with tarfile.open(fileobj=plain, mode="w|", format=tarfile.PAX_FORMAT) as tar:
            for path, arcname in _walk(rootfs):
                info = tar.gettarinfo(str(path), arcname)
                if info is None:
                    continue
                info.uname = info.gname = ""
                if info.isreg():
                    info.pax_headers.update(_file_capabilities(path))
                    with open(path, "rb") as f:
                        tar.addfile(info, f)
                else:
                    tar.addfile(info)
    return compressed.blob(), plain.blob().digest


def _file_capabilities(path: Path) -> dict[str, str]:
    """A file's capabilities (`setcap`, e.g. CoreDNS's cap_net_bind_service) as the PAX record
    containerd applies when it unpacks a layer; the binary value travels as surrogate escapes."""
    try:
        value = os.getxattr(path, "security.capability", follow_symlinks=False)
    except OSError:
        return {}
    return {"SCHILY.xattr.security.capability": value.decode("utf-8", "surrogateescape")}


def _walk(rootfs: Path):
    """(path, name in the layer) of everything under rootfs, parents first, in sorted order."""
    for top, dirs, files in os.walk(rootfs):
        dirs.sort()
        rel = os.path.relpath(top, rootfs)
        entries = sorted(files + [d for d in dirs if os.path.islink(os.path.join(top, d))])
        if rel != ".":
            yield Path(top), rel
        for name in entries:
            yield Path(top, name), name if rel == "." else f"{rel}/{name}"
        dirs[:] = [d for d in dirs if not os.path.islink(os.path.join(top, d))]


def write_archive(rootfs: Path, config: ImageConfig, name: str, out: Path, history: str = "") -> Blob:
    """Write the OCI layout archive of `rootfs` as image `name` (a full reference such as
    `docker.io/library/postgres:18.1-alpine`) to `out`, atomically. Returns the manifest's blob."""
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    layer_file = out.with_name(out.name + ".layer")
    try:
        with open(layer_file, "wb") as f:
            layer, diff_id = write_layer(rootfs, f)
        config_json = _json(
            {
                "architecture": "amd64",
                "os": "linux",
                "config": config.as_oci(),
                "rootfs": {"type": "layers", "diff_ids": [diff_id]},
                "history": [{"created_by": history or f"tests/images: {name}"}],
            }
        )
        config_blob = _blob_of(config_json)
        manifest_json = _json(
            {
                "schemaVersion": 2,
                "mediaType": MANIFEST,
                "config": config_blob.descriptor(CONFIG),
                "layers": [layer.descriptor(LAYER)],
            }
        )
        manifest = _blob_of(manifest_json)
        index_json = _json(
            {
                "schemaVersion": 2,
                "mediaType": INDEX,
                "manifests": [
                    manifest.descriptor(
                        MANIFEST,
                        annotations={REF_NAME: name, CONTAINERD_NAME: name},
                        platform={"architecture": "amd64", "os": "linux"},
                    )
                ],
            }
        )
        with tarfile.open(partial, "w", format=tarfile.PAX_FORMAT) as tar:
            _add_bytes(tar, "oci-layout", _json({"imageLayoutVersion": "1.0.0"}))
            _add_bytes(tar, "index.json", index_json)
            _add_bytes(tar, "blobs", None)
            _add_bytes(tar, "blobs/sha256", None)
            _add_bytes(tar, _blob_path(manifest), manifest_json)
            _add_bytes(tar, _blob_path(config_blob), config_json)
            tar.add(layer_file, _blob_path(layer), recursive=False, filter=_plain_owner)
        partial.replace(out)
        return manifest
    finally:
        layer_file.unlink(missing_ok=True)
        partial.unlink(missing_ok=True)


def _json(data: dict) -> bytes:
    return json.dumps(data, separators=(",", ":"), sort_keys=True).encode()


def _blob_of(data: bytes) -> Blob:
    return Blob(f"sha256:{hashlib.sha256(data).hexdigest()}", len(data))


def _blob_path(blob: Blob) -> str:
    return "blobs/sha256/" + blob.digest.removeprefix("sha256:")


def _plain_owner(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.mode = 0o644
    return info


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes | None) -> None:
    info = tarfile.TarInfo(name)
    if data is None:
        info.type, info.mode = tarfile.DIRTYPE, 0o755
        tar.addfile(info)
    else:
        info.size, info.mode = len(data), 0o644
        tar.addfile(info, io.BytesIO(data))


# --- reading an archive back ------------------------------------------------------------------------


@dataclass(frozen=True)
class Archive:
    """An archive read back with every digest and size checked."""

    name: str
    manifest: dict
    config: dict
    layer_names: list[str]


class InvalidArchive(Exception):
    pass


class _Reading(io.RawIOBase):
    """A read-through file that hashes and counts what passes, so a layer is checked in one stream."""

    def __init__(self, source: BinaryIO):
        self.source, self.sha, self.size = source, hashlib.sha256(), 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[override]
        data = self.source.read(len(buffer))
        buffer[: len(data)] = data
        self.sha.update(data)
        self.size += len(data)
        return len(data)

    def drain(self) -> None:
        while self.read(1 << 20):
            pass

    def blob(self) -> Blob:
        return Blob(f"sha256:{self.sha.hexdigest()}", self.size)


def inspect_archive(path: Path) -> Archive:
    """Read an OCI layout archive and check it: the layout version, one image in the index with its
    name annotations, every blob's digest and size as its descriptor says, the layer's diff_id."""
    with tarfile.open(path) as tar:
        members = {m.name.removeprefix("./"): m for m in tar.getmembers()}

        def read(name: str) -> bytes:
            member = members.get(name)
            if member is None or not member.isfile():
                raise InvalidArchive(f"{path}: {name} is missing")
            extracted = tar.extractfile(member)
            assert extracted is not None
            return extracted.read()

        def blob(descriptor: dict, media_type: str) -> bytes:
            if descriptor.get("mediaType") != media_type:
                raise InvalidArchive(f"{path}: expected {media_type}, found {descriptor.get('mediaType')}")
            data = read(_blob_path(Blob(descriptor["digest"], descriptor["size"])))
            if _blob_of(data) != Blob(descriptor["digest"], descriptor["size"]):
                raise InvalidArchive(f"{path}: blob {descriptor['digest']} does not match its digest or size")
            return data

        if json.loads(read("oci-layout")) != {"imageLayoutVersion": "1.0.0"}:
            raise InvalidArchive(f"{path}: oci-layout is not version 1.0.0")
        index = json.loads(read("index.json"))
        if index.get("mediaType") != INDEX or len(index.get("manifests", [])) != 1:
            raise InvalidArchive(f"{path}: index.json must be an image index with one manifest")
        entry = index["manifests"][0]
        names = entry.get("annotations", {})
        if not names.get(CONTAINERD_NAME) or names.get(REF_NAME) != names.get(CONTAINERD_NAME):
            raise InvalidArchive(f"{path}: the index entry must name the image in {REF_NAME} and {CONTAINERD_NAME}")
        manifest = json.loads(blob(entry, MANIFEST))
        config = json.loads(blob(manifest["config"], CONFIG))
        if len(manifest["layers"]) != len(config["rootfs"]["diff_ids"]):
            raise InvalidArchive(f"{path}: the config's diff_ids do not match the manifest's layers")
        layer_names: list[str] = []
        for descriptor, diff_id in zip(manifest["layers"], config["rootfs"]["diff_ids"]):
            if descriptor.get("mediaType") != LAYER:
                raise InvalidArchive(f"{path}: expected {LAYER}, found {descriptor.get('mediaType')}")
            member = members.get(_blob_path(Blob(descriptor["digest"], descriptor["size"])))
            if member is None:
                raise InvalidArchive(f"{path}: layer {descriptor['digest']} is missing")
            compressed = _Reading(tar.extractfile(member))  # type: ignore[arg-type]
            plain = _Reading(gzip.GzipFile(fileobj=compressed, mode="rb"))  # type: ignore[arg-type]
            with tarfile.open(fileobj=plain, mode="r|") as layer:
                layer_names += [m.name for m in layer]
            plain.drain()
            compressed.drain()
            if compressed.blob() != Blob(descriptor["digest"], descriptor["size"]):
                raise InvalidArchive(f"{path}: layer {descriptor['digest']} does not match its digest or size")
            if plain.blob().digest != diff_id:
                raise InvalidArchive(f"{path}: layer {descriptor['digest']} does not match its diff_id")
    return Archive(names[CONTAINERD_NAME], manifest, config, layer_names)
