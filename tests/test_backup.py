"""What `mims backup` and `mims restore` make of the charts' CronJobs and read from their Jobs (the Jobs
themselves run on the real node: tests/engine/test_real_node.py)."""

from __future__ import annotations

import datetime
import json

import pytest
import yaml
from kubernetes import client

from mims.backup import Backup, _job_from, new_backup_id, rolled_out
from tests.conftest import FIXTURES, find

MANIFEST = FIXTURES / "backups" / "manifest.json"
ROLLOUTS = yaml.safe_load((FIXTURES / "backups" / "rollouts.yaml").read_text())


def test_a_manifest_line_is_read_into_a_backup():
    backup = Backup.from_manifest(MANIFEST.read_text())
    assert (backup.id, backup.component, backup.workload, backup.database) == (
        "20261204T022300Z",
        "iam",
        "keycloak-db",
        "keycloak",
    )
    assert (backup.engine, backup.server_version_num // 10000, backup.bytes) == ("postgres", 18, 123456)


def test_a_manifest_without_a_field_is_refused():
    with pytest.raises(KeyError):
        Backup.from_manifest('{"id": "20261204T022300Z"}')


def test_backup_ids_are_utc_times_that_sort_by_time():
    early = new_backup_id(datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.UTC))
    late = new_backup_id(datetime.datetime(2026, 11, 2, 3, 4, 5, tzinfo=datetime.UTC))
    assert early == "20260102T030405Z" and early < late


@pytest.fixture(scope="module")
def cron(rendered_examples) -> dict:
    return find(rendered_examples["small-city"], "CronJob", "keycloak-db-restore", "alderbrook-iam")


def test_a_job_from_a_cronjob_keeps_its_pod_and_adds_the_environment(cron):
    job = _job_from(cron, "keycloak-db-restore-20261204t022300z", {"MIMS_RESTORE_ID": "20261204T022300Z"}, None)
    assert job["metadata"]["name"] == "keycloak-db-restore-20261204t022300z"
    assert job["metadata"]["labels"] == cron["metadata"]["labels"]
    assert job["metadata"]["annotations"] == {"cronjob.kubernetes.io/instantiate": "manual"}
    pod = job["spec"]["template"]["spec"]
    template = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert pod["securityContext"] == template["securityContext"] and pod["volumes"] == template["volumes"]
    [container] = pod["containers"]
    assert container["command"] == ["bash", "/etc/mims-backup/restore.sh"]
    assert {"name": "MIMS_RESTORE_ID", "value": "20261204T022300Z"} in container["env"]
    assert "MIMS_RESTORE_ID" not in str(cron)  # the CronJob itself is left as it was


def test_a_job_from_a_cronjob_may_run_another_command(cron):
    job = _job_from(cron, "keycloak-db-list", {}, ["bash", "-c", "true"])
    assert job["spec"]["template"]["spec"]["containers"][0]["command"] == ["bash", "-c", "true"]
    assert cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["command"][0] == "bash"


@pytest.mark.parametrize("case", ROLLOUTS, ids=[case["name"] for case in ROLLOUTS])
def test_restore_waits_until_the_restarted_application_is_rolled_out(case):
    workload = client.ApiClient().deserialize(json.dumps(case["object"]), case["kind"], "application/json")
    assert rolled_out(workload) is case["rolled_out"]
