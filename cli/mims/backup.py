"""Backups of the platform's databases, run in the cluster. The charts render, per database, the
CronJob `<workload>-backup` (on the blueprint's schedule) and the suspended CronJob
`<workload>-restore` (_lib/postgres.j2); this module makes Jobs from them for `mims backup now`,
`mims backup list` and `mims restore`, waits for them and reads what they print. The dumps never
leave the cluster, and no credential passes through mims."""

from __future__ import annotations

import copy
import datetime
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from kubernetes import client
from kubernetes.client.rest import ApiException

from mims.errors import BackupFailed, UsageError
from mims.jobs import Finished, wait_for_job

TIMEOUT_S = 3600  # the CronJobs' activeDeadlineSeconds
ROLLOUT_TIMEOUT_S = 600  # an application restarted on restored data (Keycloak rebuilds its server before it starts)
RESTARTED_ANNOTATION = "mims.io/restored-from"
# Reads every manifest on the backup volume, newest last (ids sort by time).
LIST_SCRIPT = 'shopt -s nullglob; for m in /backups/[0-9]*T*Z/manifest.json; do cat "$m"; echo; done'


@dataclass(frozen=True)
class Database:
    component: str
    namespace: str
    workload: str  # the database's StatefulSet
    database: str
    application: str  # the Deployment restarted after a restore

    @property
    def name(self) -> str:
        return f"{self.component}/{self.workload}"


@dataclass(frozen=True)
class Backup:
    """One database's dump, as its manifest.json describes it."""

    id: str
    component: str
    workload: str
    engine: str
    database: str
    server_version_num: int
    bytes: int
    sha256: str
    finished: str

    @classmethod
    def from_manifest(cls, text: str) -> Backup:
        data = json.loads(text)
        return cls(**{field: data[field] for field in cls.__dataclass_fields__})

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def new_backup_id(now: datetime.datetime | None = None) -> str:
    return (now or datetime.datetime.now(datetime.UTC)).strftime("%Y%m%dT%H%M%SZ")


def scheduled_databases(api: client.ApiClient, city: str) -> list[Database]:
    """The city's databases that have a backup CronJob on the cluster."""
    batch = client.BatchV1Api(api)
    listed = batch.list_cron_job_for_all_namespaces(label_selector=f"mims.io/city={city},mims.io/backup")
    found = []
    for cron in api.sanitize_for_serialization(listed)["items"]:
        meta = cron["metadata"]
        found.append(
            Database(
                meta["labels"]["mims.io/component"],
                meta["namespace"],
                meta["name"].removesuffix("-backup"),
                meta["annotations"]["mims.io/database"],
                meta["annotations"]["mims.io/application"],
            )
        )
    return sorted(found, key=lambda d: d.name)


def databases(api: client.ApiClient, city: str, components: list[str] | None = None) -> list[Database]:
    """The city's databases that have a backup CronJob, optionally only those of `components`;
    refuses when there is none (or none of a component named)."""
    found = scheduled_databases(api, city)
    if components:
        unknown = sorted(set(components) - {d.component for d in found})
        if unknown:
            have = ", ".join(sorted({d.component for d in found})) or "none"
            raise UsageError(
                f"no database of component(s) {', '.join(unknown)} is backed up; components with backups: {have}"
            )
        found = [d for d in found if d.component in components]
    if not found:
        raise BackupFailed(
            f"no backup CronJob of city `{city}` is deployed: enable `backup` in the blueprint and run `mims up`"
        )
    return found


def back_up(api: client.ApiClient, found: list[Database], backup_id: str, say: Callable[[str], None]) -> list[Backup]:
    """Dumps every database now, all with the same id; raises BackupFailed naming each one that failed."""
    results = _run_all(api, found, "backup", f"backup-{backup_id.lower()}", {"MIMS_BACKUP_ID": backup_id}, say)
    return [Backup.from_manifest(done.log.strip().splitlines()[-1]) for done in results.values()]


def list_backups(api: client.ApiClient, found: list[Database], say: Callable[[str], None]) -> list[Backup]:
    """Every backup on the databases' backup volumes, oldest first."""
    results = _run_all(api, found, "backup", "list", {}, say, command=["bash", "-c", LIST_SCRIPT], keep=False)
    backups = [
        Backup.from_manifest(line) for done in results.values() for line in done.log.splitlines() if line.strip()
    ]
    return sorted(backups, key=lambda b: (b.id, b.component, b.workload))


def restore(api: client.ApiClient, found: list[Database], backup_id: str, say: Callable[[str], None]) -> list[Database]:
    """Restores every database in `found` from backup `backup_id`, then restarts the applications.
    Refuses before changing anything when a database has no such backup."""
    present = {(b.component, b.workload) for b in list_backups(api, found, say) if b.id == backup_id}
    missing = [d.name for d in found if (d.component, d.workload) not in present]
    if missing:
        raise BackupFailed(
            f"backup {backup_id} does not exist for {', '.join(missing)}; `mims backup list` shows the "
            "backups there are (restore only some components by naming them)"
        )
    _run_all(api, found, "restore", f"restore-{backup_id.lower()}", {"MIMS_RESTORE_ID": backup_id}, say)
    apps = client.AppsV1Api(api)
    restarted = {}
    for database in found:
        restarted[database.name] = (database, _restart(apps, database, backup_id))
        say(f"{database.name}: restored from {backup_id}; {database.application} restarts on the restored data")
    deadline = time.monotonic() + ROLLOUT_TIMEOUT_S
    for database, kind in restarted.values():
        if kind is not None:
            _wait_for_rollout(apps, kind, database, deadline, backup_id)
            say(f"{database.name}: {database.application} is ready again")
    return found


