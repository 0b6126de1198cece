"""Fixtures for the image tests that build and run (marked `images`): one throwaway containerd for the
session, and each image built (or taken from the cache) and imported into it once."""

from __future__ import annotations

import os

import pytest

from tests.conftest import require_tool
from tests.images.build import build
from tests.images.containerd import Containerd
from tests.images.recipe import load_recipe


@pytest.fixture(scope="session")
def containerd(tmp_path_factory) -> Containerd:
    if os.geteuid() != 0:
        pytest.skip("building and running images needs root (debootstrap, chroot, containerd)")
    for tool in ("debootstrap", "containerd", "ctr", "runc"):
        require_tool(tool)
    with Containerd(tmp_path_factory.mktemp("containerd")) as daemon:
        yield daemon


@pytest.fixture(scope="session")
def image(containerd: Containerd):
    """image(NAME): recipe NAME built and imported; returns the upstream name it is tagged with."""
    imported: dict[str, str] = {}

    def get(name: str) -> str:
        if name not in imported:
            containerd.import_image(build(name))
            imported[name] = load_recipe(name).image
        return imported[name]

    return get
