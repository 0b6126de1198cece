"""The checks of `mims doctor` against a fake toolchain, a fake `go` and a fake PATH."""

from __future__ import annotations

import pytest

from mims import doctor
from mims.cluster import node
from mims.errors import ToolchainError
from tests.toolchain.fakes import fake_go, fake_machine, fake_tool, remove_tool, script

TOOLS = [
    "pulumi",
    "pulumi-kubernetes",
    "kubernetes",
    "kubernetes-node",
    "kubectl",
    "etcd",
    "kwok",
    "kube-router",
    "local-path-provisioner",
]


@pytest.fixture
def machine(monkeypatch, tmp_path):
    return fake_machine(monkeypatch, tmp_path)


def by_name(checks: list[doctor.Check]) -> dict[str, doctor.Check]:
    return {c.name: c for c in checks}


def test_checks_cover_everything_in_reading_order(machine):
    assert [c.name for c in doctor.run_checks()] == [
        "python",
        "mims",
        "toolchain dir",
        "toolchain sources",
        "mims home",
        *(f"tool {t}" for t in TOOLS),
        "go",
        "pulumi SDK",
        "pulumi-kubernetes SDK",
        "container runtime",
        "real-node packages",
        "passphrase",
    ]


def test_every_tool_present_and_running_is_ok_and_go_is_not_needed(machine):
    checks = by_name(doctor.run_checks())
    assert [checks[f"tool {t}"].state for t in TOOLS] == ["ok"] * len(TOOLS)
    assert checks["tool kubernetes"].detail == "1.33.13 in kubernetes-1.33.13/, built in 12s"
    assert checks["go"].state == "ok" and "not needed: every tool is installed" in checks["go"].detail
    assert checks["toolchain sources"].detail == "present, download, build"
    assert doctor.blocking_error(list(checks.values())) is None


def test_missing_tool_is_a_warning_when_go_can_build_it(machine):
    fake_go(machine["bin"])
    remove_tool(machine["toolchain"], "kwok")
    checks = doctor.run_checks()
    kwok = by_name(checks)["tool kwok"]
    assert kwok.state == "warn" and not kwok.blocking
    assert kwok.detail == "0.8.0 not installed yet (sigs.k8s.io/kwok@v0.8.0)"
    assert kwok.fix == "`mims toolchain install kwok` downloads it from github.com or builds it"
    assert by_name(checks)["go"].detail == (
        f"go1.26.8 at {machine['bin'] / 'go'} (needed only if kwok cannot be downloaded)"
    )
    assert doctor.blocking_error(checks) is None


def test_missing_tool_without_go_can_still_be_downloaded(machine):
    remove_tool(machine["toolchain"], "etcd")
    checks = by_name(doctor.run_checks())
    etcd, go = checks["tool etcd"], checks["go"]
    assert etcd.state == "warn" and not etcd.blocking
    assert etcd.fix == "`mims toolchain install etcd` downloads it from github.com"
    assert go.state == "warn" and go.detail == "not on PATH (needed only if etcd cannot be downloaded)"
    assert doctor.blocking_error(list(checks.values())) is None


def test_missing_tool_found_on_path_is_a_warning_without_go(machine, monkeypatch):
    monkeypatch.setenv("MIMS_OFFLINE", "1")
    remove_tool(machine["toolchain"], "etcd")
    script(machine["bin"] / "etcd", ["etcd Version: 3.6.16", "Git SHA: abc"])
    etcd = by_name(doctor.run_checks())["tool etcd"]
    assert etcd.state == "warn" and etcd.fix == f"`mims toolchain install etcd` links {machine['bin'] / 'etcd'}"


def test_missing_tool_without_go_blocks_with_exit_4_offline(machine, monkeypatch):
    monkeypatch.setenv("MIMS_OFFLINE", "1")
    remove_tool(machine["toolchain"], "etcd")
    script(machine["bin"] / "etcd", ["etcd Version: 3.6.1"])  # another version: not used
    checks = doctor.run_checks()
    etcd, go = by_name(checks)["tool etcd"], by_name(checks)["go"]
    assert etcd.state == "missing" and etcd.blocking
    assert go.state == "missing" and go.fix == "install Go 1.26 or newer"
    error = doctor.blocking_error(checks)
    assert isinstance(error, ToolchainError) and error.exit_code == 4 and error.tool == "etcd"
    assert str(error) == (
        "etcd is not installed and cannot be installed here (toolchain sources: present, build "
        "(MIMS_OFFLINE=1: no downloads); go: not on PATH (needed to build the missing tools))"
    )


