"""Fuzzing the loader: whatever the input, mims answers with located problems, never a traceback."""

from __future__ import annotations

import copy
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mims.blueprint import load_blueprint
from mims.charts.render import Renderer
from mims.errors import InvalidInput
from tests.conftest import EXAMPLES

BASE = yaml.safe_load(next(p for p in EXAMPLES if p.name == "small-city.yaml").read_text())
RENDERER = Renderer()
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**12), 10**12),
    st.floats(allow_nan=True),
    st.text(max_size=30),
    st.sampled_from(["orion-ld", "scorpio", "standard", "sim", "", "0"]),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=4)),
    max_leaves=10,
)


def paths_of(node, prefix=()):
    yield prefix
    if isinstance(node, dict):
        for key, value in node.items():
            yield from paths_of(value, prefix + (key,))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from paths_of(value, prefix + (index,))


ALL_PATHS = list(paths_of(BASE))[1:]


def mutate(data, path, action, value):
    data = copy.deepcopy(data)
    parent = data
    for part in path[:-1]:
        parent = parent[part]
    last = path[-1]
    if action == "delete" and isinstance(parent, dict):
        del parent[last]
    elif action == "rename" and isinstance(parent, dict):
        parent[str(last) + "x"] = parent.pop(last)
    elif action == "add" and isinstance(parent, dict):
        parent[f"extra_{value!r}"[:20]] = value
    else:
        parent[last] = value
    return data


def check(path: Path) -> None:
    try:
        RENDERER.render(load_blueprint(path))
    except InvalidInput as exc:
        assert exc.problems and all(p.file for p in exc.problems)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    mutations=st.lists(
        st.tuples(st.sampled_from(ALL_PATHS), st.sampled_from(["set", "delete", "rename", "add"]), values),
        min_size=1,
        max_size=3,
    )
)
def test_mutated_examples_fail_cleanly(tmp_path_factory, mutations):
    data = BASE
    for path, action, value in mutations:
        try:
            data = mutate(data, path, action, value)
        except (KeyError, IndexError, TypeError):
            continue
    folder = tmp_path_factory.mktemp("fuzz")
    target = folder / "blueprint.yaml"
    target.write_text(yaml.safe_dump(data, allow_unicode=True))
    check(target)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.one_of(st.text(max_size=300), st.binary(max_size=300).map(lambda b: b.decode("latin-1"))))
def test_arbitrary_text_fails_cleanly(tmp_path_factory, text):
    target = tmp_path_factory.mktemp("fuzz") / "blueprint.yaml"
    target.write_bytes(text.encode("utf-8", errors="replace"))
    check(target)
