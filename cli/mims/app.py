"""The `mims` command line. Commands live in `mims.commands`, one module per noun; this module maps
failures to exit codes in one place."""

from __future__ import annotations

import sys

import typer

try:  # later typer releases vendor click; up to 0.2x it used the click package. Vendored first:
    # with both installed (another package may need click), typer raises its own.
    from typer._click import ClickException
except ImportError:
    from click import ClickException  # type: ignore[assignment]

from mims import __version__
from mims.commands import backup as backup_commands
from mims.commands import blueprint as blueprint_commands
from mims.commands import ci as ci_commands
from mims.commands import cluster as cluster_commands
from mims.commands import cost as cost_commands
from mims.commands import doctor as doctor_commands
from mims.commands import images as images_commands
from mims.commands import platform as platform_commands
from mims.commands import render as render_commands
from mims.commands import schema as schema_commands
from mims.commands import toolchain as toolchain_commands
from mims.commands import verify as verify_commands
from mims.console import err
from mims.errors import InvalidInput, MimsError

app = typer.Typer(
    name="mims",
    help="Provision an OASC MIMs city data platform on Kubernetes from one blueprint.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
blueprint_commands.register(app)
render_commands.register(app)
images_commands.register(app)
platform_commands.register(app)
cost_commands.register(app)
schema_commands.register(app)
cluster_commands.register(app)
toolchain_commands.register(app)
verify_commands.register(app)
backup_commands.register(app)
ci_commands.register(app)
doctor_commands.register(app)


def _version(value: bool) -> None:
    if value:
        print(f"mims {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    pass


def main() -> None:
    try:
        code = app(standalone_mode=False)
        sys.exit(code if isinstance(code, int) else 0)
    except MimsError as exc:
        report(exc)
        sys.exit(exc.exit_code)
    except typer.Abort:
        err.print("aborted", style="red")
        sys.exit(130)
    except KeyboardInterrupt:
        err.print("interrupted", style="red")
        sys.exit(130)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except ClickException as exc:  # usage errors surface here in non-standalone mode
        exc.show()
        sys.exit(exc.exit_code)


def report(exc: MimsError) -> None:
    if isinstance(exc, InvalidInput):
        for problem in exc.problems:
            err.print(f"error: {problem}", markup=False)
        count = len(exc.problems)
        err.print(f"{count} problem{'s' if count != 1 else ''} found", style="red")
    else:
        err.print(f"error: {exc}", markup=False)