def test_sources_without_build_need_no_go(machine, monkeypatch):
    monkeypatch.setenv("MIMS_TOOLCHAIN_SOURCES", "present")
    remove_tool(machine["toolchain"], "kwok")
    checks = by_name(doctor.run_checks())
    assert checks["go"].state == "ok" and "leave out build" in checks["go"].detail
    assert checks["toolchain sources"].detail == "present (MIMS_TOOLCHAIN_SOURCES=present)"
    assert checks["tool kwok"].blocking and "see the toolchain sources row" in checks["tool kwok"].fix


def test_unknown_source_is_a_missing_row(machine, monkeypatch):
    monkeypatch.setenv("MIMS_TOOLCHAIN_SOURCES", "present,ftp")
    sources = by_name(doctor.run_checks())["toolchain sources"]
    assert sources.state == "missing" and "unknown source ftp" in sources.detail


def test_stale_tool_with_too_old_go_blocks(machine, monkeypatch):
    monkeypatch.setenv("MIMS_TOOLCHAIN_SOURCES", "build")
    fake_go(machine["bin"], "go1.22.1")
    (machine["toolchain"] / "pulumi-3.274.1" / "bin" / "pulumi").unlink()
    checks = by_name(doctor.run_checks())
    assert checks["tool pulumi"].state == "missing" and checks["tool pulumi"].blocking
    assert "stale" in checks["tool pulumi"].detail
    assert checks["go"].state == "missing" and "older than go1.26" in checks["go"].detail


def test_unwritable_toolchain_dir_blocks_a_build(machine, monkeypatch, tmp_path):
    fake_go(machine["bin"])
    (tmp_path / "a-file").write_text("")
    monkeypatch.setenv("MIMS_CACHE_DIR", str(tmp_path / "a-file" / "cache"))
    checks = by_name(doctor.run_checks())
    assert checks["toolchain dir"].state == "missing"
    assert checks["toolchain dir"].detail.endswith("a-file is not a directory")
    assert all(checks[f"tool {t}"].blocking for t in TOOLS)
    assert "see the toolchain dir row" in checks["tool etcd"].fix


def test_tool_that_prints_another_version_is_missing(machine):
    fake_tool(machine["toolchain"], "etcd", prints=["etcd Version: 3.4.23"])
    etcd = by_name(doctor.run_checks())["tool etcd"]
    assert etcd.state == "missing" and not etcd.blocking
    assert "`etcd --version` printed no 'etcd Version: 3.6.16'" in etcd.detail


def test_home_dir_that_cannot_be_created_is_missing(machine, monkeypatch, tmp_path):
    (tmp_path / "a-file").write_text("")
    monkeypatch.setenv("MIMS_HOME", str(tmp_path / "a-file" / "home"))
    home = by_name(doctor.run_checks())["mims home"]
    assert home.state == "missing" and home.fix == "set MIMS_HOME"


def test_home_dir_to_be_created_is_ok(machine):
    home = by_name(doctor.run_checks())["mims home"]
    assert home.state == "ok"
    assert home.detail == f"{machine['home']}: will be created (in {machine['home'].parent})"


def fake_versions(monkeypatch, **versions):
    def version(name):
        if name not in versions:
            raise doctor.importlib.metadata.PackageNotFoundError(name)
        return versions[name]

    monkeypatch.setattr(doctor.importlib.metadata, "version", version)


def test_provider_sdk_must_equal_the_plugin_version(machine, monkeypatch):
    fake_versions(monkeypatch, **{"pulumi": "3.272.0", "pulumi-kubernetes": "4.24.0"})
    sdk = by_name(doctor.run_checks())["pulumi-kubernetes SDK"]
    assert sdk.state == "warn" and "asks for v4.24.0" in sdk.detail
    assert sdk.fix == "pip install pulumi-kubernetes==4.25.0"


