"""Where the data folders (charts, layers, blueprints, prices) live: inside the wheel, or in a checkout."""

from __future__ import annotations

import os
from pathlib import Path


def data_root() -> Path:
    override = os.environ.get("MIMS_DATA_DIR")
    if override:
        return Path(override)
    return _installed_root()


def _installed_root() -> Path:
    packaged = Path(__file__).parent / "_data"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[2]


def charts_dir() -> Path:
    return data_root() / "charts"


def layers_dir() -> Path:
    return data_root() / "layers"


def blueprints_dir() -> Path:
    return data_root() / "blueprints"


def pipelines_dir() -> Path:
    """The CI pipeline templates `mims ci init` writes from; the installed ones when a MIMS_DATA_DIR
    folder has none."""
    chosen = data_root() / "pipelines"
    return chosen if chosen.is_dir() else _installed_root() / "pipelines"


def prices_dir() -> Path:
    """Price sheets, one YAML file per hosting option (`mims cost`); the installed ones when a
    MIMS_DATA_DIR folder has none."""
    chosen = data_root() / "prices"
    return chosen if chosen.is_dir() else _installed_root() / "prices"


def cache_dir() -> Path:
    """Per-user cache (compiled templates, later the toolchain): MIMS_CACHE_DIR or ~/.cache/mims."""
    override = os.environ.get("MIMS_CACHE_DIR")
    if override:
        return Path(override)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "mims"


def home_dir() -> Path:
    """Per-user state that must survive (Pulumi state, passphrase, simulated clusters): MIMS_HOME or ~/.mims."""
    override = os.environ.get("MIMS_HOME")
    return Path(override) if override else Path.home() / ".mims"


def clusters_dir() -> Path:
    """One folder per simulated cluster (its PKI, kubeconfig, data, logs and process ids)."""
    return home_dir() / "clusters"
