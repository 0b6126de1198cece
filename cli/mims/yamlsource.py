"""Load a user's YAML file keeping where every key and value stood, so errors can name file:line:column."""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from mims.errors import InvalidInput, Problem

MAX_BYTES = 1024 * 1024
MAX_NODES = 200_000  # guards against alias bombs when expanding to plain data

Path_ = tuple[str | int, ...]


@dataclass
class SourceDoc:
    """Plain data of one YAML document plus 1-based positions of keys and values by path."""

    file: str
    data: Any
    key_positions: dict[Path_, tuple[int, int]] = field(default_factory=dict)
    value_positions: dict[Path_, tuple[int, int]] = field(default_factory=dict)

    def position(self, path: Path_, *, key: bool = False) -> tuple[int | None, int | None]:
        """Position of `path`, or of its nearest ancestor present in the file."""
        path = tuple(path)
        table = self.key_positions if key else self.value_positions
        while True:
            if path in table:
                return table[path]
            if path in self.value_positions:
                return self.value_positions[path]
            if not path:
                return (1, 1)
            path = path[:-1]

    def problem(self, path: Path_, message: str, *, key: bool = False) -> Problem:
        line, column = self.position(path, key=key)
        return Problem(self.file, line, column, dotted(path), message)


def dotted(path: Path_) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def load_trusted_yaml(path: Path) -> Any:
    """Fast load of a file mims ships (chart.yaml, stacks): no positions, parsed by libyaml.

    Callers that find the data invalid load it again with `load_yaml` to report positions."""
    try:
        return yaml.load(path.read_text(encoding="utf-8"), Loader=_FAST_LOADER)
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return load_yaml(path).data  # raises the located problem


_FAST_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_yaml(path: Path, display: str | None = None) -> SourceDoc:
    """Read one YAML mapping document; every failure becomes an InvalidInput with a position."""
    name = display or str(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise InvalidInput([Problem(name, None, None, "", "file not found; check the path")]) from None
    except IsADirectoryError:
        raise InvalidInput([Problem(name, None, None, "", "is a directory, expected a YAML file")]) from None
    except OSError as exc:
        raise InvalidInput([Problem(name, None, None, "", f"cannot read file: {exc.strerror}")]) from None
    if len(raw) > MAX_BYTES:
        raise InvalidInput([Problem(name, None, None, "", f"file is larger than {MAX_BYTES} bytes")])
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInput([Problem(name, None, None, "", f"not UTF-8 text (byte {exc.start})")]) from None
    return parse_yaml(text, name)


def parse_yaml(text: str, name: str) -> SourceDoc:
    yaml = YAML(typ="rt")
    yaml.allow_duplicate_keys = False
    try:
        docs = list(yaml.load_all(text))
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (None, None)
        what = " ".join(str(x) for x in (exc.problem, exc.context) if x) or "invalid YAML"
        if "duplicate key" in what:
            what = f"{what.strip()}; each key may appear once in a mapping"
        return _raise(Problem(name, line, col, "", f"invalid YAML: {_one_line(what)}"))
    except (YAMLError, ValueError, TypeError, RecursionError) as exc:
        return _raise(Problem(name, None, None, "", f"invalid YAML: {_one_line(str(exc))}"))
    docs = [d for d in docs if d is not None]
    if not docs:
        return _raise(Problem(name, None, None, "", "file is empty; expected a YAML mapping"))
    if len(docs) > 1:
        return _raise(Problem(name, None, None, "", "file holds several YAML documents; expected one"))
    doc = SourceDoc(file=name, data=None)
    budget = [MAX_NODES]
    try:
        doc.data = _plain(docs[0], (), doc, budget)
    except RecursionError:
        return _raise(Problem(name, None, None, "", "YAML nests too deeply"))
    if not isinstance(doc.data, dict):
        return _raise(Problem(name, 1, 1, "", f"expected a mapping at the top level, got {type_name(doc.data)}"))
    return doc


def _raise(problem: Problem):
    raise InvalidInput([problem])


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _plain(node: Any, path: Path_, doc: SourceDoc, budget: list[int]) -> Any:
    budget[0] -= 1
    if budget[0] < 0:
        raise InvalidInput([Problem(doc.file, None, None, "", "document expands to too many nodes (aliases?)")])
    if isinstance(node, CommentedMap):
        out: dict[str, Any] = {}
        for key, value in node.items():
            skey = str(key) if not isinstance(key, str) else key
            child = path + (skey,)
            try:
                kl, kc, vl, vc = node.lc.key(key) + node.lc.value(key)
                doc.key_positions[child] = (kl + 1, kc + 1)
                doc.value_positions[child] = (vl + 1, vc + 1)
            except (KeyError, TypeError, AttributeError):
                pass
            out[skey] = _plain(value, child, doc, budget)
        return out
    if isinstance(node, CommentedSeq):
        items = []
        for index, value in enumerate(node):
            child = path + (index,)
            try:
                line, col = node.lc.item(index)
                doc.value_positions[child] = (line + 1, col + 1)
            except (KeyError, TypeError, AttributeError):
                pass
            items.append(_plain(value, child, doc, budget))
        return items
    if isinstance(node, bool) or node is None:
        return node
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        return float(node)
    if isinstance(node, (_dt.date, _dt.datetime)):
        return node.isoformat()
    if isinstance(node, str):
        return str(node)
    return str(getattr(node, "value", node))


def type_name(value: Any) -> str:
    return {
        dict: "a mapping",
        list: "a list",
        str: "a string",
        int: "an integer",
        float: "a number",
        bool: "a boolean",
        type(None): "nothing (null)",
    }.get(type(value), type(value).__name__)
