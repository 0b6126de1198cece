"""Container images for tests on a real node, built without Docker or a registry.

Each recipe (recipes/*.yaml) stands in for one upstream image the charts pin, tagged with the
upstream name so rendered objects run unchanged: Debian's build of the same software, with the
upstream image's users, paths, entrypoint contract and ports. Build with
`python -m tests.images build NAME... [--out DIR]` or `tests.images.build.build(NAME)`."""
