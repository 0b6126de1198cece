"""`python -m tests.images`: build test images, list recipes, check an archive."""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

from mims.errors import InvalidInput
from tests.images.build import archive_path, build
from tests.images.oci import InvalidArchive, inspect_archive
from tests.images.recipe import load_recipe, recipe_names
from tests.images.rootfs import BuildError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.images", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    build_cmd = commands.add_parser("build", help="build images (cached) and optionally copy them to a folder")
    build_cmd.add_argument("names", nargs="+", metavar="NAME", help=f"recipes: {', '.join(recipe_names())}, or all")
    build_cmd.add_argument("--out", type=Path, help="copy each archive here as NAME.tar")
    commands.add_parser("list", help="recipes, the upstream image each stands in for, and its archive if built")
    inspect_cmd = commands.add_parser("inspect", help="check an archive's digests and print its name and config")
    inspect_cmd.add_argument("archive", type=Path)
    args = parser.parse_args(argv)
    try:
        if args.command == "list":
            for name in recipe_names():
                path = archive_path(name)
                print(f"{name}\t{load_recipe(name).image}\t{path if path.is_file() else '(not built)'}")
        elif args.command == "inspect":
            archive = inspect_archive(args.archive)
            print(archive.name)
            print(archive.config["config"])
        else:
            names = recipe_names() if args.names == ["all"] else args.names
            for name in names:
                started = time.monotonic()
                path = build(name)
                print(f"{name}\t{path}\t{path.stat().st_size / 2**20:.1f} MiB\t{time.monotonic() - started:.0f} s")
                if args.out:
                    args.out.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(path, args.out / f"{name}.tar")
    except (InvalidInput, BuildError, InvalidArchive) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
