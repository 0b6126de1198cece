"""The recipe step `download` (fast, no root, no network: the registry is a stand-in serving bytes)."""

from __future__ import annotations

import hashlib
import io
import tarfile
import urllib.request
import zipfile
from pathlib import Path

import pytest

from tests.images.build import Chroot
from tests.images.recipe import DownloadStep
from tests.images.rootfs import BuildError

URL = "https://repo.example/dist/tool-1.0.zip"


def _zip() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr(zipfile.ZipInfo("tool-1.0/"), b"")
        script = zipfile.ZipInfo("tool-1.0/bin/tool.sh")
        script.external_attr = 0o100755 << 16
        z.writestr(script, b"#!/bin/sh\n")
        z.writestr(zipfile.ZipInfo("tool-1.0/conf/tool.conf"), b"key=value\n")
    return out.getvalue()


def _tar() -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        for name, data, mode in (
            ("tool-1.0/bin/tool.sh", b"#!/bin/sh\n", 0o755),
            ("tool-1.0/conf/tool.conf", b"key=value\n", 0o644),
        ):
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), mode
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def _serve(monkeypatch, data: bytes) -> list[str]:
    fetched: list[str] = []

    def urlopen(url, timeout):
        fetched.append(url)
        return io.BytesIO(data)

    monkeypatch.setattr(urllib.request, "urlopen", urlopen)
    return fetched


def _step(data: bytes, unpack: bool, digest: str | None = None) -> DownloadStep:
    digest = digest or "sha256:" + hashlib.sha256(data).hexdigest()
    return DownloadStep.model_validate(
        {"download": {"url": URL, "digest": digest, "path": "/opt/tool", "unpack": unpack}}
    )


@pytest.mark.parametrize("archive", [_zip, _tar])
def test_an_archive_is_unpacked_with_its_modes_and_its_top_folder_dropped(tmp_path: Path, monkeypatch, archive):
    data = archive()
    fetched = _serve(monkeypatch, data)
    (tmp_path / "root").mkdir()
    Chroot(tmp_path / "root", "test", tmp_path / "downloads").step(_step(data, unpack=True))
    tool = tmp_path / "root/opt/tool"
    assert (tool / "conf/tool.conf").read_text() == "key=value\n"
    assert (tool / "bin/tool.sh").stat().st_mode & 0o777 == 0o755
    assert fetched == [URL]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["downloads", "root"], "the scratch folder is left behind"


def test_a_download_is_fetched_once_and_kept_by_its_digest(tmp_path: Path, monkeypatch):
    data = b"a jar\n"
    fetched = _serve(monkeypatch, data)
    for root in ("one", "two"):
        (tmp_path / root).mkdir()
        Chroot(tmp_path / root, root, tmp_path / "downloads").step(_step(data, unpack=False))
        assert (tmp_path / root / "opt/tool").read_bytes() == data
    assert fetched == [URL]


def test_a_download_whose_digest_differs_is_refused_and_not_kept(tmp_path: Path, monkeypatch):
    _serve(monkeypatch, b"something else\n")
    (tmp_path / "root").mkdir()
    with pytest.raises(BuildError, match=r"has sha1 [0-9a-f]{40}, the recipe's digest is 0{40}"):
        Chroot(tmp_path / "root", "test", tmp_path / "downloads").step(
            _step(b"", unpack=False, digest="sha1:" + "0" * 40)
        )
    assert not (tmp_path / "root/opt/tool").exists()
    assert list((tmp_path / "downloads").iterdir()) == []
