"""The `ckan` catalogue chart: CKAN 2.11 + ckanext-dcat (DCAT-AP 3), Solr 9, PostgreSQL 18, Valkey."""

from __future__ import annotations

import base64
import configparser
import json
import re
import shlex
import subprocess
import sys

import pytest

from mims.blueprint import load_blueprint
from mims.charts.quantity import bytes_of
from tests.conftest import env_of, find, pod_specs

NS = "alderbrook-catalogue"
ONLY_CATALOGUE = {
    name: {"enabled": False}
    for name in ("iam", "broker", "data_models", "ingestion", "ai_registry", "gateway", "monitoring")
}


@pytest.fixture
def render(write_blueprint, renderer):
    def run(profile: str = "minimal-50k", catalogue: dict | None = None, **top):
        patch = {
            "budget": {"profile": profile},
            "components": {**ONLY_CATALOGUE, "catalogue": {"enabled": True, **(catalogue or {})}},
            **top,
        }
        return renderer.render(load_blueprint(write_blueprint(patch)))

    return run


def ckan_pod(rendering) -> dict:
    return find(rendering, "StatefulSet", "ckan", NS)["spec"]["template"]["spec"]


def ckan_container(rendering) -> dict:
    [container] = ckan_pod(rendering)["containers"]
    return container


def config_file(rendering, name: str) -> str:
    return find(rendering, "ConfigMap", "ckan-config", NS)["data"][name]


def ini(rendering) -> configparser.ConfigParser:
    parser = configparser.ConfigParser()  # interpolating, as CKAN's loader reads [app:main]
    parser.optionxform = str
    parser.read_string(config_file(rendering, "ckan.ini"))
    return parser


def app(rendering) -> configparser.SectionProxy:
    return ini(rendering)["app:main"]


def test_dcat_ap_3_is_the_rdf_profile_completed_by_the_mims_catalogue_profile(render):
    main = app(render())
    assert main["ckanext.dcat.rdf.profiles"] == "euro_dcat_ap_3 mims_catalog"
    assert main["ckanext.dcat.enable_rdf_endpoints"] == "true"
    assert main["ckan.site_description"] == "Open data published by Alderbrook"
    assert main["ckanext.mims.catalog_language"] == "ENG"
    assert main["ckanext.mims.publisher_uri"] == "https://data.data.alderbrook.example/#publisher"
    assert main["ckanext.mims.publisher_name"] == "Alderbrook"


def test_plugins_start_with_dcat_and_end_with_envvars(render):
    rendering = render()
    plugins = app(rendering)["ckan.plugins"].split()
    assert plugins[:3] == ["dcat", "dcat_json_interface", "structured_data"]
    assert plugins[-1] == "envvars" and plugins.count("envvars") == 1
    # The image's prerun.py writes CKAN__PLUGINS into the ini: it must say the same.
    assert env_of(ckan_container(rendering))["CKAN__PLUGINS"].split() == plugins


def test_ckan_ini_is_a_copy_on_a_memory_backed_emptydir(render):
    rendering = render()
    pod, container = ckan_pod(rendering), ckan_container(rendering)
    ini_path = env_of(container)["CKAN_INI"]
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    folder = ini_path.rsplit("/", 1)[0]
    volume = {v["name"]: v for v in pod["volumes"]}[mounts[folder]]
    assert volume["emptyDir"]["medium"] == "Memory"
    assert mounts["/etc/ckan"] == "config"  # the rendered ini stays read-only in the ConfigMap
    script = config_file(rendering, "start-ckan.sh")
    assert 'cp /etc/ckan/ckan.ini "$CKAN_INI"' in script
    assert container["command"] == ["/bin/sh", "/etc/ckan/start-ckan.sh"]


def test_secret_key_is_appended_to_the_last_section_not_rendered(render):
    rendering = render()
    parsed = ini(rendering)
    assert parsed.sections()[-1] == "app:main"  # the start script appends SECRET_KEY to it
    assert "SECRET_KEY" not in parsed["app:main"]
    assert 'printf \'SECRET_KEY = %s\\n\' "$(cat /run/secrets/ckan/secret-key)" >> "$CKAN_INI"' in config_file(
        rendering, "start-ckan.sh"
    )
    secret = find(rendering, "Secret", "ckan-credentials", NS)
    assert json.loads(secret["metadata"]["annotations"]["mims.io/generate"])["secret-key"] == "random:64"


