"""Generated secrets: the `mims.io/generate` annotation vocabulary (docs/secrets.md).

The renderer only declares what to generate; values exist only at deploy time, inside the engine.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

ANNOTATION = "mims.io/generate"
_RANDOM = re.compile(r"^random:(\d+)$")
_SHARED = re.compile(r"^shared:([a-z0-9][-a-z0-9]{0,62})$")
_COOKIE = re.compile(r"^cookie:(16|24|32)$")
_MOSQUITTO = re.compile(r"^mosquitto-passwd:([-a-z0-9]+(?:,[-a-z0-9]+)*)$")


@dataclass(frozen=True)
class Generator:
    kind: str              # random | shared | cookie | mosquitto-passwd
    length: int = 32       # characters (random, shared) or bytes (cookie)
    shared_id: str = ""
    users: tuple[str, ...] = ()


def parse_spec(spec: str) -> Generator:
    if m := _RANDOM.match(spec):
        length = int(m.group(1))
        if not 8 <= length <= 128:
            raise ValueError(f"{spec!r}: length must be 8 to 128")
        return Generator("random", length)
    if m := _SHARED.match(spec):
        return Generator("shared", 32, shared_id=m.group(1))
    if m := _COOKIE.match(spec):
        return Generator("cookie", int(m.group(1)))
    if m := _MOSQUITTO.match(spec):
        return Generator("mosquitto-passwd", users=tuple(m.group(1).split(",")))
    raise ValueError(f"unknown secret generator {spec!r}; see docs/secrets.md")


def generators(secret: dict) -> dict[str, Generator]:
    """Key -> generator of a rendered Secret; checks references inside the Secret."""
    raw = (secret["metadata"].get("annotations") or {}).get(ANNOTATION)
    if raw is None:
        return {}
    fields = json.loads(raw)
    parsed = {key: parse_spec(spec) for key, spec in fields.items()}
    for key, gen in parsed.items():
        missing = [u for u in gen.users if u not in parsed or parsed[u].kind == "mosquitto-passwd"]
        if missing:
            raise ValueError(f"key {key!r} hashes unknown key(s) {', '.join(missing)}")
    return parsed
