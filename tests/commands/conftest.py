from __future__ import annotations

import sys

import pytest

from mims.app import main


@pytest.fixture
def cli(monkeypatch, capsys):
    """Run `mims ARGS` through the real entry point; return (exit code, stdout, stderr)."""

    def run(*args: str) -> tuple[int, str, str]:
        monkeypatch.setattr(sys, "argv", ["mims", *map(str, args)])
        with pytest.raises(SystemExit) as exit_info:
            main()
        captured = capsys.readouterr()
        return exit_info.value.code, captured.out, captured.err

    return run
