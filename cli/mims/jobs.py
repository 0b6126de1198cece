"""Jobs mims starts itself (verify's probe, backups, restores): wait for a Job's pod to finish and
read its log. The caller says which error a failure becomes."""

from __future__ import annotations

import time
from dataclasses import dataclass

from kubernetes import client

PULL_FAILURES = ("ErrImagePull", "ImagePullBackOff", "InvalidImageName")


@dataclass(frozen=True)
class Finished:
    pod: str
    succeeded: bool
    log: str


def wait_for_job(
    core: client.CoreV1Api, namespace: str, job: str, timeout_s: float, error: type[Exception], container: str
) -> Finished:
    """The Job's pod once it succeeded or failed, with `container`'s log; `error` when its image
    cannot be pulled or it does not finish within `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for pod in core.list_namespaced_pod(namespace, label_selector=f"job-name={job}").items:
            if pod.status is None or pod.metadata is None or pod.metadata.name is None:
                continue
            if pod.status.phase in ("Succeeded", "Failed"):
                log = core.read_namespaced_pod_log(pod.metadata.name, namespace, container=container)
                return Finished(pod.metadata.name, pod.status.phase == "Succeeded", log)
            for status in pod.status.container_statuses or []:
                waiting = status.state.waiting if status.state else None
                if waiting and waiting.reason in PULL_FAILURES:
                    raise error(
                        f"the Job {namespace}/{job} cannot pull {status.image}: {waiting.message or waiting.reason}"
                    )
        time.sleep(1)
    raise error(f"the Job {namespace}/{job} did not finish within {timeout_s:.0f} s")
