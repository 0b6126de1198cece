"""The backup of every PostgreSQL database (charts/_lib/postgres.j2, `backup` in the blueprint): a volume
for the dumps, a CronJob on the blueprint's schedule, a suspended restore CronJob, restricted pods that
only the database admits, and nothing of it when backups are off."""

from __future__ import annotations

import subprocess

import pytest

from mims.blueprint import load_blueprint
from mims.charts.network import NAME_LABEL
from mims.errors import InvalidInput
from tests.conftest import find, require_tool

DATABASES = {  # the standard city's: namespace, database workload, application restarted after a restore
    "keycloak-db": ("riverton-iam", "keycloak"),
    "catalogue-db": ("riverton-catalogue", "ckan"),
    "broker-db": ("riverton-broker", "scorpio"),
}


@pytest.fixture(scope="module")
def standard(rendered_examples):
    return rendered_examples["standard-city"]


def pod_of(cron: dict) -> dict:
    return cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]


@pytest.mark.parametrize("workload", DATABASES)
def test_every_database_has_a_backup_volume_kept_on_destroy(standard, workload):
    namespace, _ = DATABASES[workload]
    claim = find(standard, "PersistentVolumeClaim", f"{workload}-backups", namespace)
    assert claim["metadata"]["labels"]["mims.io/backups"] == "true"
    assert claim["metadata"]["annotations"]["mims.io/protect"] == "true"
    assert claim["spec"]["resources"]["requests"]["storage"] == "5Gi"


@pytest.mark.parametrize("workload", DATABASES)
def test_the_backup_runs_on_the_blueprints_schedule_and_the_restore_only_when_asked(standard, workload):
    namespace, application = DATABASES[workload]
    backup = find(standard, "CronJob", f"{workload}-backup", namespace)
    restore = find(standard, "CronJob", f"{workload}-restore", namespace)
    assert (backup["spec"]["schedule"], backup["spec"]["timeZone"]) == ("23 2 * * *", "Etc/UTC")
    assert (backup["spec"]["suspend"], restore["spec"]["suspend"]) == (False, True)
    assert backup["spec"]["concurrencyPolicy"] == "Forbid"
    for cron in (backup, restore):
        assert cron["metadata"]["annotations"]["mims.io/application"] == application
        assert (
            pod_of(cron)["containers"][0]["image"]
            == find(standard, "StatefulSet", workload, namespace)["spec"]["template"]["spec"]["containers"][0]["image"]
        )  # its pg_dump is the server's


@pytest.mark.parametrize("workload", DATABASES)
def test_backup_pods_are_restricted(standard, workload):
    namespace, _ = DATABASES[workload]
    for job in ("backup", "restore"):
        pod = pod_of(find(standard, "CronJob", f"{workload}-{job}", namespace))
        assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] == 10999
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        assert pod["automountServiceAccountToken"] is False
        [container] = pod["containers"]
        security = container["securityContext"]
        assert security["readOnlyRootFilesystem"] is True and security["allowPrivilegeEscalation"] is False
        assert security["capabilities"] == {"drop": ["ALL"]}
        assert container["resources"]["limits"] == {"cpu": "500m", "memory": "256Mi"}


def test_only_keycloaks_restore_mounts_the_client_secrets_its_sql_needs(standard):
    def secrets(workload: str, job: str) -> set[str]:
        pod = pod_of(find(standard, "CronJob", f"{workload}-{job}", DATABASES[workload][0]))
        return {v["secret"]["secretName"] for v in pod["volumes"] if "secret" in v}

    assert secrets("keycloak-db", "restore") == {"keycloak-db-superuser", "oidc-clients"}
    assert secrets("keycloak-db", "backup") == {"keycloak-db-superuser"}
    assert secrets("catalogue-db", "restore") == {"catalogue-db-superuser"}
    scripts = find(standard, "ConfigMap", "keycloak-db-backup", "riverton-iam")["data"]
    assert set(scripts) == {"backup.sh", "restore.sh", "after-restore.sql"}
    assert "UPDATE public.client" in scripts["after-restore.sql"]


@pytest.mark.parametrize("workload", DATABASES)
def test_the_database_admits_its_backup_pods(standard, workload):
    namespace, _ = DATABASES[workload]
    ingress = find(standard, "NetworkPolicy", f"allow-ingress-{workload}", namespace)["spec"]["ingress"]
    sources = {rule["from"][0]["podSelector"]["matchLabels"][NAME_LABEL]: rule["ports"] for rule in ingress}
    assert sources[f"{workload}-backup"] == [{"protocol": "TCP", "port": 5432}]
    egress = find(standard, "NetworkPolicy", f"allow-egress-{workload}-backup", namespace)["spec"]["egress"]
    assert any(rule["ports"] == [{"protocol": "TCP", "port": 5432}] for rule in egress)


def test_schedule_retention_and_size_come_from_the_blueprint(write_blueprint, renderer):
    rendering = renderer.render(
        load_blueprint(
            write_blueprint({"backup": {"schedule": "*/30 * * * *", "keep": 3, "target": {"volume": {"size": "2Gi"}}}})
        )
    )
    ns = "alderbrook-iam"
    assert find(rendering, "CronJob", "keycloak-db-backup", ns)["spec"]["schedule"] == "*/30 * * * *"
    claim = find(rendering, "PersistentVolumeClaim", "keycloak-db-backups", ns)
    assert claim["spec"]["resources"]["requests"]["storage"] == "2Gi"
    script = find(rendering, "ConfigMap", "keycloak-db-backup", ns)["data"]["backup.sh"]
    assert 'while [ "$#" -gt 3 ]; do' in script


def test_backups_off_render_none_of_it(write_blueprint, renderer):
    rendering = renderer.render(load_blueprint(write_blueprint({"backup": {"enabled": False}})))
    names = {(o["kind"], o["metadata"]["name"]) for o in rendering.objects()}
    assert not any(kind == "CronJob" or name.endswith("-backups") for kind, name in names)
    assert not any(name.endswith("-backup") for kind, name in names if kind == "NetworkPolicy")


@pytest.mark.parametrize("script", ["backup.sh", "restore.sh"])
def test_the_rendered_scripts_pass_bash_and_shellcheck(standard, script, tmp_path):
    text = find(standard, "ConfigMap", "keycloak-db-backup", "riverton-iam")["data"][script]
    path = tmp_path / script
    path.write_text(text)
    assert subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True).stderr == ""
    checked = subprocess.run([require_tool("shellcheck"), str(path)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout


@pytest.mark.parametrize(
    "backup, field",
    [
        ({"schedule": "every night"}, "backup.schedule"),
        ({"keep": 0}, "backup.keep"),
        ({"target": {"volume": {"size": "5GB"}}}, "backup.target.volume.size"),
        ({"target": {"bucket": "x"}}, "backup.target.bucket"),
    ],
)
def test_a_wrong_backup_section_names_the_field(write_blueprint, backup, field):
    with pytest.raises(InvalidInput) as info:
        load_blueprint(write_blueprint({"backup": backup}))
    assert [p.field for p in info.value.problems] == [field]
    assert all(p.line is not None for p in info.value.problems)