def test_no_secret_in_any_environment_variable(render):
    rendering = render()
    for _, spec in pod_specs(rendering):
        for container in spec.get("initContainers", []) + spec["containers"]:
            for var in container.get("env", []):
                assert "valueFrom" not in var, (container["name"], var)
                if re.search(r"PASSWORD|SECRET|AUTH", var["name"]):  # only paths to secret files
                    assert var["name"].endswith("_FILE") and var["value"].startswith("/run/secrets/"), var
                if "://" in var.get("value", ""):  # no credentials inside a URL
                    assert "@" not in var["value"], var
    # The connection strings with passwords are exported from the secret files by a sourced script.
    env_script = config_file(rendering, "ckan-env.sh")
    assert (
        'CKAN_SQLALCHEMY_URL="postgresql://ckan:$(cat /run/secrets/db/password)@catalogue-db:5432/ckan"' in env_script
    )
    assert 'CKAN_REDIS_URL="redis://:$(cat /run/secrets/valkey/password)@valkey:6379/1"' in env_script
    assert "sqlalchemy.url" not in app(rendering) and "ckan.redis.url" not in app(rendering)


def test_secrets_are_mounted_read_only_with_mode_0440(render):
    pod = ckan_pod(render())
    secrets = {v["secret"]["secretName"]: v["secret"] for v in pod["volumes"] if "secret" in v}
    assert set(secrets) == {"ckan-credentials", "catalogue-db-credentials", "valkey-credentials"}
    assert all(s["defaultMode"] == 0o440 for s in secrets.values())


@pytest.mark.parametrize("profile", ["minimal-50k", "standard"])
def test_solr_heap_matches_the_memory_limit(render, renderer, profile):
    rendering = render(profile)
    [solr] = find(rendering, "StatefulSet", "solr", NS)["spec"]["template"]["spec"]["containers"]
    heap = env_of(solr)["SOLR_HEAP"]
    size = renderer.chart_for("catalogue", "ckan").meta.workloads["solr"][profile]
    assert heap == size.settings["heap"]
    heap_bytes = bytes_of(heap.replace("m", "Mi").replace("g", "Gi"))
    limit = bytes_of(solr["resources"]["limits"]["memory"])
    # Lucene's memory-mapped index needs page cache inside the same limit: heap at most ~60% of it.
    assert limit * 0.4 <= heap_bytes <= limit * 0.6


def test_site_url_is_the_data_host_of_the_domain(render):
    rendering = render()
    main = app(rendering)
    assert main["ckan.site_url"] == "https://data.data.alderbrook.example"
    assert main["ckanext.dcat.base_uri"] == main["ckan.site_url"]
    # The image sets CKAN_SITE_URL to localhost and CKAN prefers the variable: it must agree.
    assert env_of(ckan_container(rendering))["CKAN_SITE_URL"] == main["ckan.site_url"]
    assert main["SESSION_COOKIE_SECURE"] == "true"


def test_site_url_follows_tls_mode_none(render):
    main = app(render(tls={"mode": "none"}))
    assert main["ckan.site_url"] == "http://data.data.alderbrook.example"
    assert main["SESSION_COOKIE_SECURE"] == "false"


def test_site_title_defaults_to_display_name_and_takes_the_option(render):
    assert app(render())["ckan.site_title"] == "Alderbrook open data"
    titled = app(render(catalogue={"options": {"site_title": "Data 100% open"}}))
    assert titled["ckan.site_title"] == "Data 100% open"  # `%` survives ini interpolation


def test_ckan_api_tokens_do_not_share_the_gateways_authorization_header(render):
    assert app(render())["apitoken_header_name"] == "X-CKAN-API-Key"


def pip_arguments(script: str) -> list[str]:
    return shlex.split(script.split("python3 -m pip install", 1)[1].split("\n#", 1)[0].replace("\\\n", " "))


def test_ckanext_dcat_comes_from_hash_pinned_packages(render):
    rendering = render()
    lines = [line for line in config_file(rendering, "extensions.txt").splitlines() if line.strip()]
    names = [line.split("==")[0] for line in lines]
    assert names[0] == "ckanext-dcat" and {"rdflib", "pyld", "geomet", "ckantoolkit"} <= set(names)
    for line in lines:
        assert re.match(r"^[a-z0-9-]+==[0-9][^ ]* --hash=sha256:[0-9a-f]{64}$", line), line
    args = pip_arguments(config_file(rendering, "install-extensions.sh"))
    assert {"--require-hashes", "--no-deps", "--only-binary=:all:", "--user", "--no-index"} <= set(args)
    assert args[args.index("--find-links") + 1] == "/opt/ckan-wheels"
    [init] = ckan_pod(rendering)["initContainers"]
    assert init["command"] == ["/bin/sh", "/etc/ckan/install-extensions.sh"]
    assert {"name": "wheels", "mountPath": "/opt/ckan-wheels", "readOnly": True} in init["volumeMounts"]
    # The init container fills the user site the CKAN container reads (read-only there).
    assert env_of(init)["PYTHONUSERBASE"] == env_of(ckan_container(rendering))["PYTHONUSERBASE"]
    user_base = env_of(init)["PYTHONUSERBASE"]
    assert {"name": "extensions", "mountPath": user_base, "readOnly": True} in ckan_container(rendering)["volumeMounts"]


