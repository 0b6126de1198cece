"""Fixtures of the toolchain tests: a private Go module proxy (file://) and module cache, and a tools.yaml
of tiny tools (modules.py) in a temporary directory."""

from __future__ import annotations

import os
import subprocess

import pytest
import yaml

from tests.toolchain.fakes import isolate_sources
from tests.toolchain.modules import GO, TOOLS, publish_all


@pytest.fixture(scope="module")
def goenv(tmp_path_factory):
    """A private module proxy and module cache; the user's build cache is reused (it is keyed by
    content, so nothing of theirs changes) to keep the tests fast."""
    if GO is None:
        pytest.skip("go is not on PATH (the toolchain is built with it)")
    root = tmp_path_factory.mktemp("goproxy")
    proxy = root / "proxy"
    publish_all(proxy)
    gocache = subprocess.run([GO, "env", "GOCACHE"], capture_output=True, text=True, check=True).stdout.strip()
    env = {
        "GOPROXY": proxy.as_uri(),
        "GOSUMDB": "off",
        "GOMODCACHE": str(root / "modcache"),
        "GONOSUMDB": "example.test",
        "GOCACHE": gocache,  # HOME changes below; the build cache stays
    }
    yield env
    subprocess.run([GO, "clean", "-modcache"], env={**os.environ, **env}, check=False, capture_output=True)


@pytest.fixture
def env(goenv, monkeypatch, tmp_path):
    for key, value in goenv.items():
        monkeypatch.setenv(key, value)
    isolate_sources(monkeypatch, tmp_path / "user")
    tools_file = tmp_path / "tools.yaml"
    tools_file.write_text(yaml.safe_dump({"go": "1.22", "tools": TOOLS}))
    return {"tools_file": tools_file, "cache": tmp_path / "toolchain", "proxy": goenv["GOPROXY"]}