def _run_all(
    api: client.ApiClient,
    found: list[Database],
    kind: str,
    suffix: str,
    env: dict[str, str],
    say: Callable[[str], None],
    command: list[str] | None = None,
    keep: bool = True,
) -> dict[str, Finished]:
    """One Job per database from its `<workload>-<kind>` CronJob, all started before any is awaited.
    Each run's Jobs have names of their own (a failed restore may be tried again)."""
    batch, core = client.BatchV1Api(api), client.CoreV1Api(api)
    started = {}
    run = secrets.token_hex(3)
    for database in found:
        name = f"{database.workload}-{suffix}"[: 63 - len(run) - 1].rstrip("-") + f"-{run}"
        cron = api.sanitize_for_serialization(
            batch.read_namespaced_cron_job(f"{database.workload}-{kind}", database.namespace)
        )
        batch.create_namespaced_job(database.namespace, _job_from(cron, name, env, command))  # type: ignore[arg-type]
        started[database.name] = (database, name)
        say(f"{database.name}: Job {database.namespace}/{name} started")
    results, failures = {}, []
    try:
        for key, (database, name) in started.items():
            done = wait_for_job(core, database.namespace, name, TIMEOUT_S, BackupFailed, container=kind)
            if not done.succeeded:
                failures.append(f"{database.name}: {_last_lines(done.log)}")
            results[key] = done
    finally:
        if not keep:
            for database, name in started.values():
                _delete_job(batch, database.namespace, name)
    if failures:
        raise BackupFailed(f"{kind} failed for {len(failures)} database(s):\n  " + "\n  ".join(failures))
    return results


def _job_from(cron: dict, name: str, env: dict[str, str], command: list[str] | None) -> dict:
    """The CronJob's Job template as a Job of its own, with extra environment (as `kubectl create job --from`)."""
    spec = copy.deepcopy(cron["spec"]["jobTemplate"]["spec"])
    container = spec["template"]["spec"]["containers"][0]
    container["env"] = [*container.get("env", []), *({"name": k, "value": v} for k, v in env.items())]
    if command:
        container["command"] = command
    labels = dict(cron["metadata"].get("labels") or {})
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "labels": labels, "annotations": {"cronjob.kubernetes.io/instantiate": "manual"}},
        "spec": spec,
    }


def _restart(apps: client.AppsV1Api, database: Database, backup_id: str) -> str | None:
    """A new pod template revision of the application, a Deployment or a StatefulSet (as `kubectl
    rollout restart`), under a field manager of its own: it reads the restored data instead of what
    it cached. Returns its kind, None when there is no such application (left out by the blueprint)."""
    patch = {"spec": {"template": {"metadata": {"annotations": {RESTARTED_ANNOTATION: backup_id}}}}}
    for kind, patch_it in (
        ("Deployment", apps.patch_namespaced_deployment),
        ("StatefulSet", apps.patch_namespaced_stateful_set),
    ):
        try:
            patch_it(database.application, database.namespace, patch, field_manager="mims-restore")
            return kind
        except ApiException as error:
            if error.status != 404:
                raise
    return None


def _wait_for_rollout(apps: client.AppsV1Api, kind: str, database: Database, deadline: float, backup_id: str) -> None:
    """Until the restarted application runs only new, ready pods: `mims restore` returns when the
    platform serves the restored data."""
    read = apps.read_namespaced_deployment if kind == "Deployment" else apps.read_namespaced_stateful_set
    while True:
        workload = read(database.application, database.namespace)
        if rolled_out(workload):
            return
        if time.monotonic() > deadline:
            raise BackupFailed(
                f"{database.name} was restored from {backup_id}, but {kind} {database.namespace}/"
                f"{database.application} did not run ready pods on it within {ROLLOUT_TIMEOUT_S} s: see "
                f"`kubectl -n {database.namespace} get pods` and the pods' logs"
            )
        time.sleep(2)


def rolled_out(workload: client.V1Deployment | client.V1StatefulSet) -> bool:
    """The conditions of `kubectl rollout status`: the controller saw the latest template, every
    replica runs it and is ready (available, for a Deployment), and no old replica is left."""
    spec, status, meta = workload.spec, workload.status, workload.metadata
    if spec is None or status is None or meta is None:
        return False
    wanted = spec.replicas if spec.replicas is not None else 1
    if (status.observed_generation or 0) < (meta.generation or 0):
        return False
    if isinstance(status, client.V1DeploymentStatus):
        updated = status.updated_replicas or 0
        return updated >= wanted and (status.replicas or 0) == updated == (status.available_replicas or 0)
    return (status.ready_replicas or 0) >= wanted and status.current_revision == status.update_revision


def _delete_job(batch: client.BatchV1Api, namespace: str, name: str) -> None:
    try:
        batch.delete_namespaced_job(name, namespace, propagation_policy="Background")
    except ApiException as error:
        if error.status != 404:
            raise


def _last_lines(log: str, count: int = 5) -> str:
    lines = [line for line in log.strip().splitlines() if line.strip()]
    return " / ".join(lines[-count:]) or "no output"
