"""Static collections of MIM7 Places: GeoJSON files the city keeps next to its blueprint, checked
before anything is rendered (every problem of every file at once, as file:line:column) and packed
for the server. Checked: the JSON, the GeoJSON structure (RFC 7946: a FeatureCollection of Features
with a geometry and properties), each geometry's validity (GEOS, through shapely), the declared EPSG
code (PROJ's registry, through pyproj) and that the data lies where that CRS is used (coordinates
in another CRS than the one declared land far outside it), ids unique, and the size limits."""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import math
from dataclasses import dataclass
from typing import Any

import shapely
from pyproj import CRS, Transformer
from pyproj.exceptions import CRSError
from shapely.geometry import shape

from mims.blueprint.loader import LoadedBlueprint
from mims.blueprint.model import PlacesCollection
from mims.errors import InvalidInput, Problem
from mims.places.jsonpositions import position_of

MAX_FILE_BYTES = 32 * 1024 * 1024
# The packed file travels in a ConfigMap, whose data the API server caps at 1 MiB.
MAX_PACKED_BYTES = 900 * 1024
MAX_FEATURES = 100_000
MAX_PROBLEMS_PER_FILE = 20
GEOMETRY_TYPES = (
    "Point",
    "MultiPoint",
    "LineString",
    "MultiLineString",
    "Polygon",
    "MultiPolygon",
    "GeometryCollection",
)
# Degrees the data may reach beyond the CRS's area of use (projections are used a little past
# their zone's edge); coordinates in another CRS than the declared one land much farther away.
AREA_MARGIN_DEG = 2.0
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"


@dataclass(frozen=True)
class StaticCollection:
    """A declared collection whose file passed every check."""

    declared: PlacesCollection
    features: int
    bbox_crs84: tuple[float, float, float, float]  # west, south, east, north in longitude/latitude
    properties: tuple[str, ...]  # every property name some feature has, sorted
    geometry_types: tuple[str, ...]
    packed: bytes  # the GeoJSON, compact and gzip-compressed (reproducibly: no time stamp)
    sha256: str  # of the packed bytes: a changed file rolls the server

    @property
    def storage_crs(self) -> str:
        """The CRS of the file as OGC URI; GeoJSON's EPSG:4326 is longitude/latitude, i.e. CRS84."""
        code = self.declared.crs
        return CRS84 if code == 4326 else f"http://www.opengis.net/def/crs/EPSG/0/{code}"

    @property
    def file_name(self) -> str:
        return f"{self.declared.id}.geojson"

    def chart_input(self) -> dict[str, Any]:
        """What the places chart renders from (charts/pygeoapi)."""
        return {
            **self.declared.model_dump(exclude={"file"}),
            "file": self.file_name,
            "storage_crs": self.storage_crs,
            "features": self.features,
            "bbox": list(self.bbox_crs84),
            "properties": list(self.properties),
            "packed": base64.b64encode(self.packed).decode("ascii"),
            "sha256": self.sha256,
        }


def load_collections(loaded: LoadedBlueprint) -> list[StaticCollection]:
    """Every declared collection, checked; InvalidInput with every problem found otherwise."""
    places = loaded.blueprint.components.places
    problems: list[Problem] = []
    collections = []
    for index, declared in enumerate(places.options.collections):
        field = ("components", "places", "options", "collections", index)
        try:
            collections.append(_load(loaded, field, declared))
        except InvalidInput as invalid:
            problems += invalid.problems
    if problems:
        raise InvalidInput(problems)
    return collections


