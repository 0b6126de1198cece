"""The `build` source: `go` builds a tool from the Go module proxy, as its tools.yaml recipe says (the
comment at the top of tools.yaml explains the two kinds). Every build runs with CGO_ENABLED=0,
GOTOOLCHAIN=local (go never downloads a Go), -trimpath and -buildvcs=false; its whole output goes to
`.logs/<name>-<version>.log` and its last lines into the error when a step fails."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from mims.errors import ToolchainError
from mims.toolchain.checks import CHECK_TIMEOUT, check_env, printed
from mims.toolchain.layout import new_manifest, put_in_place, staging
from mims.toolchain.recipes import Tool
from mims.toolchain.sources import Say, offline

TAIL_LINES = 25


@dataclass
class Go:
    """The `go` on PATH, once checked to be new enough."""

    path: str
    version: str  # e.g. "go1.26.8"

    @classmethod
    def find(cls, minimum: str, tool: Tool) -> Go:
        path = shutil.which("go")
        if path is None:
            raise ToolchainError(
                f"cannot build {tool.name} {tool.version}: `go` is not on PATH "
                f"(mims builds its tools from the Go module proxy; install Go {minimum or ''} or newer)",
                tool=tool.name,
            )
        try:
            out = subprocess.run(
                [path, "env", "GOVERSION"], capture_output=True, text=True, check=True, env=_go_env(), timeout=60
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError) as exc:
            raise ToolchainError(
                f"cannot build {tool.name}: `go env GOVERSION` failed: {exc}",
                tool=tool.name,
                command=[path, "env", "GOVERSION"],
            ) from exc
        if minimum and _version_tuple(out) < _version_tuple(minimum):
            raise ToolchainError(
                f"cannot build {tool.name} {tool.version}: {out} is older than the go{minimum} the "
                f"toolchain needs (GOTOOLCHAIN=local: mims does not download Go itself)",
                tool=tool.name,
            )
        return cls(path, out)


def _version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(n) for n in re.findall(r"\d+", text)[:3])


def _go_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "CGO_ENABLED": "0",
            "GOTOOLCHAIN": "local",  # never download a Go toolchain
            "GOWORK": "off",
            "GOFLAGS": "-buildvcs=false",  # the user's GOFLAGS (say -mod=vendor) must not leak in
        }
    )
    if offline():
        env["GOPROXY"] = "off"  # only what Go's module cache holds
    env.update(extra or {})
    return env


def _tail(text: str) -> str:
    return "\n".join(text.rstrip("\n").splitlines()[-TAIL_LINES:])


class _Runner:
    """Runs the build's commands, logging all output and keeping its tail for error messages."""

    def __init__(self, tool: Tool, log_path: Path) -> None:
        self.tool = tool
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self.log_path = log_path
        self.log = log_path.open("w")

    def close(self) -> None:
        self.log.close()

    def run(self, cmd: list[str], cwd: Path, env: Mapping[str, str], timeout: float | None = None) -> str:
        self.log.write(f"$ (cd {cwd} && {shlex.join(cmd)})\n")
        self.log.flush()
        if timeout is None:  # builds: stream into the log so it can be followed
            try:
                proc = subprocess.Popen(
                    cmd,
                    cwd=cwd,
                    env=dict(env),
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    text=True,
                    errors="replace",
                )
            except OSError as exc:
                raise self.error(cmd, f"cannot run it: {exc}", "") from exc
            assert proc.stdout is not None
            chunks = []
            for line in proc.stdout:
                self.log.write(line)
                self.log.flush()
                chunks.append(line)
            text = "".join(chunks)
            if proc.wait() != 0:
                raise self.error(cmd, f"exited with status {proc.returncode}", _tail(text))
            return text
        try:
            done = subprocess.run(
                cmd,
                cwd=cwd,
                env=dict(env),
                stdout=subprocess.PIPE,
                check=False,
                stderr=subprocess.STDOUT,
                text=True,
                errors="replace",
                timeout=timeout,
            )
        except subprocess.TimeoutExpired as exc:
            out = exc.output if isinstance(exc.output, str) else (exc.output or b"").decode(errors="replace")
            self.log.write(out)
            raise self.error(cmd, f"did not finish within {timeout:.0f}s", _tail(out)) from exc
        except OSError as exc:
            raise self.error(cmd, f"cannot run it: {exc}", "") from exc
        self.log.write(done.stdout)
        self.log.flush()
        if done.returncode != 0:
            raise self.error(cmd, f"exited with status {done.returncode}", _tail(done.stdout))
        return done.stdout

    def error(self, cmd: list[str], what: str, tail: str) -> ToolchainError:
        message = f"building {self.tool.name} {self.tool.version} failed: `{shlex.join(cmd)}` {what}"
        if tail:
            message += "\n" + "\n".join("  " + line for line in tail.splitlines())
        message += f"\n(full log: {self.log_path})"
        return ToolchainError(message, tool=self.tool.name, command=cmd, output_tail=tail)


