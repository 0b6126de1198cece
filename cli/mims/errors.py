"""Failure kinds. Each maps to one exit code in `mims.app`; nothing else decides exit codes."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Problem:
    """One thing wrong in a user file, located as precisely as the file allows."""

    file: str
    line: int | None
    column: int | None
    field: str
    message: str

    def __str__(self) -> str:
        where = self.file
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        return f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"

    def as_dict(self) -> dict:
        return {
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "field": self.field,
            "message": self.message,
        }


class MimsError(Exception):
    """Base of every error mims reports to the user without a traceback."""

    exit_code = 1


@dataclass
class InvalidInput(MimsError):
    """A blueprint, register entry or option is wrong; all problems found are listed at once."""

    problems: list[Problem] = field(default_factory=list)
    exit_code = 1

    def __str__(self) -> str:
        return "\n".join(str(p) for p in self.problems)


class ChartError(MimsError):
    """A chart or stack definition shipped with mims (or supplied by an integrator) is broken."""

    exit_code = 3


class UsageError(MimsError):
    """The command line itself is wrong in a way Typer cannot see (e.g. an existing output dir)."""

    exit_code = 2


class ToolchainError(MimsError):
    """A tool of the toolchain (Pulumi, the provider, the simulated cluster's binaries) could not be
    installed from any source (found, downloaded, built); the message names the tool and why each
    source failed, for a build the failing command and the last lines of its output."""

    exit_code = 4

    def __init__(
        self, message: str, *, tool: str = "", command: list[str] | None = None, output_tail: str = ""
    ) -> None:
        super().__init__(message)
        self.tool = tool
        self.command = command or []
        self.output_tail = output_tail


class OverBudget(MimsError):
    """The blueprint's first-year cost estimate is above its `budget.cap_eur`; `plan` and `up` stop
    here unless told `--allow-over-budget`."""

    exit_code = 5


class ClusterError(MimsError):
    """A cluster could not be created, reached or stopped (a simulated cluster's process died, a
    kubeconfig context is missing, kind has no container runtime); the message names the log to read."""

    exit_code = 6


class DeployError(MimsError):
    """Pulumi could not preview, update or destroy a stack; the message names the stack and the
    failing resources. Nothing after the failed stack ran; re-running converges."""

    exit_code = 7


class VerificationFailed(MimsError):
    """`mims verify` ran and at least one probe failed; the report names each failure."""

    exit_code = 8


class NotVerifiable(MimsError):
    """There is nothing live to verify: a simulated cluster (no container runs there) or a blueprint
    not deployed; the message says which and what to do instead."""

    exit_code = 9

    @classmethod
    def simulated_cluster(cls) -> NotVerifiable:
        return cls(
            "the blueprint targets the simulated cluster: its pods are scheduled but no container runs, so "
            "nothing answers a probe; verify on a real node (`cluster.target: node`) or cluster (`--context`)"
        )


class Drifted(MimsError):
    """`mims status --drift` found the cluster different from the blueprint: objects changed or
    deleted by hand, or changes of the blueprint not deployed yet; the report lists them."""

    exit_code = 10


class BackupFailed(MimsError):
    """A backup, the listing of backups or a restore did not succeed (a dump failed, a backup is
    damaged or from another database version, the cluster runs no containers); the message names the
    database and says what to do. A failed restore changed nothing."""

    exit_code = 11


class DataAtRisk(MimsError):
    """`mims up` would move a database to a new major version over its old data, or give a stateful
    workload new volumes in place of its own; nothing was deployed. The message names each workload
    and the steps that keep the data (backup, restore), or `--allow-data-change`."""

    exit_code = 12
