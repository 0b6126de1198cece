"""What `mims up` will not do to data unasked (docs/operations.md, "Upgrading"): start a database on
a new major version over the old version's data directory (PostgreSQL refuses to start; the data
moves only through a dump and a restore), or give a StatefulSet other volume claims than the ones
holding its data. Found by comparing the live StatefulSets with the rendering: one read per stateful
workload, only for those that exist. A database whose image changes within its major version gets
a backup first."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from kubernetes import client
from kubernetes.client.rest import ApiException

from mims.charts.footprint import COMPONENT_LABEL
from mims.charts.render import Rendering
from mims.errors import DataAtRisk

Kind = Literal["major", "image", "volumes"]


@dataclass(frozen=True)
class DataChange:
    kind: Kind
    component: str
    namespace: str
    workload: str
    before: str
    after: str

    def describe(self) -> str:
        what = {
            "major": "its database moves to another major version",
            "image": "its database image changes",
            "volumes": "its volume claims change (new, empty volumes)",
        }[self.kind]
        return f"{self.component}/{self.workload}: {what}: {self.before} -> {self.after}"

    @property
    def refused(self) -> bool:
        """`mims up` refuses it unless --allow-data-change (an image change within the major version
        only gets a backup first)."""
        return self.kind != "image"

    def what_up_does(self) -> str:
        if self.refused:
            return "refused by `mims up` unless --allow-data-change (docs/operations.md, Upgrading)"
        return "`mims up` backs up the database first (unless --no-backup)"

    def as_dict(self) -> dict:
        return {**self.__dict__, "refused": self.refused}


def data_changes(api: client.ApiClient, rendering: Rendering) -> list[DataChange]:
    """The changes of the rendering to the cluster's stateful workloads that touch their data."""
    apps = client.AppsV1Api(api)
    databases = {db.workload for chart in rendering.charts.values() for db in chart.meta.databases}
    found = []
    for obj in rendering.objects():
        if obj["kind"] != "StatefulSet" or not obj["spec"].get("volumeClaimTemplates"):
            continue
        meta = obj["metadata"]
        try:
            live = api.sanitize_for_serialization(apps.read_namespaced_stateful_set(meta["name"], meta["namespace"]))
        except ApiException as error:
            if error.status == 404:
                continue  # a new workload: nothing to lose
            raise
        change = _change(meta["labels"][COMPONENT_LABEL], meta["namespace"], meta["name"])
        claims_before, claims_after = _claim_names(live), _claim_names(obj)
        if claims_before != claims_after:
            found.append(change("volumes", ", ".join(claims_before), ", ".join(claims_after)))
        if meta["name"] in databases:
            before, after = _image(live), _image(obj)
            if major_version(before) != major_version(after):
                found.append(change("major", before, after))
            elif before != after:
                found.append(change("image", before, after))
    return found


def major_version(image: str) -> str:
    """The leading number of the image's tag: `postgres:18.1-alpine` and `postgis/postgis:18-3.6` are 18."""
    tag = image.split("@")[0].rsplit("/", 1)[-1].partition(":")[2]
    number = re.match(r"\d+", tag)
    return number.group(0) if number else tag


def refusal(changes: list[DataChange], city_file: str) -> str:
    lines = "\n  ".join(c.describe() for c in changes)
    return (
        f"this update would put data at risk, so nothing was deployed:\n  {lines}\n"
        "To move a database to a new major version with its data:\n"
        f"  1. mims backup now {city_file}\n"
        f"  2. mims destroy {city_file} --purge-data   (deletes the data volumes; keeps the backup volumes)\n"
        f"  3. mims up {city_file}                      (the new version, empty databases)\n"
        f"  4. mims restore {city_file} --from <id of step 1>\n"
        "New volume claims leave the old volumes, and their data, behind: move the data the same way. "
        "`mims up --allow-data-change` deploys anyway (docs/operations.md, Upgrading)."
    )


def _change(component: str, namespace: str, workload: str):
    def make(kind: Kind, before: str, after: str) -> DataChange:
        return DataChange(kind, component, namespace, workload, before, after)

    return make


def _claim_names(statefulset: dict) -> list[str]:
    return sorted(t["metadata"]["name"] for t in statefulset["spec"].get("volumeClaimTemplates") or [])


def _image(statefulset: dict) -> str:
    return statefulset["spec"]["template"]["spec"]["containers"][0]["image"]


def protect_data(
    api: client.ApiClient,
    rendering: Rendering,
    *,
    allow_data_change: bool,
    backup_first: bool,
    runs_containers: bool,
    say: Callable[[str], None],
) -> list[DataChange]:
    """Refuses (DataAtRisk) a major-version or volume change unless allowed; backs up each database
    whose image changes, before anything is deployed, when the blueprint has backups and the
    cluster runs containers. Returns the changes found."""
    changes = data_changes(api, rendering)
    risky = [c for c in changes if c.refused]
    if risky and not allow_data_change:
        raise DataAtRisk(refusal(risky, rendering.loaded.path.name))
    moving = sorted({c.workload for c in changes if c.kind in ("image", "major")})
    if not moving:
        return changes
    if not backup_first:
        say(f"no backup before the image change of {', '.join(moving)} (--no-backup)")
    elif not rendering.loaded.blueprint.backup.enabled:
        say(f"no backup before the image change of {', '.join(moving)}: the blueprint's `backup` is off")
    elif not runs_containers:
        say(f"no backup before the image change of {', '.join(moving)}: the simulated cluster runs no containers")
    else:
        _back_up_before(api, rendering, moving, say)
    return changes


def _back_up_before(
    api: client.ApiClient, rendering: Rendering, workloads: list[str], say: Callable[[str], None]
) -> None:
    from mims.backup import back_up, new_backup_id, scheduled_databases

    city = rendering.loaded.blueprint.city.name
    found = [d for d in scheduled_databases(api, city) if d.workload in workloads]
    for missing in sorted(set(workloads) - {d.workload for d in found}):
        say(f"no backup before the image change of {missing}: it has no backup CronJob on the cluster yet")
    if found:
        backup_id = new_backup_id()
        say(f"backup {backup_id} of {', '.join(d.name for d in found)} before their image changes")
        back_up(api, found, backup_id, say)
