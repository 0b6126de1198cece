"""Generated secrets: the `mims.io/generate` annotation vocabulary (docs/secrets.md).

The renderer only declares what to generate; values exist only at deploy time, inside the engine,
which generates them here once and keeps them as encrypted Pulumi secrets.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import string
from dataclasses import dataclass

ANNOTATION = "mims.io/generate"
_RANDOM = re.compile(r"^random:(\d+)$")
_SHARED = re.compile(r"^shared:([a-z0-9][-a-z0-9]{0,62})$")
_COOKIE = re.compile(r"^cookie:(16|24|32)$")
_MOSQUITTO = re.compile(r"^mosquitto-passwd:([-a-z0-9]+(?:,[-a-z0-9]+)*)$")


@dataclass(frozen=True)
class Generator:
    kind: str  # random | shared | cookie | mosquitto-passwd
    length: int = 32  # characters (random, shared) or bytes (cookie)
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


def is_generated(obj: dict) -> bool:
    """A Secret whose values the engine generates and fills (rendered without data)."""
    return obj["kind"] == "Secret" and ANNOTATION in (obj["metadata"].get("annotations") or {})


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


_ALPHABET = string.ascii_letters + string.digits
# mosquitto_passwd's own defaults for `$7$` (PBKDF2-SHA512) entries: 12-byte salt, 101 iterations.
_MOSQUITTO_SALT_BYTES = 12
_MOSQUITTO_ITERATIONS = 101


@dataclass
class SecretValues:
    """Every value mims has generated for one deployment: per Secret (`namespace/name` -> key -> value)
    and per `shared:<id>`. Kept only as an encrypted Pulumi secret; reused on every run."""

    secrets: dict[str, dict[str, str]]
    shared: dict[str, str]

    @classmethod
    def from_dict(cls, data: dict | None) -> SecretValues:
        data = data or {}
        return cls(
            secrets={k: dict(v) for k, v in (data.get("secrets") or {}).items()}, shared=dict(data.get("shared") or {})
        )

    def as_dict(self) -> dict:
        return {"secrets": self.secrets, "shared": self.shared}

    def fill(self, secret: dict) -> tuple[dict[str, str], bool]:
        """The values of a rendered Secret, generating (and remembering) the missing ones; the flag
        says whether anything new was generated."""
        gens = generators(secret)
        ref = f"{secret['metadata'].get('namespace', '')}/{secret['metadata']['name']}"
        known = self.secrets.setdefault(ref, {})
        before = dict(known)
        fresh: set[str] = set()
        for key, gen in gens.items():
            if gen.kind == "shared":
                if gen.shared_id not in self.shared:
                    self.shared[gen.shared_id] = _random_text(gen.length)
                if known.get(key) != self.shared[gen.shared_id]:
                    known[key] = self.shared[gen.shared_id]
                    fresh.add(key)
            elif gen.kind != "mosquitto-passwd" and key not in known:
                known[key] = _random_text(gen.length) if gen.kind == "random" else _cookie(gen.length)
                fresh.add(key)
        for key, gen in gens.items():
            if gen.kind == "mosquitto-passwd" and (
                key not in known or fresh & set(gen.users) or _passwd_users(known[key]) != gen.users
            ):
                known[key] = "".join(mosquitto_passwd_line(user, known[user]) for user in gen.users)
        values = {key: known[key] for key in gens}
        return values, known != before


def _passwd_users(passwd: str) -> tuple[str, ...]:
    """The users of a password file, in order: a user taken off the list must lose its line."""
    return tuple(line.split(":", 1)[0] for line in passwd.splitlines() if line)


def _random_text(length: int) -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))


def _cookie(size: int) -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(size)).decode()


def mosquitto_passwd_line(user: str, password: str, salt: bytes | None = None) -> str:
    """One line of a Mosquitto 2 password file, as `mosquitto_passwd` writes it."""
    salt = salt or secrets.token_bytes(_MOSQUITTO_SALT_BYTES)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, _MOSQUITTO_ITERATIONS)
    return f"{user}:$7${_MOSQUITTO_ITERATIONS}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}\n"
