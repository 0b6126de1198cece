"""The generated-secret vocabulary."""

from __future__ import annotations

import json

import pytest

from mims.secrets import generators, parse_spec


def secret(fields: dict) -> dict:
    return {"kind": "Secret", "metadata": {"name": "s", "annotations": {"mims.io/generate": json.dumps(fields)}}}


def test_specs_parse():
    assert parse_spec("random:32").length == 32
    assert parse_spec("shared:oidc-client-gateway").shared_id == "oidc-client-gateway"
    assert parse_spec("cookie:32").kind == "cookie"
    assert parse_spec("mosquitto-passwd:a,b").users == ("a", "b")


@pytest.mark.parametrize("spec", ["random:4", "random:x", "cookie:20", "shared:UPPER", "plain", "random:129"])
def test_bad_specs_are_refused(spec):
    with pytest.raises(ValueError):
        parse_spec(spec)


def test_password_file_must_hash_keys_of_the_same_secret():
    assert set(generators(secret({"agent": "random:32", "passwd": "mosquitto-passwd:agent"}))) == {"agent", "passwd"}
    with pytest.raises(ValueError, match="unknown key"):
        generators(secret({"passwd": "mosquitto-passwd:agent"}))
