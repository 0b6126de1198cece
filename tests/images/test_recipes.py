"""Recipes (fast, no root): each loads, ships its files, says what it stands for, and agrees with
what charts/image-facts.yaml records about the upstream image."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from mims import paths
from mims.errors import InvalidInput
from tests.images.recipe import Recipe, load_recipe, recipe_names

FACTS = yaml.safe_load((paths.charts_dir() / "image-facts.yaml").read_text())["images"]
DOCS = Path(__file__).resolve().parents[2] / "docs" / "cluster.md"
# Images no chart pins: the node's sandbox image and DNS (cli/mims/cluster/node.py), a shell for tests.
NOT_IN_CHARTS = {"pause", "coredns", "busybox"}


@pytest.mark.parametrize("name", recipe_names())
def test_recipe_loads_and_cites_its_sources(name: str):
    recipe = load_recipe(name)
    assert recipe.sources and recipe.summary


@pytest.mark.parametrize("name", sorted(set(recipe_names()) - NOT_IN_CHARTS))
def test_recipe_keeps_the_upstream_images_contract(name: str):
    """User, entrypoint, command and working directory as the image facts record them; only ports
    the image serves are exposed."""
    recipe: Recipe = load_recipe(name)
    facts = FACTS[recipe.image]
    config = recipe.config
    uid = facts["user"]["uid"]
    # No USER upstream (root) is none here; a USER by name (uid not stated in the source) stays a name.
    assert config.user == (None if uid == 0 else facts["user"]["name"] if uid is None else str(uid))
    assert config.entrypoint == facts["entrypoint"]["value"]
    assert config.cmd == facts["command"]["value"]
    assert config.workdir == facts["workdir"]["value"]
    assert set(config.ports) <= {p["port"] for p in facts["ports"]}


def test_every_image_a_test_image_stands_for_is_in_the_docs_table():
    section = DOCS.read_text().split("## Test images", 1)[1].split("\n## ", 1)[0]
    missing = [load_recipe(n).image for n in recipe_names() if f"`{load_recipe(n).image}`" not in section]
    assert not missing, f"docs/cluster.md, section Test images, does not list {missing}"


def test_a_wrong_key_is_reported_with_file_line_and_column(tmp_path: Path):
    (tmp_path / "bad.yaml").write_text(
        "image: docker.io/library/x:1\nsummary: s\nsources: [s]\nbase: debian\nsteps:\n  - apt: [x]\n    extra: 1\nconfig: {}\n"
    )
    with pytest.raises(InvalidInput) as raised:
        load_recipe("bad", tmp_path)
    assert f"{tmp_path / 'bad.yaml'}:6:" in str(raised.value)
