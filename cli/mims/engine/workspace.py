"""Where Pulumi keeps state and how mims talks to it: the backend, the passphrase, one work folder per
stack, and the Automation API workspace options built from the toolchain mims compiled."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

import pulumi.automation as auto

from mims import paths
from mims.console import err
from mims.engine.locks import repair_attributes
from mims.progress import SILENT, Prefixed, Progress
from mims.toolchain import install, pulumi_home

PASSPHRASE_ENV = "MIMS_PASSPHRASE"
BACKEND_ENV = "MIMS_BACKEND"


@dataclass(frozen=True)
class Backend:
    """A Pulumi backend URL (the local file backend under MIMS_HOME unless MIMS_BACKEND says otherwise)
    and the passphrase that encrypts the stacks' secrets."""

    url: str
    passphrase: str
    workspaces: Path

    @classmethod
    def default(cls) -> Backend:
        home = paths.home_dir()
        state = home / "state"
        url = os.environ.get(BACKEND_ENV) or state.as_uri()
        if url.startswith("file://"):
            Path(url.removeprefix("file://")).mkdir(parents=True, exist_ok=True)
        return cls(url=url, passphrase=_passphrase(state), workspaces=home / "workspaces")


def _passphrase(state: Path) -> str:
    """MIMS_PASSPHRASE, else a passphrase created once in a 0600 file and announced once."""
    if os.environ.get(PASSPHRASE_ENV):
        return os.environ[PASSPHRASE_ENV]
    path = state / "passphrase"
    if path.exists():
        return path.read_text().strip()
    state.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another mims process created it a moment ago
        return path.read_text().strip()
    with os.fdopen(fd, "w") as handle:
        handle.write(secrets.token_urlsafe(32) + "\n")
    err.print(
        f"created the passphrase that encrypts this machine's stack secrets: {path} (mode 0600); "
        f"back it up, or set {PASSPHRASE_ENV} instead",
        markup=False,
    )
    return path.read_text().strip()


class Workspaces:
    """Builds Automation API stacks. Every Pulumi project gets its own work folder, because
    selecting stacks of one folder from several threads races on its workspace file (pulumi#8186)."""

    def __init__(self, backend: Backend, progress: Progress = SILENT):
        self.backend = backend
        tools = install(["pulumi", "pulumi-kubernetes"], progress=Prefixed(progress, "toolchain"))
        self.command = auto.PulumiCommand(root=str(tools["pulumi"].dir))
        self.home = pulumi_home()
        repair_attributes(backend.url, progress)

    def env(self) -> dict[str, str]:
        return {
            "PULUMI_HOME": str(self.home),
            "PULUMI_CONFIG_PASSPHRASE": self.backend.passphrase,
            "PULUMI_BACKEND_URL": self.backend.url,
            "PULUMI_SKIP_UPDATE_CHECK": "true",
            # mims installs the one provider it needs; never fetch plugins behind the user's back.
            "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
            "PULUMI_AUTOMATION_API_SKIP_VERSION_CHECK": "true",
            # mims owns every field it declares: a field someone changed by hand (another field
            # manager, e.g. `kubectl set image`) is taken back instead of failing the apply with a
            # server-side apply conflict (the provider's patchForce, pkg/await/await.go).
            "PULUMI_K8S_ENABLE_PATCH_FORCE": "true",
        }

    def stack(self, project: str, stack_name: str, program) -> auto.Stack:
        return self.open_stack(project, stack_name, program)[0]

    def open_stack(self, project: str, stack_name: str, program) -> tuple[auto.Stack, bool]:
        """The stack, created if it did not exist; the flag says it was just created (and so has
        no history to read)."""
        stack = self.existing_stack(project, stack_name, program)
        if stack is not None:
            return stack, False
        return auto.create_stack(
            stack_name=stack_name, project_name=project, program=program, opts=self._options(project, stack_name)
        ), True

    def existing_stack(self, project: str, stack_name: str, program) -> auto.Stack | None:
        """The stack if it was ever created, without creating it (status, destroy)."""
        try:
            return auto.select_stack(
                stack_name=stack_name, project_name=project, program=program, opts=self._options(project, stack_name)
            )
        except auto.errors.StackNotFoundError:
            return None

    def _options(self, project: str, stack_name: str) -> auto.LocalWorkspaceOptions:
        work_dir = self.backend.workspaces / stack_name / project
        work_dir.mkdir(parents=True, exist_ok=True)
        return auto.LocalWorkspaceOptions(
            work_dir=str(work_dir),
            pulumi_home=str(self.home),
            env_vars=self.env(),
            secrets_provider="passphrase",
            pulumi_command=self.command,
            project_settings=auto.ProjectSettings(
                name=project, runtime="python", backend=auto.ProjectBackend(url=self.backend.url)
            ),
        )
