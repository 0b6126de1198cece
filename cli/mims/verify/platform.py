"""What every probe needs of the deployed platform: the blueprint as rendered (what should be
there), the Kubernetes API (secrets, pods, the probe Job), the public endpoints and realm tokens."""

from __future__ import annotations

import base64
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

from kubernetes import client
from kubernetes.client import ApiClient

from mims.verify.probe import ProbeFailed, ProbeSkipped, expect
from mims.verify.public import PublicClient, Response

if TYPE_CHECKING:
    from mims.blueprint.model import Blueprint
    from mims.charts.render import Rendering, ResolvedEndpoint

# The realm client mims verifies with (charts/keycloak/files/realm.json.j2): the write roles of every
# enabled component, so its probes can write; and one with none, whose valid token must get 403.
VERIFY_CLIENT = "verify"
NO_ROLES_CLIENT = "verify-no-roles"
TOKEN_RETRY_S = 60.0


@dataclass
class Platform:
    rendering: Rendering
    api: ApiClient
    public: PublicClient
    run_id: str
    cleanups: list[Callable[[], None]] = field(default_factory=list)
    _tokens: dict[str, str] = field(default_factory=dict)

    @property
    def blueprint(self) -> Blueprint:
        return self.rendering.loaded.blueprint

    @property
    def city(self) -> str:
        return self.blueprint.city.name

    @property
    def realm(self) -> str:
        return self.blueprint.components.iam.options.realm or self.city

    def namespace(self, component: str) -> str:
        return f"{self.city}-{component}"

    @cached_property
    def core(self) -> client.CoreV1Api:
        return client.CoreV1Api(self.api)

    def enabled(self, component: str) -> bool:
        return component in self.rendering.charts

    def endpoint(self, key: str) -> ResolvedEndpoint | None:
        return self.rendering.endpoints.get(key)

    def replicas(self, component: str, workload: str) -> int:
        """The replicas the blueprint asks for (after its overrides); 0 when no such workload."""
        for obj in self.rendering.objects():
            meta = obj["metadata"]
            if (
                obj["kind"] in ("Deployment", "StatefulSet")
                and meta["name"] == workload
                and meta.get("namespace") == self.namespace(component)
            ):
                return int(obj["spec"].get("replicas", 1))
        return 0

    def need_running(self, component: str, workload: str) -> None:
        """Skips a probe of software the blueprint deploys with no pod (an override's `replicas: 0`)."""
        if not self.replicas(component, workload):
            raise ProbeSkipped(f"the blueprint runs no pod of {component}/{workload} (replicas: 0)")

    def secret(self, component: str, name: str) -> dict[str, str]:
        data = self.core.read_namespaced_secret(name, self.namespace(component)).data or {}
        return {k: base64.b64decode(v).decode() for k, v in data.items()}

    def request(self, method: str, host: str, path: str, **options) -> Response:  # type: ignore[no-untyped-def]
        return self.public.request(method, host, path, **options)

    def token(self, client_id: str = VERIFY_CLIENT) -> str:
        """A client-credentials access token of a realm client, from the public token endpoint."""
        if client_id not in self._tokens:
            secrets = self.secret("iam", "oidc-clients")
            if client_id not in secrets:
                raise ProbeFailed(
                    f"the realm has no `{client_id}` client secret in {self.namespace('iam')}/oidc-clients "
                    "(a realm imported before mims added it: see docs/mims.md, 'The verify clients')"
                )
            form = urllib.parse.urlencode(
                {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secrets[client_id]}
            ).encode()
            # A 5xx is retried for a while: Keycloak answers 500 until it has reconnected to a
            # database that restarted a moment ago.
            deadline = time.monotonic() + TOKEN_RETRY_S
            while True:
                answer = self.request(
                    "POST",
                    self.auth_host,
                    f"/realms/{self.realm}/protocol/openid-connect/token",
                    body=form,
                    headers={"Content-Type": "application/x-www-form-urlencoded"},
                )
                if answer.status < 500 or time.monotonic() > deadline:
                    break
                time.sleep(2)
            expect(answer.status == 200, f"the realm refused a token to client `{client_id}`: {answer.brief()}")
            self._tokens[client_id] = answer.json()["access_token"]
        return self._tokens[client_id]

    def bearer(self, client_id: str = VERIFY_CLIENT) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(client_id)}"}

    @property
    def auth_host(self) -> str:
        oidc = self.endpoint("iam/oidc")
        if oidc is None or oidc.host is None:
            raise ProbeSkipped("iam is not enabled: no realm issues tokens")
        return oidc.host

    def pods(self, component: str, workload: str) -> list[client.V1Pod]:
        selector = f"app.kubernetes.io/name={workload},app.kubernetes.io/instance={self.city}"
        return [
            p
            for p in self.core.list_namespaced_pod(self.namespace(component), label_selector=selector).items
            if p.status is not None and p.status.phase == "Running"
        ]

    def exec(self, component: str, workload: str, container: str, command: str) -> str:
        """`sh -c command` in a running pod of the workload; its stdout and stderr."""
        from kubernetes.stream import stream

        pods = self.pods(component, workload)
        expect(pods, f"no running pod of {component}/{workload}")
        name = pods[0].metadata.name if pods[0].metadata else None
        return stream(
            self.core.connect_get_namespaced_pod_exec,
            name,
            self.namespace(component),
            container=container,
            command=["sh", "-c", command],
            stderr=True,
            stdout=True,
            stdin=False,
            tty=False,
        )
