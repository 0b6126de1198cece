"""Which images a rendering pulls (`mims images`) and how `images.mirror` renames every one of them."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from mims import paths
from mims.blueprint import load_blueprint
from mims.charts.images import VERIFY_PROBE_IMAGE, image_list
from mims.charts.mirror import containers_of, mirrored, split_registry
from mims.errors import ChartError
from tests.conftest import find

MIRROR = "registry.city.example:5000/mims"
DIGEST = "sha256:" + "0" * 64


@pytest.mark.parametrize(
    ("ref", "registry", "path"),
    [
        ("docker.io/library/mongo:8.0.26", "docker.io", "library/mongo:8.0.26"),
        ("quay.io/keycloak/keycloak:26.8.2", "quay.io", "keycloak/keycloak:26.8.2"),
        ("mongo:8.0.26", "docker.io", "library/mongo:8.0.26"),
        ("grafana/grafana:13.2.3", "docker.io", "grafana/grafana:13.2.3"),
        ("index.docker.io/mongo:8.0.26", "docker.io", "library/mongo:8.0.26"),
        ("localhost/city/tool:1", "localhost", "city/tool:1"),
        ("registry:5000/city/tool:1", "registry:5000", "city/tool:1"),
        (f"ghcr.io/city/tool:1@{DIGEST}", "ghcr.io", f"city/tool:1@{DIGEST}"),
    ],
)
def test_references_are_split_as_container_runtimes_read_them(ref, registry, path):
    assert split_registry(ref) == (registry, path)
    assert mirrored(ref, MIRROR) == f"{MIRROR}/{path}"


def containers(rendering) -> dict[tuple, str]:
    """(component, kind, name, container, init) -> image, walking every rendered object."""
    return {
        (obj["metadata"]["labels"]["mims.io/component"], obj["kind"], obj["metadata"]["name"], c["name"], init): c[
            "image"
        ]
        for obj in rendering.objects()
        for c, init in containers_of(obj)
    }


@pytest.mark.parametrize("example", ["small-city", "standard-city"])
def test_listing_holds_every_container_image_once_plus_declared_extras(rendered_examples, example):
    rendering = rendered_examples[example]
    walked = containers(rendering)
    listing = image_list(rendering)
    extras = {
        image.ref for chart in rendering.charts.values() for image in chart.meta.images.values() if image.started_by
    } | {VERIFY_PROBE_IMAGE}
    assert [e.image for e in listing] == sorted(set(walked.values()) | extras)
    listed = {
        (u.component, u.kind, u.name, u.container, u.init): e.image for e in listing for u in e.uses if not u.started_by
    }
    assert listed == walked
    assert all(e.mirrored is None for e in listing)


def test_every_image_the_examples_charts_declare_is_listed(rendered_examples):
    """A chart that passes an image to software must say so with `started_by`, or it is not mirrored."""
    for rendering in rendered_examples.values():
        listed = {e.image for e in image_list(rendering)}
        declared = {image.ref for chart in rendering.charts.values() for image in chart.meta.images.values()}
        assert declared <= listed


def test_init_containers_are_listed(rendered_examples):
    keycloak = next(e for e in image_list(rendered_examples["small-city"]) if "/keycloak/keycloak:" in e.image)
    assert [(u.container, u.init) for u in keycloak.uses] == [
        ("copy-server", True),
        ("build", True),
        ("keycloak", False),
    ]


def test_an_image_software_starts_is_listed_with_what_starts_it(rendered_examples):
    [solver] = [e for e in image_list(rendered_examples["standard-city"]) if "acmesolver" in e.image]
    assert solver.image == "quay.io/jetstack/cert-manager-acmesolver:v1.21.2"
    [use] = solver.uses
    assert use.component == "cert-manager" and "--acme-http01-solver-image" in use.started_by


@pytest.fixture
def with_mirror(tmp_path: Path):
    """An example blueprint (with its folders) plus `images.mirror` and extra YAML; returns the path."""

    def write(example: str, extra: str = "") -> Path:
        folder = tmp_path / "city"
        shutil.copytree(paths.blueprints_dir() / "examples", folder)
        path = folder / f"{example}.yaml"
        path.write_text(path.read_text() + f"images:\n  mirror: {MIRROR}\n" + extra)
        return path

    return write


@pytest.mark.parametrize("example", ["small-city", "standard-city"])
def test_mirror_renames_every_container_and_init_container(renderer, rendered_examples, with_mirror, example):
    plain = rendered_examples[example]
    rendering = renderer.render(load_blueprint(with_mirror(example)))
    pairs = [
        (c["image"], m["image"])
        for obj, mobj in zip(plain.objects(), rendering.objects(), strict=True)
        for (c, _), (m, _) in zip(containers_of(obj), containers_of(mobj), strict=True)
    ]
    assert pairs and all(m == mirrored(c, MIRROR) for c, m in pairs)
    text = json.dumps(rendering.objects())
    sources = {image.ref for chart in rendering.charts.values() for image in chart.meta.images.values()}
    assert not [ref for ref in sources if f'"{ref}' in text or f"={ref}" in text], "a source reference is left"


def test_mirror_renames_the_image_cert_manager_passes_to_its_solver_pods(renderer, with_mirror):
    rendering = renderer.render(load_blueprint(with_mirror("standard-city")))
    controller = find(rendering, "Deployment", "cert-manager")["spec"]["template"]["spec"]["containers"][0]
    assert f"--acme-http01-solver-image={MIRROR}/jetstack/cert-manager-acmesolver:v1.21.2" in controller["args"]
    [solver] = [e for e in image_list(rendering) if "acmesolver" in e.image]
    assert (solver.image, solver.mirrored) == (
        "quay.io/jetstack/cert-manager-acmesolver:v1.21.2",
        f"{MIRROR}/jetstack/cert-manager-acmesolver:v1.21.2",
    )


def test_mirror_listing_pairs_each_source_with_its_mirrored_reference(renderer, rendered_examples, with_mirror):
    listing = image_list(renderer.render(load_blueprint(with_mirror("small-city"))))
    assert [e.image for e in listing] == [e.image for e in image_list(rendered_examples["small-city"])]
    assert all(e.mirrored == mirrored(e.image, MIRROR) for e in listing)


OVERRIDE = """overrides:
  - target: {{kind: Deployment, name: context-server}}
    patch:
      spec: {{template: {{spec: {{containers: [{{name: nginx, image: "{image}"}}]}}}}}}