def test_installed_sdks_match_the_toolchain(machine):
    checks = by_name(doctor.run_checks())
    assert checks["pulumi SDK"].state == "ok" and checks["pulumi-kubernetes SDK"].state == "ok"
    assert checks["pulumi-kubernetes SDK"].detail == "4.25.0 (equals plugin kubernetes v4.25.0)"


def test_pulumi_sdk_newer_than_the_cli_warns(machine, monkeypatch):
    fake_versions(monkeypatch, **{"pulumi": "3.300.0", "pulumi-kubernetes": "4.25.0"})
    assert by_name(doctor.run_checks())["pulumi SDK"].state == "warn"


def test_sdk_not_installed_is_missing(machine, monkeypatch):
    fake_versions(monkeypatch, pulumi="3.272.0")
    sdk = by_name(doctor.run_checks())["pulumi-kubernetes SDK"]
    assert (sdk.state, sdk.detail) == ("missing", "not installed")


def test_container_runtime_found_on_path(machine):
    script(machine["bin"] / "podman", ["5.4.2"])
    runtime = by_name(doctor.run_checks())["container runtime"]
    assert runtime.state == "ok" and runtime.detail == f"podman 5.4.2 at {machine['bin'] / 'podman'}"


def test_container_runtime_without_its_engine_is_a_warning(machine):
    cli = machine["bin"] / "docker"
    cli.write_text("#!/bin/sh\necho 'Cannot connect to the Docker daemon' >&2\nexit 1\n")
    cli.chmod(0o755)
    runtime = by_name(doctor.run_checks())["container runtime"]
    assert runtime.state == "warn" and "does not answer" in runtime.detail


def test_no_container_runtime_is_a_warning(machine):
    runtime = by_name(doctor.run_checks())["container runtime"]
    assert runtime.state == "warn" and "needed only for kind clusters" in runtime.detail


def test_missing_real_node_packages_are_a_warning_with_the_install_command(machine, monkeypatch, tmp_path):
    monkeypatch.setattr(node, "CNI_BIN", tmp_path / "no-cni")
    check = by_name(doctor.run_checks())["real-node packages"]
    assert check.state == "warn" and "containerd" in check.detail and "containernetworking-plugins" in check.detail
    assert check.fix.startswith("apt-get install -y --no-install-recommends containerd runc")


def test_real_node_packages_present(machine, monkeypatch, tmp_path):
    for program in node.PACKAGES:
        script(machine["bin"] / program, ["1"])
    monkeypatch.setattr(node, "CNI_BIN", tmp_path / "cni")
    (tmp_path / "cni").mkdir()
    for plugin in node.CNI_PLUGINS:
        (tmp_path / "cni" / plugin).touch()
    assert by_name(doctor.run_checks())["real-node packages"].state == "ok"


def test_passphrase_from_the_environment_is_not_shown(machine, monkeypatch):
    monkeypatch.setenv("MIMS_PASSPHRASE", "correct-horse-battery")
    checks = doctor.run_checks()
    assert by_name(checks)["passphrase"].detail == "from MIMS_PASSPHRASE"
    assert not any("correct-horse" in str(c.as_dict()) for c in checks)


def test_passphrase_from_the_state_file(machine):
    path = machine["home"] / "state" / "passphrase"
    path.parent.mkdir(parents=True)
    path.write_text("s3cret-value\n")
    path.chmod(0o600)
    passphrase = by_name(doctor.run_checks())["passphrase"]
    assert (passphrase.state, passphrase.detail) == ("ok", f"from {path}")


def test_passphrase_file_readable_by_others_warns(machine):
    path = machine["home"] / "state" / "passphrase"
    path.parent.mkdir(parents=True)
    path.write_text("s3cret-value\n")
    path.chmod(0o644)
    passphrase = by_name(doctor.run_checks())["passphrase"]
    assert passphrase.state == "warn" and passphrase.fix == f"chmod 600 {path}"
    assert "s3cret" not in passphrase.detail


def test_passphrase_will_be_created(machine):
    passphrase = by_name(doctor.run_checks())["passphrase"]
    assert passphrase.state == "ok" and passphrase.detail.startswith("will be created on first use in ")


def test_python_older_than_3_11_is_missing(monkeypatch):
    monkeypatch.setattr(doctor.sys, "version_info", (3, 10, 14, "final", 0))
    check = doctor.python_check()
    assert check.state == "missing" and check.detail.startswith("3.10.14 at ")
