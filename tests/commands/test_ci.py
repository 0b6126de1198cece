"""`mims ci init` on the command line: the file written and the secrets to set."""

from __future__ import annotations

import json
import shutil

from mims import paths

EXAMPLES = paths.blueprints_dir() / "examples"


def test_ci_init_writes_the_pipeline_and_names_the_secrets(cli, tmp_path):
    shutil.copy(EXAMPLES / "small-city.yaml", tmp_path / "city.yaml")
    shutil.copytree(EXAMPLES / "algorithms", tmp_path / "algorithms")
    code, out, _ = cli("ci", "init", "gitlab", "--dir", tmp_path, "--json")
    assert code == 0
    result = json.loads(out)
    assert result["file"] == str(tmp_path / ".gitlab-ci.yml")
    assert (tmp_path / ".gitlab-ci.yml").is_file()
    assert set(result["secrets"]) == {"MIMS_PASSPHRASE", "MIMS_BACKEND", "MIMS_KUBECONFIG", "MIMS_GITLAB_TOKEN"}


def test_ci_init_refuses_to_overwrite_with_exit_2(cli, tmp_path):
    shutil.copy(EXAMPLES / "small-city.yaml", tmp_path / "city.yaml")
    shutil.copytree(EXAMPLES / "algorithms", tmp_path / "algorithms")
    assert cli("ci", "init", "github", "--dir", tmp_path)[0] == 0
    code, _, err = cli("ci", "init", "github", "--dir", tmp_path)
    assert code == 2 and "--force" in err
