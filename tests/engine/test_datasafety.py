"""`mims up` refuses what would lose data (a database moved to a new major version over its old data, a
stateful workload given new volume claims) unless `--allow-data-change`, before deploying anything; the
simulated small city stands in for the cluster (its StatefulSets are what is compared)."""

from __future__ import annotations

import json

import pytest
from tests.engine.conftest import Deployed, blueprint_copy, live_image, statefulset_patch, with_image

from mims.engine.datasafety import major_version

IAM = "alderbrook-iam"


@pytest.mark.parametrize(
    "image, major",
    [
        ("docker.io/library/postgres:18.1-alpine", "18"),
        ("docker.io/postgis/postgis:18-3.6", "18"),
        ("registry.example:5000/library/postgres:19beta1@sha256:abc", "19"),
        ("postgres:latest", "latest"),
    ],
)
def test_the_major_version_is_the_tags_leading_number(image, major):
    assert major_version(image) == major


def renamed_claims(spec: dict) -> None:
    spec["volumeClaimTemplates"][0]["metadata"]["name"] = "pgdata"


@pytest.mark.integration
def test_a_new_major_version_of_a_database_is_refused_with_the_steps(small_city: Deployed, tmp_path):
    before = live_image(small_city, "keycloak-db", IAM)
    patch = statefulset_patch(small_city, "keycloak-db", IAM, with_image("docker.io/library/postgres:19.0-alpine"))
    run = small_city.mims.run("up", blueprint_copy(tmp_path, patch=patch), "--yes")
    assert run.code == 12, run.describe()
    assert f"iam/keycloak-db: its database moves to another major version: {before} -> " in run.err
    assert "mims backup now" in run.err and "mims restore" in run.err and "--allow-data-change" in run.err
    assert live_image(small_city, "keycloak-db", IAM) == before  # nothing deployed


@pytest.mark.integration
def test_new_volume_claims_for_a_stateful_workload_are_refused(small_city: Deployed, tmp_path):
    patch = statefulset_patch(small_city, "catalogue-db", "alderbrook-catalogue", renamed_claims)
    run = small_city.mims.run("up", blueprint_copy(tmp_path, patch=patch), "--yes")
    assert run.code == 12, run.describe()
    assert "catalogue/catalogue-db: its volume claims change (new, empty volumes): data -> pgdata" in run.err


@pytest.mark.integration
def test_plan_shows_what_up_would_refuse_and_what_it_backs_up_first(small_city: Deployed, tmp_path):
    """A pull request's plan tells the reviewers before the merge that `up` would refuse it."""
    before = live_image(small_city, "keycloak-db", IAM)
    major = statefulset_patch(small_city, "keycloak-db", IAM, with_image("docker.io/library/postgres:19.0-alpine"))
    run = small_city.mims.run("plan", blueprint_copy(tmp_path, patch=major), "--json")
    assert run.code == 0, run.describe()
    [change] = json.loads(run.out)["data_changes"]
    assert change | {"before": before} == {
        "kind": "major",
        "component": "iam",
        "namespace": IAM,
        "workload": "keycloak-db",
        "before": before,
        "after": "docker.io/library/postgres:19.0-alpine",
        "refused": True,
    }
    minor = statefulset_patch(small_city, "keycloak-db", IAM, with_image("docker.io/library/postgres:18.2-alpine"))
    run = small_city.mims.run("plan", blueprint_copy(tmp_path, patch=minor), "--markdown")
    assert run.code == 0, run.describe()
    assert "| iam/keycloak-db | image: " in run.out and "`mims up` backs up the database first" in run.out
    assert live_image(small_city, "keycloak-db", IAM) == before  # plan changes nothing