def _load(loaded: LoadedBlueprint, field: tuple, declared: PlacesCollection) -> StaticCollection:
    crs = _declared_crs(loaded, field, declared)
    path = loaded.base_dir / declared.file
    display = str(path)
    if path.suffix.lower() not in (".geojson", ".json"):
        raise InvalidInput(
            [loaded.source.problem((*field, "file"), "a static collection is a GeoJSON file (`.geojson` or `.json`)")]
        )
    try:
        size = path.stat().st_size
    except OSError:
        raise InvalidInput([loaded.source.problem((*field, "file"), f"file `{path}` does not exist")]) from None
    if size > MAX_FILE_BYTES:
        raise InvalidInput([Problem(display, None, None, "", f"larger than {MAX_FILE_BYTES // 2**20} MiB")])
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
        document = json.loads(text)
    except UnicodeDecodeError as exc:
        raise InvalidInput([Problem(display, None, None, "", f"not UTF-8 text (byte {exc.start})")]) from None
    except json.JSONDecodeError as exc:
        raise InvalidInput([Problem(display, exc.lineno, exc.colno, "", f"invalid JSON: {exc.msg}")]) from None
    checked = _check_document(document, declared)
    if checked.problems:
        raise InvalidInput(
            [
                Problem(display, *_line_column(text, position_of(text, path_)), _dotted(path_), message)
                for path_, message in checked.problems[:MAX_PROBLEMS_PER_FILE]
            ]
        )
    bbox = _bbox_crs84(checked.bounds, crs)
    _check_area(loaded, field, declared, crs, bbox)
    packed = gzip.compress(json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode(), mtime=0)
    if len(packed) > MAX_PACKED_BYTES:
        raise InvalidInput(
            [
                Problem(
                    display,
                    None,
                    None,
                    "",
                    f"compressed to {len(packed) // 1024} KiB, more than the {MAX_PACKED_BYTES // 1024} KiB a "
                    "collection may have (it travels in a ConfigMap): split it, or simplify its geometries",
                )
            ]
        )
    return StaticCollection(
        declared=declared,
        features=len(document["features"]),
        bbox_crs84=bbox,
        properties=tuple(sorted(checked.properties)),
        geometry_types=tuple(sorted(checked.geometry_types)),
        packed=packed,
        sha256=hashlib.sha256(packed).hexdigest(),
    )


def _declared_crs(loaded: LoadedBlueprint, field: tuple, declared: PlacesCollection) -> CRS:
    try:
        return CRS.from_epsg(declared.crs)
    except CRSError:
        raise InvalidInput(
            [loaded.source.problem((*field, "crs"), f"EPSG:{declared.crs} is not in the EPSG registry; check the code")]
        ) from None


@dataclass
class _Checked:
    problems: list[tuple[tuple, str]]
    properties: set[str]
    geometry_types: set[str]
    bounds: list[float]  # minx, miny, maxx, maxy in the file's CRS


def _check_document(document: Any, declared: PlacesCollection) -> _Checked:
    checked = _Checked([], set(), set(), [math.inf, math.inf, -math.inf, -math.inf])
    if not isinstance(document, dict) or document.get("type") != "FeatureCollection":
        checked.problems.append(
            ((), 'expected a GeoJSON FeatureCollection: {"type": "FeatureCollection", "features": [...]}')
        )
        return checked
    features = document.get("features")
    if not isinstance(features, list) or not features:
        checked.problems.append((("features",), "a FeatureCollection needs a non-empty `features` list"))
        return checked
    if len(features) > MAX_FEATURES:
        checked.problems.append((("features",), f"more than {MAX_FEATURES} features"))
        return checked
    seen_ids: dict[str, int] = {}
    for index, feature in enumerate(features):
        where = ("features", index)
        if not isinstance(feature, dict) or feature.get("type") != "Feature":
            checked.problems.append(
                (where, 'expected a Feature: {"type": "Feature", "geometry": ..., "properties": ...}')
            )
            continue
        properties = feature.get("properties")
        if not isinstance(properties, dict):
            checked.problems.append(((*where, "properties"), "a feature needs a `properties` object"))
            continue
        checked.properties |= set(properties)
        feature_id = _feature_id(feature, declared)
        if feature_id is None:
            what = f"property `{declared.id_property}`" if declared.id_property else "`id`"
            checked.problems.append((where, f"a feature needs an {what} (a string or a number) to be found by"))
        elif str(feature_id) in seen_ids:
            checked.problems.append((where, f"id `{feature_id}` is also the id of feature {seen_ids[str(feature_id)]}"))
        else:
            seen_ids[str(feature_id)] = index
        message = _geometry_problem(feature.get("geometry"), checked)
        if message:
            checked.problems.append(((*where, "geometry"), message))
    return checked


