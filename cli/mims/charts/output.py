"""Rendered objects to files (one folder per layer, one file per object) and to a summary."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections import Counter
from pathlib import Path

import yaml

try:  # libyaml's dumper when PyYAML was built with it: several times faster
    from yaml import CSafeDumper as _BaseDumper
except ImportError:
    from yaml import SafeDumper as _BaseDumper

from mims.charts.footprint import Footprint
from mims.charts.render import Rendering
from mims.errors import UsageError

MARKER = ".mims-render"


def object_filename(index: int, obj: dict) -> str:
    meta = obj["metadata"]
    parts = [obj["kind"].lower(), meta.get("namespace", ""), meta["name"]]
    slug = "-".join(p for p in parts if p)
    return f"{index:03d}-{re.sub(r'[^a-z0-9.-]+', '-', slug.lower())}.yaml"


def write_rendering(rendering: Rendering, target: Path) -> int:
    """Replace `target` with the rendering; refuse to touch a folder mims did not write."""
    if target.exists():
        if not target.is_dir():
            raise UsageError(f"{target} exists and is not a folder")
        if any(target.iterdir()) and not (target / MARKER).exists():
            raise UsageError(
                f"{target} is not empty and was not written by `mims render`; choose an empty or new folder"
            )
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".mims-render-", dir=target.parent))
    count = 0
    try:
        (staging / MARKER).write_text("written by mims render; the whole folder is replaced on each render\n")
        for layer in rendering.layers:
            folder = staging / layer.layer.name
            folder.mkdir()
            for index, obj in enumerate(layer.objects, start=1):
                text = yaml.dump(obj, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=120)
                (folder / object_filename(index, obj)).write_text(text)
                count += 1
        if target.exists():
            old = target.with_name(f".{target.name}.old-{os.getpid()}")
            target.rename(old)
            staging.rename(target)
            shutil.rmtree(old)
        else:
            staging.rename(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return count


class _Dumper(_BaseDumper):
    pass


def _str_representer(dumper: yaml.SafeDumper, value: str):
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str_representer)


def summary(rendering: Rendering) -> dict:
    bp = rendering.loaded.blueprint
    counts = Counter(o["metadata"]["labels"]["mims.io/component"] for o in rendering.objects())
    return {
        "blueprint": str(rendering.loaded.path),
        "city": bp.city.name,
        "profile": bp.budget.profile,
        "layers": [
            {"name": s.layer.name, "depends_on": s.layer.depends_on, "objects": len(s.objects)}
            for s in rendering.layers
        ],
        "objects": sum(len(s.objects) for s in rendering.layers),
        "components": {
            c: {"objects": counts.get(c, 0), **fp.as_dict()} for c, fp in sorted(rendering.footprints.items())
        },
        "total": rendering.total().as_dict(),
    }


def footprint_rows(rendering: Rendering) -> list[tuple[str, Footprint]]:
    return sorted(rendering.footprints.items()) + [("total", rendering.total())]
