"""The GitHub pipeline `mims ci init` writes, run as a runner runs it: each job's `run` steps in order
with the workflow's, job's and step's environment, `${{ }}` expressions filled in from the secrets
and the event, GITHUB_ENV and GITHUB_PATH honoured. The checkout and cache steps (`uses:`) are left
out: the repository is already here and the toolchain cache is shared. The cluster is the
blueprint's simulated one. `gh` (GitHub's client; there is no GitHub here) is a script that keeps
the comment it was asked to post."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml
from kubernetes import client
from tests.conftest import REPO
from tests.engine.conftest import SMALL_CITY, Mims, blueprint_copy
from tests.engine.test_drift import REGISTER
from tests.engine.test_orchestrator import RETENTION

from mims import gitops

pytestmark = pytest.mark.integration

GH = """#!/bin/sh
# Keeps what `gh pr comment PR --body-file FILE` was asked to post.
printf '%s\\n' "$*" >> "$GH_LOG"
while [ $# -gt 0 ]; do [ "$1" = --body-file ] && cat "$2" >> "$GH_LOG"; shift; done
"""


class Runner:
    """One repository's workflow, its jobs run on this machine with one MIMS_HOME."""

    def __init__(self, repo: Path, mims: Mims, wheel: Path):
        self.repo = repo
        self.mims = mims
        self.workflow = yaml.safe_load((repo / ".github/workflows/mims.yml").read_text())
        self.temp = repo.parent / "runner-temp"
        self.temp.mkdir()
        (self.temp / "bin").mkdir()
        (self.temp / "bin" / "gh").write_text(GH)
        (self.temp / "bin" / "gh").chmod(0o755)
        self.values = {
            "secrets.MIMS_PASSPHRASE": mims.passphrase,
            "secrets.MIMS_BACKEND": (mims.home / "state").as_uri(),
            "secrets.MIMS_KUBECONFIG": "",  # the blueprint's own (simulated) cluster
            "github.token": "token-of-the-run",
            "github.event.pull_request.number": "7",
        }
        self.pip_spec = str(wheel)

    def run(self, event: str, job: str) -> subprocess.CompletedProcess:
        """The job's steps until one fails; returns the last step's process."""
        spec = self.workflow["jobs"][job]
        assert f"github.event_name == '{event}'" in spec["if"]
        env_file, path_file = self.temp / f"{job}.env", self.temp / f"{job}.path"
        env_file.write_text("")
        path_file.write_text("")
        env = {k: v for k, v in self.mims.env.items() if not k.startswith("MIMS_")}
        env.update(
            MIMS_HOME=self.mims.env["MIMS_HOME"],
            GITHUB_ENV=str(env_file),
            GITHUB_PATH=str(path_file),
            RUNNER_TEMP=str(self.temp),
            GH_LOG=str(self.temp / "gh.log"),
            PATH=f"{self.temp / 'bin'}:{os.environ['PATH']}",
        )
        env.pop("PYTHONPATH", None)  # the pipeline's own install, not the tests' checkout
        env.update(self._fill(self.workflow["env"]) | {"MIMS_PIP_SPEC": self.pip_spec})
        env.update(self._fill(spec.get("env", {})))
        done = None
        for step in spec["steps"]:
            if "run" not in step:
                continue
            step_env = {**env, **self._fill(step.get("env", {}))}
            for line in env_file.read_text().splitlines():
                name, _, value = line.partition("=")
                step_env[name] = value
            for folder in path_file.read_text().splitlines():
                step_env["PATH"] = f"{folder}:{step_env['PATH']}"
            done = subprocess.run(
                ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]],
                cwd=self.repo,
                env=step_env,
                capture_output=True,
                text=True,
                timeout=900,
            )
            if done.returncode != 0:
                break
        assert done is not None
        return done

    def _fill(self, mapping: dict) -> dict[str, str]:
        def value(match: re.Match) -> str:
            assert match[1] in self.values, f"the test does not know ${{{{ {match[1]} }}}}"
            return self.values[match[1]]

        return {k: re.sub(r"\$\{\{\s*([^}]+?)\s*\}\}", value, str(v)) for k, v in mapping.items()}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        ["python3", "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(folder), str(REPO)],
        check=True,
        capture_output=True,
    )
    return next(folder.glob("mims-*.whl"))


def test_github_pipeline_deploys_plans_and_checks_drift(homes, toolchain, wheel, tmp_path):
    repo = tmp_path / "city"
    blueprint_copy(repo, SMALL_CITY, name="city.yaml")
    gitops.write_pipeline("github", gitops.PipelineOptions(blueprint="city.yaml"), repo)
    mims = Mims(homes("pipeline"))
    runner = Runner(repo, mims, wheel)

    deploy = runner.run("push", "deploy")
    assert deploy.returncode == 0, deploy.stdout + deploy.stderr
    assert "Changes" in deploy.stdout

    original = (repo / "city.yaml").read_text()
    (repo / "city.yaml").write_text(original.replace(*RETENTION))
    plan = runner.run("pull_request", "plan")
    assert plan.returncode == 0, plan.stdout + plan.stderr
    comment = (runner.temp / "gh.log").read_text()
    assert comment.startswith("pr comment 7 --body-file")
    assert "### mims plan: `alderbrook-prod`" in comment and "1 change" in comment

    (repo / "city.yaml").write_text(original)  # the pull request was closed
    clean = runner.run("schedule", "drift")
    assert clean.returncode == 0, clean.stdout + clean.stderr

    namespace, name = REGISTER
    client.AppsV1Api(mims.api()).delete_namespaced_deployment(name, namespace)
    drifted = runner.run("schedule", "drift")
    assert drifted.returncode == 10, drifted.stdout + drifted.stderr
    assert f"Deployment {namespace}/{name}" in drifted.stdout
