"""`mims ci init`'s pipelines: what they run, that the platforms' own linters accept them, and that
bad options are refused before anything is written."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from mims import gitops, paths
from mims.errors import InvalidInput, UsageError
from tests.conftest import require_tool

EXAMPLES = paths.blueprints_dir() / "examples"


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A city's repository: the small-city blueprint and its register entries."""
    shutil.copy(EXAMPLES / "small-city.yaml", tmp_path / "city.yaml")
    shutil.copytree(EXAMPLES / "algorithms", tmp_path / "algorithms")
    return tmp_path


def options(**changes) -> gitops.PipelineOptions:
    return gitops.PipelineOptions(**{"blueprint": "city.yaml", **changes})


def test_github_pipeline_plans_pull_requests_deploys_pushes_and_checks_drift(repo):
    workflow = yaml.safe_load(gitops.write_pipeline("github", options(branch="live"), repo).read_text())
    jobs = workflow["jobs"]
    runs = {name: [step.get("run", "") for step in job["steps"]] for name, job in jobs.items()}
    assert workflow[True] == {  # YAML 1.1 reads the key `on` as true
        "pull_request": {"branches": ["live"]},
        "push": {"branches": ["live"]},
        "schedule": [{"cron": "17 5 * * *"}],
        "workflow_dispatch": None,
    }
    assert any('mims plan "$MIMS_BLUEPRINT" --markdown' in run for run in runs["plan"])
    assert any("gh pr comment" in run for run in runs["plan"])
    assert 'mims up "$MIMS_BLUEPRINT" --yes' in runs["deploy"]
    assert 'mims status "$MIMS_BLUEPRINT" --drift' in runs["drift"]
    # one deployment at a time, the drift check never beside a deployment
    assert (
        jobs["deploy"]["concurrency"]
        == jobs["drift"]["concurrency"]
        == {
            "group": "mims-production",
            "cancel-in-progress": False,
        }
    )
    assert workflow["permissions"] == {"contents": "read"}
    assert workflow["env"]["MIMS_PASSPHRASE"] == "${{ secrets.MIMS_PASSPHRASE }}"


def test_gitlab_pipeline_plans_merge_requests_deploys_pushes_and_checks_drift(repo):
    pipeline = yaml.safe_load(gitops.write_pipeline("gitlab", options(environment="city"), repo).read_text())
    assert pipeline["stages"] == ["plan", "deploy", "drift"]
    assert 'mims plan "$MIMS_BLUEPRINT" --markdown --quiet > plan.md' in pipeline["plan"]["script"]
    assert pipeline["deploy"]["script"] == ['mims up "$MIMS_BLUEPRINT" --yes']
    assert pipeline["deploy"]["resource_group"] == pipeline["drift"]["resource_group"] == "mims-city"
    assert pipeline["drift"]["rules"] == [{"if": '$CI_PIPELINE_SOURCE == "schedule"'}]


def test_github_pipeline_passes_actionlint_and_shellcheck(repo):
    actionlint, _ = require_tool("actionlint"), require_tool("shellcheck")
    workflow = gitops.write_pipeline("github", options(), repo)
    run = subprocess.run(
        [actionlint, "-shellcheck", shutil.which("shellcheck") or "", str(workflow)], capture_output=True, text=True
    )
    assert run.returncode == 0, run.stdout + run.stderr


def test_gitlab_pipeline_passes_gitlabs_ci_schema(repo):
    checker = require_tool("check-jsonschema")
    pipeline = gitops.write_pipeline("gitlab", options(), repo)
    run = subprocess.run(
        [checker, "--builtin-schema", "vendor.gitlab-ci", str(pipeline)], capture_output=True, text=True
    )
    assert run.returncode == 0, run.stdout + run.stderr


def test_actionlint_catches_a_broken_workflow(repo):
    """The linter check can fail: an expression GitHub does not know is an error."""
    actionlint = require_tool("actionlint")
    workflow = gitops.write_pipeline("github", options(), repo)
    workflow.write_text(workflow.read_text().replace("${{ github.token }}", "${{ github.tokn }}"))
    run = subprocess.run([actionlint, "-shellcheck=", str(workflow)], capture_output=True, text=True)
    assert run.returncode == 1 and "tokn" in run.stdout


def test_an_existing_pipeline_is_kept_without_force(repo):
    first = gitops.write_pipeline("github", options(), repo)
    first.write_text("# the city's own\n")
    with pytest.raises(UsageError, match="--force"):
        gitops.write_pipeline("github", options(), repo)
    assert first.read_text() == "# the city's own\n"
    gitops.write_pipeline("github", options(), repo, force=True)
    assert "mims up" in first.read_text()


def test_a_missing_blueprint_is_refused(repo):
    with pytest.raises(UsageError, match="does not exist"):
        gitops.write_pipeline("github", options(blueprint="town.yaml"), repo)


def test_an_invalid_blueprint_lists_its_problems(repo):
    (repo / "city.yaml").write_text((repo / "city.yaml").read_text().replace("budget:", "budgett:", 1))
    with pytest.raises(InvalidInput):
        gitops.write_pipeline("github", options(), repo)
    assert not (repo / ".github").exists()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"schedule": "daily"}, "cron line"),
        ({"branch": "main; rm -rf /"}, "not a branch name"),
        ({"environment": "prod env"}, "--environment"),
        ({"install": 'mims" && curl evil'}, "quotes"),
        ({"blueprint": "../city.yaml"}, "relative to the repository"),
    ],
)
def test_values_that_would_break_yaml_or_shell_are_refused(repo, change, message):
    with pytest.raises(UsageError, match=message):
        gitops.write_pipeline("github", options(**change), repo)


def test_an_unknown_platform_lists_the_known_ones(repo):
    with pytest.raises(UsageError, match="github, gitlab"):
        gitops.write_pipeline("jenkins", options(), repo)