def test_the_packages_install_offline_from_the_rendered_configmaps(render, tmp_path):
    """The ConfigMaps carry exactly the pinned files: pip installs them with no index and every hash
    checked, as the init container does (into a target folder: this interpreter is not the image's)."""
    rendering = render()
    pod = ckan_pod(rendering)
    [wheels] = [v for v in pod["volumes"] if v["name"] == "wheels"]
    folder = tmp_path / "wheels"
    folder.mkdir()
    for source in wheels["projected"]["sources"]:
        configmap = find(rendering, "ConfigMap", source["configMap"]["name"], NS)
        assert "data" not in configmap
        for name, data in configmap["binaryData"].items():
            (folder / name).write_bytes(base64.b64decode(data))
    (tmp_path / "extensions.txt").write_text(config_file(rendering, "extensions.txt"))
    args = [a for a in pip_arguments(config_file(rendering, "install-extensions.sh")) if a != "--user"]
    args = [
        str(folder)
        if a == "/opt/ckan-wheels"
        else str(tmp_path / "extensions.txt")
        if a == "/etc/ckan/extensions.txt"
        else a
        for a in args
    ]
    pip = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--target", str(tmp_path / "site"), *args],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert pip.returncode == 0, pip.stderr
    installed = {p.name for p in (tmp_path / "site").iterdir()}
    assert {"ckanext", "ckantoolkit", "rdflib", "pyld", "geomet"} <= installed
    assert (tmp_path / "site" / "ckanext" / "dcat" / "profiles").is_dir()


def test_every_configmap_fits_the_kubernetes_limit(render):
    for obj in render().objects():
        if obj["kind"] == "ConfigMap":
            size = sum(len(v) for v in {**obj.get("data", {}), **obj.get("binaryData", {})}.values())
            assert size < 1024 * 1024 * 0.9, obj["metadata"]["name"]


def test_a_changed_configuration_rolls_the_pod(render):
    def config_hash(rendering) -> str:
        return find(rendering, "StatefulSet", "ckan", NS)["spec"]["template"]["metadata"]["annotations"][
            "mims.io/config"
        ]

    assert re.fullmatch(r"[0-9a-f]{64}", config_hash(render()))
    assert config_hash(render()) != config_hash(render(city={"display_name": "Alderbrook City"}))


def test_ckan_runs_one_replica_in_every_profile(render):
    for profile in ("minimal-50k", "standard"):
        ckan = find(render(profile), "StatefulSet", "ckan", NS)
        assert ckan["spec"]["replicas"] == 1
        [claim] = ckan["spec"]["volumeClaimTemplates"]
        assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]


def test_uwsgi_process_count_follows_the_profile(render):
    assert "--processes 2 " in config_file(render("minimal-50k"), "start-ckan.sh")
    assert "--processes 4 " in config_file(render("standard"), "start-ckan.sh")


def test_probes_use_status_show(render):
    container = ckan_container(render())
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"] == {"path": "/api/action/status_show", "port": "http"}


def test_endpoint_matches_the_cross_chart_contract(renderer):
    [endpoint] = renderer.chart_for("catalogue", "ckan").meta.endpoints
    assert (
        endpoint.name,
        endpoint.workload,
        endpoint.port,
        endpoint.public,
        endpoint.host,
        endpoint.path,
        endpoint.writes_need_token,
    ) == ("ckan", "ckan", 5000, True, "data", "/", True)


def test_ckan_reaches_only_its_database_solr_and_valkey(render):
    """No internet: the extensions come with mims, so nothing is downloaded at pod start."""
    policy = find(render(), "NetworkPolicy", "allow-egress-ckan", NS)
    rules = policy["spec"]["egress"]
    assert all("podSelector" in rule["to"][0] for rule in rules)
    targets = {
        (rule["to"][0]["podSelector"]["matchLabels"]["app.kubernetes.io/name"], rule["ports"][0]["port"])
        for rule in rules
    }
    assert targets == {("catalogue-db", 5432), ("solr", 8983), ("valkey", 6379)}


def test_valkey_password_comes_from_an_include_file(render):
    rendering = render()
    conf = find(rendering, "ConfigMap", "valkey-config", NS)["data"]["valkey.conf"]
    assert "requirepass" not in conf.replace("`requirepass`", "")
    assert "include /run/valkey/auth.conf" in conf
    assert 'save ""' in conf and "appendonly no" in conf
    [valkey] = find(rendering, "Deployment", "valkey", NS)["spec"]["template"]["spec"]["containers"]
    command = " ".join(valkey["command"])
    assert "$(cat /run/secrets/valkey/password)" in command and "> /run/valkey/auth.conf" in command
    assert command.rstrip().endswith("exec valkey-server /etc/valkey/valkey.conf")
    assert not valkey.get("env")