"""


def test_mirror_renames_an_image_an_override_writes(renderer, with_mirror):
    rendering = renderer.render(load_blueprint(with_mirror("small-city", OVERRIDE.format(image="nginx:1.30.0"))))
    [container] = find(rendering, "Deployment", "context-server")["spec"]["template"]["spec"]["containers"]
    assert container["image"] == f"{MIRROR}/library/nginx:1.30.0"
    [entry] = [e for e in image_list(rendering) if e.image == "nginx:1.30.0"]
    assert entry.mirrored == container["image"]


def test_an_override_image_already_in_the_mirror_is_kept(renderer, with_mirror):
    own = f"{MIRROR}/city/context-server:1.0"
    rendering = renderer.render(load_blueprint(with_mirror("small-city", OVERRIDE.format(image=own))))
    [container] = find(rendering, "Deployment", "context-server")["spec"]["template"]["spec"]["containers"]
    assert container["image"] == own


def test_two_sources_with_one_mirrored_reference_are_refused(renderer, with_mirror):
    path = with_mirror("small-city", OVERRIDE.format(image="ghcr.io/library/mongo:8.0.26"))
    with pytest.raises(
        ChartError,
        match=r"`docker.io/library/mongo:8.0.26` and `ghcr.io/library/mongo:8.0.26` "
        r"would both be mirrored as",
    ):
        renderer.render(load_blueprint(path))


def test_the_verify_probe_image_is_listed_and_mirrored(write_blueprint, renderer):
    rendering = renderer.render(load_blueprint(write_blueprint({"images": {"mirror": MIRROR}})))
    [probe] = [e for e in image_list(rendering) if e.image == VERIFY_PROBE_IMAGE]
    assert probe.mirrored == f"{MIRROR}/library/busybox:1.35.0"
    assert [u.as_dict() for u in probe.uses] == [{"component": "verify", "started_by": "mims verify (its probe Job)"}]