def build(tool: Tool, root: Path, go: Go, say: Say) -> None:
    """Builds the tool with `go`, copies its data files out of the module, runs its checks and puts it
    in place; ToolchainError naming the failed command, its last lines and the log."""
    runner = _Runner(tool, root / ".logs" / f"{tool.dir_name}.log")
    started = time.monotonic()
    try:
        with staging(tool, root) as (work, out):
            say(f"downloading {tool.module}@{tool.module_version}")
            module_dir = _download_module(tool, go, runner, work)
            if tool.recipe == "main-module":
                src = work / "src"
                say("preparing a writable copy of the module")
                _copy_writable(module_dir, src)
                _edit_go_mod(tool, go, runner, src)
                for step in tool.generate:
                    say(f"generating: {' '.join(step.run)} in {step.dir}")
                    env = _go_env(
                        {"GOFLAGS": "-mod=mod -buildvcs=false", **{k: tool.expand(v) for k, v in step.env.items()}}
                    )
                    runner.run([tool.expand(a) for a in step.run], src / step.dir, env)
                for binary, package in tool.binaries.items():
                    say(f"building {binary} (go build {package})")
                    runner.run(
                        _go_build_cmd(tool, go, ["build", "-mod=mod", "-o", str(out / "bin" / binary)], package),
                        src,
                        _go_env(),
                    )
            else:
                for binary, package in tool.binaries.items():
                    target = f"{_join(tool.module, package)}@{tool.module_version}"
                    say(f"building {binary} (go install {target})")
                    gobin = work / "gobin"
                    gobin.mkdir(exist_ok=True)
                    runner.run(_go_build_cmd(tool, go, ["install"], target), work, _go_env({"GOBIN": str(gobin)}))
                    produced = list(gobin.iterdir())
                    if len(produced) != 1:
                        raise runner.error(["go", "install", target], f"left {len(produced)} files in GOBIN", "")
                    produced[0].rename(out / "bin" / binary)
            for dest, source in tool.files.items():
                src_file = module_dir / source
                if not src_file.is_file():
                    raise runner.error(
                        ["copy", source], f"failed: {source} is not in {tool.module}@{tool.module_version}", ""
                    )
                (out / dest).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(src_file, out / dest)
            for binary, check in tool.check.items():
                say(f"checking {binary} {' '.join(check.args)}")
                expect = tool.expand(check.expect)
                text = runner.run(
                    [str(out / "bin" / binary), *[tool.expand(a) for a in check.args]],
                    work,
                    check_env(str(work / "pulumi-home")),
                    timeout=CHECK_TIMEOUT,
                )
                if not printed(expect, text):
                    raise runner.error([binary, *check.args], f"printed no {expect!r}", text.strip()[-2000:])
            seconds = round(time.monotonic() - started, 1)
            manifest = new_manifest(tool, out, "build", go=go.version, build_seconds=seconds)
            put_in_place(tool, root, out, work, manifest)
        say(f"built {tool.name} {tool.version} in {seconds:.0f}s")
    finally:
        runner.close()


def _join(module: str, package: str) -> str:
    package = package.strip()
    if package in (".", "./", ""):
        return module
    return f"{module}/{package.removeprefix('./')}"


def _go_build_cmd(tool: Tool, go: Go, verb: list[str], target: str) -> list[str]:
    cmd = [go.path, *verb, "-trimpath", "-buildvcs=false"]
    if tool.tags:
        cmd += ["-tags", ",".join(tool.tags)]
    if tool.ldflags:
        cmd += ["-ldflags", tool.expand(tool.ldflags)]
    return [*cmd, target]


def _download_module(tool: Tool, go: Go, runner: _Runner, work: Path) -> Path:
    cmd = [go.path, "mod", "download", "-json", f"{tool.module}@{tool.module_version}"]
    try:
        text = runner.run(cmd, work, _go_env())
    except ToolchainError as exc:
        # `go mod download -json` reports the reason as JSON on stdout; show that, not the braces.
        reason = _json_error(exc.output_tail)
        if reason:
            raise runner.error(cmd, "failed", reason) from exc
        raise
    info = json.loads(text[text.index("{") :])
    if info.get("Error"):
        raise runner.error(cmd, "failed", info["Error"])
    return Path(info["Dir"])


def _json_error(text: str) -> str:
    match = re.search(r'"Error":\s*"((?:[^"\\]|\\.)*)"', text)
    return json.loads(f'"{match.group(1)}"') if match else ""


def _copy_writable(source: Path, dest: Path) -> None:
    shutil.copytree(source, dest, symlinks=True)
    for dirpath, _dirnames, filenames in os.walk(dest):
        os.chmod(dirpath, 0o755)
        for name in filenames:
            path = os.path.join(dirpath, name)
            if not os.path.islink(path):
                os.chmod(path, 0o644 | (os.stat(path).st_mode & 0o111))


def _edit_go_mod(tool: Tool, go: Go, runner: _Runner, src: Path) -> None:
    """Drops replace lines that point at local paths (siblings absent from the module zip); a module
    required through one is required at its published version instead."""
    mod = json.loads(runner.run([go.path, "mod", "edit", "-json"], src, _go_env()))
    required = {r["Path"] for r in mod.get("Require") or []}
    args = []
    for rep in mod.get("Replace") or []:
        old, new = rep["Old"], rep["New"]
        if new.get("Version"):  # module => module@version: go install's refusal aside, it is fine here
            continue
        args.append("-dropreplace=" + old["Path"] + (f"@{old['Version']}" if old.get("Version") else ""))
        if old["Path"] in required:
            version = tool.published_version(old["Path"])
            if not version:
                raise ToolchainError(
                    f"building {tool.name} {tool.version} failed: {tool.module} replaces {old['Path']} "
                    f"with the local path {new['Path']}, and tools.yaml gives no published version for it "
                    f"(local_replaces)",
                    tool=tool.name,
                )
            args.append(f"-require={old['Path']}@{version}")
    if args:
        runner.run([go.path, "mod", "edit", *args], src, _go_env())
