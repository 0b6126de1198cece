"""The generated-secret vocabulary."""

from __future__ import annotations

import base64
import json

import pytest

from mims.secrets import SecretValues, generators, mosquitto_passwd_line, parse_spec


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


# -- SecretValues.fill -------------------------------------------------------------------------------

# `mosquitto_passwd -b` output for user agent, password s3cret.
MOSQUITTO_VECTOR = (
    "agent:$7$101$kgzojXMtLlPL+ysQ$5J90fYbOJ/i55Tpx8/Ygc8rwF8UA4v8/+GLFupf19RGxxheZqDlgFoeWvwmYc5y"
    "lvgjpD0MwE2ntwxA030CW+w=="
)


def named(name: str, fields: dict, namespace: str = "ns") -> dict:
    obj = secret(fields)
    obj["metadata"].update(name=name, namespace=namespace)
    return obj


def _verifies(line: str, user: str, password: str) -> bool:
    """A Mosquitto `$7$` line checks `password`: re-derived with its own salt, it is the same line."""
    name, _, iterations, salt, _ = line.split("$")
    assert name == f"{user}:" and iterations == "101"
    return mosquitto_passwd_line(user, password, base64.b64decode(salt)).rstrip("\n") == line


def test_mosquitto_line_matches_mosquitto_passwd():
    salt = base64.b64decode(MOSQUITTO_VECTOR.split("$")[3])
    assert mosquitto_passwd_line("agent", "s3cret", salt) == MOSQUITTO_VECTOR + "\n"
    assert _verifies(MOSQUITTO_VECTOR, "agent", "s3cret") and not _verifies(MOSQUITTO_VECTOR, "agent", "s3cre7")


def test_fill_generates_every_key_once_and_reuses_it():
    values = SecretValues.from_dict(None)
    obj = named("db", {"password": "random:24", "cookie": "cookie:32"})
    first, fresh = values.fill(obj)
    assert fresh and len(first["password"]) == 24 and len(base64.urlsafe_b64decode(first["cookie"])) == 32
    again, fresh = values.fill(obj)
    assert again == first and not fresh
    # and through the stored form, as the next run reads it back from the secrets stack
    stored = SecretValues.from_dict(json.loads(json.dumps(values.as_dict())))
    assert stored.fill(obj) == (first, False)


def test_fill_adds_a_new_key_without_touching_the_others():
    values = SecretValues.from_dict(None)
    first, _ = values.fill(named("db", {"password": "random:24"}))
    both, fresh = values.fill(named("db", {"password": "random:24", "admin": "random:16"}))
    assert fresh and both["password"] == first["password"] and len(both["admin"]) == 16


def test_shared_values_are_equal_across_secrets():
    values = SecretValues.from_dict(None)
    keycloak, _ = values.fill(named("clients", {"gateway": "shared:oidc-client-gateway", "admin": "random:16"}, "iam"))
    gateway, _ = values.fill(named("oauth2", {"client-secret": "shared:oidc-client-gateway"}, "gateway"))
    other, _ = values.fill(named("grafana", {"client-secret": "shared:oidc-client-grafana"}, "monitoring"))
    assert keycloak["gateway"] == gateway["client-secret"] != other["client-secret"]
    assert values.fill(named("oauth2", {"client-secret": "shared:oidc-client-gateway"}, "gateway")) == (gateway, False)


def test_secrets_are_told_apart_by_namespace():
    values = SecretValues.from_dict(None)
    one, _ = values.fill(named("db", {"password": "random:32"}, "a"))
    two, _ = values.fill(named("db", {"password": "random:32"}, "b"))
    assert one != two


def test_mosquitto_password_file_verifies_every_user():
    values = SecretValues.from_dict(None)
    fields = {"agent": "random:32", "sensors": "random:32", "passwd": "mosquitto-passwd:agent,sensors"}
    filled, _ = values.fill(named("mqtt", fields))
    lines = filled["passwd"].splitlines()
    assert [line.split(":")[0] for line in lines] == ["agent", "sensors"]
    assert _verifies(lines[0], "agent", filled["agent"]) and _verifies(lines[1], "sensors", filled["sensors"])
    assert values.fill(named("mqtt", fields)) == (filled, False)  # not re-salted on every run


def test_mosquitto_password_file_follows_its_users():
    values = SecretValues.from_dict(None)
    two = {"agent": "random:32", "old": "random:32", "passwd": "mosquitto-passwd:agent,old"}
    before, _ = values.fill(named("mqtt", two))
    three = {"agent": "random:32", "old": "random:32", "new": "random:32", "passwd": "mosquitto-passwd:agent,old,new"}
    added, fresh = values.fill(named("mqtt", three))
    assert fresh and [line.split(":")[0] for line in added["passwd"].splitlines()] == ["agent", "old", "new"]
    assert _verifies(added["passwd"].splitlines()[2], "new", added["new"])
    one = {"agent": "random:32", "passwd": "mosquitto-passwd:agent"}
    removed, fresh = values.fill(named("mqtt", one))
    assert fresh and removed["agent"] == before["agent"]
    assert [line.split(":")[0] for line in removed["passwd"].splitlines()] == ["agent"]  # `old` may not log in
