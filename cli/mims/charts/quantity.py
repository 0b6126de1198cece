"""Kubernetes resource quantities as numbers: CPU in millicores, memory and storage in bytes."""

from __future__ import annotations

import re

_SUFFIX = {"": 1, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}
_PATTERN = re.compile(r"^([0-9]+(?:\.[0-9]+)?)(m|k|M|G|T|Ki|Mi|Gi|Ti)?$")


def cpu_millicores(value: str | int | float) -> int:
    text = str(value)
    match = _PATTERN.match(text)
    if not match:
        raise ValueError(f"not a CPU quantity: {text!r}")
    number, suffix = float(match.group(1)), match.group(2) or ""
    if suffix == "m":
        return round(number)
    return round(number * _SUFFIX[suffix] * 1000)


def bytes_of(value: str | int | float) -> int:
    text = str(value)
    match = _PATTERN.match(text)
    if not match or match.group(2) == "m":
        raise ValueError(f"not a memory quantity: {text!r}")
    return round(float(match.group(1)) * _SUFFIX[match.group(2) or ""])


def gib(value_bytes: int) -> float:
    return value_bytes / 2**30