def _feature_id(feature: dict, declared: PlacesCollection) -> str | int | None:
    value = feature.get("properties", {}).get(declared.id_property) if declared.id_property else feature.get("id")
    return value if isinstance(value, str | int) and not isinstance(value, bool) and str(value) else None


def _geometry_problem(geometry: Any, checked: _Checked) -> str | None:
    if not isinstance(geometry, dict) or geometry.get("type") not in GEOMETRY_TYPES:
        return f"a feature needs a geometry, one of {', '.join(GEOMETRY_TYPES)}"
    try:
        parsed = shape(geometry)
    except (ValueError, TypeError, AttributeError, IndexError, KeyError, shapely.errors.GEOSException) as exc:
        return f"not a valid {geometry['type']}: {exc or 'malformed coordinates'}"
    if parsed.is_empty:
        return f"the {geometry['type']} has no coordinates"
    if not all(math.isfinite(c) for c in parsed.bounds):
        return "coordinates must be finite numbers"
    if not parsed.is_valid:
        return f"invalid {geometry['type']}: {shapely.is_valid_reason(parsed)}"
    checked.geometry_types.add(geometry["type"])
    minx, miny, maxx, maxy = parsed.bounds
    bounds = checked.bounds
    bounds[:] = [min(bounds[0], minx), min(bounds[1], miny), max(bounds[2], maxx), max(bounds[3], maxy)]
    return None


def _bbox_crs84(bounds: list[float], crs: CRS) -> tuple[float, float, float, float]:
    if crs.to_epsg() == 4326:
        west, south, east, north = bounds
    else:
        to_lonlat = Transformer.from_crs(crs, CRS.from_epsg(4326), always_xy=True)
        minx, miny, maxx, maxy = bounds
        west, south, east, north = to_lonlat.transform_bounds(minx, miny, maxx, maxy)
    return (round(west, 7), round(south, 7), round(east, 7), round(north, 7))


def _check_area(
    loaded: LoadedBlueprint, field: tuple, declared: PlacesCollection, crs: CRS, bbox: tuple[float, ...]
) -> None:
    west, south, east, north = bbox
    area = crs.area_of_use
    finite = all(math.isfinite(v) for v in bbox)
    inside = (
        finite
        and -180 <= west <= east <= 180
        and -90 <= south <= north <= 90
        and (
            area is None
            or (
                west >= area.west - AREA_MARGIN_DEG
                and east <= area.east + AREA_MARGIN_DEG
                and south >= area.south - AREA_MARGIN_DEG
                and north <= area.north + AREA_MARGIN_DEG
            )
        )
    )
    if not inside:
        where = f"{west:g}, {south:g}, {east:g}, {north:g}" if finite else "no valid longitude/latitude"
        used = f" ({area.name}: {area.west:g}, {area.south:g}, {area.east:g}, {area.north:g})" if area else ""
        raise InvalidInput(
            [
                loaded.source.problem(
                    (*field, "crs"),
                    f"the data of `{declared.file}` read as EPSG:{declared.crs} lies at {where} (longitude/latitude), "
                    f"outside where that CRS is used{used}: declare the CRS its coordinates are in",
                )
            ]
        )


def _line_column(text: str, offset: int) -> tuple[int, int]:
    line = text.count("\n", 0, offset) + 1
    return line, offset - (text.rfind("\n", 0, offset) + 1) + 1


def _dotted(path: tuple) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else ("." if i else "") + p for i, p in enumerate(path))
