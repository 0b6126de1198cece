"""Whether a binary is the tool at its version, whatever the source (found, downloaded, built): the
tool's `check` of tools.yaml must find the version in its output as a whole version (`v1.33.13` is not
`v1.33.13-dirty`); a provider plugin, which has no version flag, is started and asked its version over
its gRPC interface (GetPluginInfo)."""

from __future__ import annotations

import os
import re
import select
import signal
import subprocess
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

from mims.toolchain.recipes import Tool
from mims.toolchain.sources import Unavailable

CHECK_TIMEOUT = 60  # seconds for a version check
PLUGIN_TIMEOUT = 20  # seconds for a plugin to print its port and answer GetPluginInfo


def printed(expect: str, text: str) -> bool:
    """`expect` occurs in `text` as a whole version: not followed by more version characters
    (`v1.33.13-dirty`, `3.6.160`) nor preceded by a digit or dot (`10.8.0` for `0.8.0`)."""
    return re.search(r"(?<![0-9.])" + re.escape(expect) + r"(?![0-9A-Za-z.+-])", text) is not None


def check_env(scratch: str) -> dict[str, str]:
    """The environment checks run in: Pulumi gets a throw-away PULUMI_HOME (it writes a log even for
    `pulumi version`), no update check and no plugin downloads."""
    return {
        **os.environ,
        "PULUMI_HOME": scratch,
        "PULUMI_SKIP_UPDATE_CHECK": "true",
        "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
    }


def verify_binary(tool: Tool, binary: str, path: Path, env: Mapping[str, str]) -> str:
    """The reason `path` is not `binary` at the tool's version, or '' (also when nothing can tell)."""
    check = tool.check.get(binary)
    if check is not None:
        args = [tool.expand(a) for a in check.args]
        expect = tool.expand(check.expect)
        shown = " ".join([binary, *args])
        try:
            proc = subprocess.run(
                [str(path), *args],
                capture_output=True,
                text=True,
                errors="replace",
                env=dict(env),
                timeout=CHECK_TIMEOUT,
                check=False,
                stdin=subprocess.DEVNULL,
            )
        except (OSError, subprocess.SubprocessError) as exc:
            return f"`{shown}` did not run: {exc}"
        text = proc.stdout + proc.stderr
        if not printed(expect, text):
            return f"`{shown}` printed {_first_line(text)!r}, not {expect!r}"
        return ""
    if tool.plugin is not None and tool.plugin.binary == binary:
        try:
            version = plugin_version(path, env)
        except Unavailable as exc:
            return str(exc)
        if version.removeprefix("v") != tool.version:
            return f"the plugin says it is version {version!r}, not {tool.version!r}"
    return ""


def verify(tool: Tool, binaries: Mapping[str, Path]) -> str:
    """The first failure of the tool's checks over `binaries`, or ''."""
    with tempfile.TemporaryDirectory(prefix="mims-check-") as scratch:
        env = check_env(scratch)
        for binary, path in binaries.items():
            failure = verify_binary(tool, binary, path, env)
            if failure:
                return failure
    return ""


def plugin_version(path: Path, env: Mapping[str, str]) -> str:
    """Starts a Pulumi resource provider as the engine does (it prints the port it serves gRPC on) and
    asks it GetPluginInfo; stops it with SIGINT, as the engine does."""
    try:
        import grpc
        from google.protobuf import empty_pb2
        from pulumi.runtime.proto import provider_pb2_grpc
    except ImportError as exc:  # the Pulumi SDK mims depends on brings both
        raise Unavailable(f"cannot ask {path.name} its version: {exc}") from exc
    try:
        proc = subprocess.Popen(
            [str(path)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=dict(env),
            start_new_session=True,
        )
    except OSError as exc:
        raise Unavailable(f"{path} did not start: {exc}") from exc
    try:
        line = _read_line(proc, str(path), PLUGIN_TIMEOUT)
        if not line.strip().isdigit():
            raise Unavailable(f"{path} printed {line.strip()[:80]!r}, not the port of a Pulumi plugin")
        with grpc.insecure_channel(f"127.0.0.1:{line.strip()}") as channel:
            stub = provider_pb2_grpc.ResourceProviderStub(channel)
            return str(stub.GetPluginInfo(empty_pb2.Empty(), timeout=PLUGIN_TIMEOUT).version)
    except grpc.RpcError as exc:
        raise Unavailable(f"{path} did not answer GetPluginInfo: {exc.code().name}") from exc
    finally:
        _stop(proc)


def _read_line(proc: subprocess.Popen, program: str, timeout: float) -> str:
    assert proc.stdout is not None
    fd, data, deadline = proc.stdout.fileno(), b"", time.monotonic() + timeout
    while b"\n" not in data:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            raise Unavailable(f"{program} printed no port within {timeout:.0f}s")
        chunk = os.read(fd, 256)
        if not chunk:
            raise Unavailable(f"{program} exited (status {proc.wait()}) before printing its port")
        data += chunk
    return data.split(b"\n", 1)[0].decode(errors="replace")


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    if proc.stdout is not None:
        proc.stdout.close()


def _first_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[0][:100] if lines else ""
