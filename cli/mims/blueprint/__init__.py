"""The blueprint: a city's declarative description of its platform."""

from mims.blueprint.loader import LoadedBlueprint, load_blueprint
from mims.blueprint.model import Blueprint

__all__ = ["Blueprint", "LoadedBlueprint", "load_blueprint"]
