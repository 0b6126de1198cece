"""Integrators' patches on rendered objects (JSON merge patch, RFC 7386)."""

from __future__ import annotations

import copy
from collections.abc import Set as AbstractSet
from typing import Any

from mims.blueprint.loader import LoadedBlueprint
from mims.errors import InvalidInput


def merge_patch(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def apply_overrides(loaded: LoadedBlueprint, objects: list[dict], *, skip: AbstractSet[int] = frozenset()) -> set[int]:
    """Patch objects in place and return the indices of the overrides that found their object.

    Rendering happens in two passes (components, then the foundation sized from them), so an
    override that matches nothing is reported by `unmatched_overrides`, after both passes."""
    problems = []
    matched = set()
    for index, override in enumerate(loaded.blueprint.overrides):
        if index in skip:
            continue
        target = override.target
        hits = [
            i
            for i, obj in enumerate(objects)
            if obj.get("kind") == target.kind
            and obj["metadata"].get("name") == target.name
            and (target.namespace is None or obj["metadata"].get("namespace") == target.namespace)
        ]
        where = ("overrides", index, "target")
        if not hits:
            continue
        matched.add(index)
        if len(hits) > 1:
            spaces = ", ".join(sorted(objects[i]["metadata"].get("namespace", "") for i in hits))
            problems.append(
                loaded.source.problem(
                    where, f"{target.kind} `{target.name}` exists in several namespaces ({spaces}); add `namespace`"
                )
            )
            continue
        patched = merge_patch(objects[hits[0]], override.patch)
        for key in ("apiVersion", "kind"):
            if patched.get(key) != objects[hits[0]].get(key):
                problems.append(
                    loaded.source.problem(("overrides", index, "patch", key), f"a patch may not change `{key}`")
                )
        if patched["metadata"].get("name") != target.name:
            problems.append(
                loaded.source.problem(("overrides", index, "patch", "metadata"), "a patch may not rename the object")
            )
        objects[hits[0]] = patched
    if problems:
        raise InvalidInput(problems)
    return matched


def unmatched_overrides(loaded: LoadedBlueprint, matched: set[int]) -> None:
    problems = []
    for index, override in enumerate(loaded.blueprint.overrides):
        if index in matched:
            continue
        target = override.target
        problems.append(
            loaded.source.problem(
                ("overrides", index, "target"),
                f"no rendered {target.kind} named `{target.name}`"
                + (f" in namespace `{target.namespace}`" if target.namespace else "")
                + "; run `mims render` to list object names",
            )
        )
    if problems:
        raise InvalidInput(problems)
