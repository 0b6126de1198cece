"""The blueprint model. Every user-facing mapping forbids unknown keys so typos never pass silently."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator

DNS_LABEL_PATTERN = r"^[a-z]([-a-z0-9]*[a-z0-9])?$"
HOSTNAME_PATTERN = r"^([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$"
COUNTRY_PATTERN = r"^[A-Z]{2}$"
ORIGIN_PATTERN = r"^https?://[^\s/]+$"
# A registry host (a DNS name with a dot, `localhost`, or any name with a port; anything else a
# container runtime reads as a Docker Hub path), an optional port and `/`-separated path components
# as image references allow them; no scheme, tag or digest.
_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_PATH = r"[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*"
REGISTRY_PATTERN = (
    rf"^((localhost|{_LABEL}(\.{_LABEL})+)(:[0-9]{{1,5}})?|{_LABEL}:[0-9]{{1,5}})"
    rf"(/{_PATH})*$"
)
DnsLabel = Annotated[str, StringConstraints(pattern=DNS_LABEL_PATTERN, max_length=24)]
# A line people read (page titles, names in reports): no control characters, which would break the
# YAML, JSON and HTML it is written into.
Text = Annotated[str, StringConstraints(min_length=1, max_length=100, pattern=r"^[^\x00-\x1f\x7f-\x9f]+$")]
Hostname = Annotated[str, StringConstraints(max_length=200, pattern=HOSTNAME_PATTERN)]
Profile = Literal["minimal-50k", "standard"]
PROFILES: tuple[str, ...] = ("minimal-50k", "standard")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


IMPLEMENTATION_PATTERN = r"^[a-z]([-a-z0-9]*[a-z0-9])?$"


def implementation(*shipped: str) -> Any:
    """The `implementation` field of a component: the first shipped chart by default. Any chart found
    at run time is accepted (the loader checks the name against them: charts/meta.py `implementation_problems`), so
    the JSON Schema offers the shipped ones as suggestions next to a free name, not a closed list."""

    def suggest(schema: dict[str, Any]) -> None:
        schema.pop("type", None)
        schema.pop("pattern", None)
        schema["anyOf"] = [{"enum": list(shipped)}, {"type": "string", "pattern": IMPLEMENTATION_PATTERN}]

    return Field(
        shipped[0],
        json_schema_extra=suggest,
        description=f"Chart that implements the component; shipped: {', '.join(f'`{s}`' for s in shipped)}; a chart of your own is found through `charts.paths` or "
        "MIMS_CHARTS_PATH (docs/charts.md).",
    )


Implementation = Annotated[str, StringConstraints(pattern=IMPLEMENTATION_PATTERN, max_length=40)]


class City(Strict):
    """Who the platform is for; `name` becomes part of every namespace, so it is a DNS label."""

    name: DnsLabel = Field(description="DNS-safe short name, e.g. `alderbrook`; prefixes namespaces.")
    display_name: Text = Field(description="Name shown to people, e.g. on the algorithm register page.")
    country: Annotated[str, StringConstraints(pattern=COUNTRY_PATTERN)] = Field(
        description="ISO 3166-1 alpha-2 country code, e.g. `NL`."
    )


class Staff(Strict):
    """People's time, the largest part of the cost. The defaults and their sources are in docs/cost.md."""

    setup_days: float = Field(
        20,
        ge=0,
        le=5000,
        description="Person-days to set the platform up once: accounts and cluster, DNS and TLS, the "
        "realm's users and roles, first data sources, register entries, hand-over. Default "
        "20: half the low end of the 40-70 person-days estimated for building such a "
        "platform by hand, since mims writes and deploys the manifests (an assumption: no "
        "public source states this effort).",
    )
    day_rate_eur: float = Field(
        1000,
        ge=0,
        le=10_000,
        description="EUR per person-day for the set-up. Default 1,000: within the EUR 850-1,500 cloud "
        "and DevOps freelance day rates seen in 2025.",
    )
    operations_hours_per_month: float = Field(
        16,
        ge=0,
        le=5000,
        description="Hours a month to run the platform: updates, alerts, backup checks, user and data "
        "requests. Default 16 (two days a month; an assumption).",
    )
    hourly_rate_eur: float = Field(
        100,
        ge=0,
        le=2000,
        description="EUR per hour of operations. Default 100: the average rate of IT freelancers in Germany (2025).",
    )


class LineItem(Strict):
    """A cost the platform does not show: a domain, a support contract, training, external backup."""

    name: Text = Field(description="What it is.")
    amount_eur: float = Field(ge=0, le=100_000_000, description="EUR per `per`.")
    per: Literal["once", "month", "year"] = Field(description="`once` (first year only), `month` or `year`.")


class Budget(Strict):
    """What the platform may cost and how the cost is estimated (`mims cost`, docs/cost.md)."""

    profile: Profile = Field("minimal-50k", description="Sizing profile for every component.")
    cap_eur: int = Field(
        50_000, gt=0, le=100_000_000, description="Spending cap in EUR for the first year (staff, software, hardware)."
    )
    horizon_years: int = Field(
        3, ge=1, le=10, description="Years the multi-year total covers (set-up once, the rest every year)."
    )
    hosting: DnsLabel = Field(
        "hetzner",
        description="Price sheet (hosting option) to cost the platform on: `hetzner`, `ovh`, `scaleway`, "
        "`ionos`, `aws` (comparison), `on-premises` (fill in your own prices), or a sheet "
        "of your own in `price_sheets_dir`.",
    )
    node_type: Annotated[str, StringConstraints(pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$", max_length=40)] = Field(
        "auto",
        description="Node type from the hosting option's price sheet, or `auto`: the cheapest type "
        "whose nodes hold every pod.",
    )
    size_memory_by: Literal["limits", "requests"] = Field(
        "limits",
        description="Which memory figure decides how many nodes are needed: `limits` (default; memory "
        "cannot be throttled, and Java services grow to their heap) or `requests` (what "
        "the scheduler reserves). CPU is always sized by requests.",
    )
    staff: Staff = Field(Staff(), description="Set-up and operations effort and rates.")
    egress_gb_per_month: float = Field(
        100, ge=0, le=100_000_000, description="Expected outgoing internet traffic in GB a month."
    )
    backup_factor: float = Field(
        2,
        ge=0,
        le=100,
        description="Off-site backup storage (object storage, provider snapshots) as a multiple of the data "
        "volumes' size: 2 keeps one full copy plus retained increments; 0 leaves it out. The backup "
        "volumes in the cluster (`backup`) count as block storage.",
    )
    extras: list[LineItem] = Field(
        default_factory=list, max_length=100, description="Other costs: domain, support contract, training..."
    )
    price_sheets_dir: str | None = Field(
        None,
        description="Folder (relative to the blueprint) of the city's own price sheets, one YAML "
        "file each; a sheet with a shipped sheet's `id` replaces it.",
    )


class Cluster(Strict):
    """Where the platform goes. `sim` is a simulated API server for trying and CI; `context` any cluster."""

    target: Literal["sim", "node", "kind", "context"] = Field(
        "sim",
        description="Kind of cluster to deploy to: `sim` (simulated, pods never run), `node` (a real node on "
        "this Linux machine, `mims cluster create --node`), `kind`, or a kubeconfig `context`.",
    )
    context: str | None = Field(None, description="kubeconfig context name; required when target is `context`.")

    @model_validator(mode="after")
    def _context_matches_target(self) -> Cluster:
        if self.target == "context" and not self.context:
            raise ValueError("target `context` needs `context: <kubeconfig context name>`")
        if self.target != "context" and self.context:
            raise ValueError(f"`context` is only used with target `context` (target is `{self.target}`)")
        return self


TlsMode = Literal["none", "external", "secret", "cert-manager"]


class Tls(Strict):
    """How HTTPS reaches the gateway."""

    mode: TlsMode = Field(
        "external",
        description="`external`: TLS ends before the gateway (load balancer, ingress); `secret`: the "
        "gateway serves the kubernetes.io/tls Secret named by `secret_name`; `cert-manager`: "
        "certificates from ACME through the cert-manager and ingress-controller add-ons; "
        "`none`: plain HTTP, for local trials only.",
    )
    secret_name: DnsLabel | None = Field(None, description="TLS Secret in the gateway namespace (mode `secret`).")

    @model_validator(mode="after")
    def _secret_matches_mode(self) -> Tls:
        if self.mode == "secret" and not self.secret_name:
            raise ValueError("mode `secret` needs `secret_name: <name of a kubernetes.io/tls Secret>`")
        if self.mode != "secret" and self.secret_name:
            raise ValueError(f"`secret_name` is only used with mode `secret` (mode is `{self.mode}`)")
        return self


class IamOptions(Strict):
    realm: DnsLabel | None = Field(None, description="Keycloak realm name; defaults to the city name.")


class DataModelsOptions(Strict):
    contexts_dir: str | None = Field(
        None, description="Folder (relative to the blueprint) of extra JSON-LD @context files (`*.jsonld`) to serve."
    )


RESERVED_MQTT_USERS = ("iot-agent", "mims-verify", "passwd")


class IngestionOptions(Strict):
    device_users: list[DnsLabel] = Field(
        default_factory=list,
        max_length=200,
        description="MQTT user names, one per device: the user name is the device's id, and the "
        "broker lets it publish and read only that device's topics (docs/components/"
        "ingestion.md). Passwords are generated at deploy time. `iot-agent`, `mims-verify` "
        "and `passwd` are taken.",
    )

    @field_validator("device_users")
    @classmethod
    def _not_reserved_and_unique(cls, users: list[str]) -> list[str]:
        taken = sorted(set(users) & set(RESERVED_MQTT_USERS))
        if taken:
            raise ValueError(f"`{taken[0]}` is used by mims itself; choose another device user name")
        repeated = sorted({u for u in users if users.count(u) > 1})
        if repeated:
            raise ValueError(f"`{repeated[0]}` is listed twice")
        return users


class CatalogueOptions(Strict):
    site_title: Text | None = Field(
        None, description="Title of the catalogue site; defaults to `<display name> open data`."
    )


class AiRegistryOptions(Strict):
    entries_dir: str = Field(
        "algorithms", description="Folder (relative to the blueprint) of register entries, one YAML file each."
    )


class PlacesCollection(Strict):
    """A static collection of MIM7 Places: a GeoJSON file kept next to the blueprint, served as OGC
    API Features (docs/components/places.md)."""

    id: DnsLabel = Field(description="Collection id, part of its URL: `/collections/<id>`.")
    title: Text = Field(description="Title shown in the API, its HTML pages and the catalogue.")
    description: Annotated[str, StringConstraints(min_length=1, max_length=2000)] = Field(
        description="What the features are, for people who find the collection."
    )
    licence: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9.+-]{1,63}$")] = Field(
        description="SPDX identifier of the data's licence, e.g. `CC-BY-4.0`."
    )
    crs: int = Field(
        ge=1024,
        le=999_999,
        description="EPSG code of the coordinates in the file, e.g. `4326` (GeoJSON's longitude/latitude) "
        "or `25832` (ETRS89 / UTM 32N); checked against the EPSG registry and the data's extent.",
    )
    keywords: list[Text] = Field(default_factory=list, max_length=20, description="Search words.")
    file: Annotated[str, StringConstraints(min_length=1, max_length=255)] = Field(
        description="GeoJSON FeatureCollection (`.geojson` or `.json`), relative to the blueprint."
    )
    id_property: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = Field(
        None,
        description="Property whose value is each feature's id (in `/items/<id>`); defaults to the "
        "features' own `id` member.",
    )


class PlacesOptions(Strict):
    collections: list[PlacesCollection] = Field(
        default_factory=list, max_length=50, description="Static collections served as OGC API Features."
    )

    @field_validator("collections")
    @classmethod
    def _unique_ids(cls, collections: list[PlacesCollection]) -> list[PlacesCollection]:
        ids = [c.id for c in collections]
        repeated = sorted({i for i in ids if ids.count(i) > 1})
        if repeated:
            raise ValueError(f"collection id `{repeated[0]}` is used twice; each collection needs its own")
        return collections


class GatewayOptions(Strict):
    cors_origins: list[Annotated[str, StringConstraints(pattern=ORIGIN_PATTERN)]] = Field(
        default_factory=list, description="Origins allowed to call the public APIs from a browser."
    )


class MonitoringOptions(Strict):
    retention_days: int | None = Field(
        None, ge=1, le=3650, description="Prometheus retention; defaults to the profile's value."
    )
    grafana: bool = Field(
        True,
        description="Grafana with the platform dashboard; `false` runs Prometheus alone (a city with a "
        "Grafana of its own points it at Prometheus).",
    )


class Iam(Strict):
    enabled: bool = True
    implementation: Implementation = implementation("keycloak")
    options: IamOptions = IamOptions()


class Broker(Strict):
    enabled: bool = True
    implementation: Implementation = implementation("orion-ld", "scorpio")


class DataModels(Strict):
    """MIM2: the city's JSON-LD @context documents, served over HTTP."""

    enabled: bool = True
    implementation: Implementation = implementation("context-server")
    options: DataModelsOptions = DataModelsOptions()


class Ingestion(Strict):
    enabled: bool = True
    implementation: Implementation = implementation("iotagent-json")
    options: IngestionOptions = IngestionOptions()


class Catalogue(Strict):
    enabled: bool = True
    implementation: Implementation = implementation("ckan")
    options: CatalogueOptions = CatalogueOptions()


class AiRegistry(Strict):
    enabled: bool = True
    implementation: Implementation = implementation("ats-register")
    options: AiRegistryOptions = AiRegistryOptions()


class Places(Strict):
    """MIM7: the city's geospatial data as OGC API Features. Off unless the city has data to serve."""

    enabled: bool = Field(False, description="Serve the collections; off by default.")
    implementation: Implementation = implementation("pygeoapi")
    options: PlacesOptions = PlacesOptions()


class Gateway(Strict):
    enabled: bool = True
    implementation: Implementation = implementation("nginx-oauth2-proxy")
    options: GatewayOptions = GatewayOptions()


class Monitoring(Strict):
    enabled: bool = True
    implementation: Implementation = implementation("prometheus-grafana")
    options: MonitoringOptions = MonitoringOptions()


class Components(Strict):
    """One section per component; every component but `places` is on unless `enabled: false`."""

    iam: Iam = Iam()
    broker: Broker = Broker()
    data_models: DataModels = DataModels()
    ingestion: Ingestion = Ingestion()
    catalogue: Catalogue = Catalogue()
    ai_registry: AiRegistry = AiRegistry()
    places: Places = Places()
    gateway: Gateway = Gateway()
    monitoring: Monitoring = Monitoring()


class IngressController(Strict):
    enabled: bool = False
    implementation: Implementation = implementation("traefik")


class CertManagerOptions(Strict):
    acme_email: Annotated[str, StringConstraints(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")] | None = Field(
        None, description="Contact address for the ACME account; required when `tls.mode` is `cert-manager`."
    )
    acme_server: Annotated[str, StringConstraints(pattern=r"^https://\S+$")] = Field(
        "https://acme-v02.api.letsencrypt.org/directory",
        description="ACME directory URL; Let's Encrypt's staging directory is useful for trials.",
    )


class CertManager(Strict):
    enabled: bool = False
    implementation: Implementation = implementation("cert-manager")
    options: CertManagerOptions = CertManagerOptions()


class Addons(Strict):
    """Cluster-wide software installed only when asked for."""

    ingress_controller: IngressController = IngressController()
    cert_manager: CertManager = CertManager()


class Images(Strict):
    """Where the cluster pulls container images from."""

    mirror: Annotated[str, StringConstraints(pattern=REGISTRY_PATTERN, max_length=200)] | None = Field(
        None,
        description="Private registry (host, optional port and path; no scheme) that holds a copy of "
        "every image, for clusters without internet access: every image reference is "
        "rewritten to the mirror followed by the path after the source's registry host, "
        "tag and digest kept (`docker.io/library/mongo:8.0.26` -> "
        "`<mirror>/library/mongo:8.0.26`). `mims images` lists what to copy; see "
        "docs/air-gapped.md.",
    )
    pull: Literal["always", "if-not-present"] = Field(
        "always",
        description="When the cluster pulls an image: `always` (imagePullPolicy Always: every start checks "
        "the registry, so a node never runs an image its credentials no longer reach) or "
        "`if-not-present` (IfNotPresent: for nodes that cannot pull and run images loaded from "
        "archives, `mims cluster load-images`; checkov's CKV_K8S_15 then reports every container).",
    )


class OverrideTarget(Strict):
    kind: Annotated[str, StringConstraints(pattern=r"^[A-Z][A-Za-z]*$")]
    name: Annotated[str, StringConstraints(min_length=1, max_length=253)]
    namespace: str | None = None


class Override(Strict):
    """An integrator's patch on one rendered object, applied as a JSON merge patch (RFC 7386)."""

    target: OverrideTarget
    patch: dict[str, Any] = Field(description="Merge patch; `null` removes a key, lists are replaced.")


class Charts(Strict):
    """Charts of the city's own, found next to the ones mims ships (docs/charts.md)."""

    paths: list[Annotated[str, StringConstraints(min_length=1, max_length=500)]] = Field(
        default_factory=list,
        max_length=20,
        description="Folders (relative to the blueprint) that hold chart folders, each with a "
        "`chart.yaml`. They are searched after the shipped charts and before the folders in "
        "the environment variable MIMS_CHARTS_PATH; a chart's `component` and "
        "`implementation` name what it implements, and a second chart for the same pair "
        "is an error, so a chart of your own never replaces a shipped one silently.",
    )


CRON_PATTERN = r"^[0-9*/,-]+( [0-9*/,-]+){4}$"
SIZE_PATTERN = r"^[1-9][0-9]{0,5}(Mi|Gi|Ti)$"


class BackupVolume(Strict):
    """Dumps kept on a volume in the cluster, one per database, in the database's namespace. It
    protects against mistakes and corrupted data, not against losing the cluster's storage."""

    size: Annotated[str, StringConstraints(pattern=SIZE_PATTERN)] = Field(
        "5Gi", description="Size of each database's backup volume (`Mi`, `Gi` or `Ti`)."
    )


class BackupTarget(Strict):
    volume: BackupVolume = Field(BackupVolume(), description="A volume in the cluster per database.")


class Backup(Strict):
    """Scheduled dumps of every database the platform runs (docs/operations.md)."""

    enabled: bool = Field(True, description="Dump every database on the schedule; `false` leaves backups out.")
    schedule: Annotated[str, StringConstraints(pattern=CRON_PATTERN)] = Field(
        "23 2 * * *",
        description="When, as a cron line of five fields in UTC, e.g. `23 2 * * *` (every night at 02:23).",
    )
    keep: int = Field(7, ge=1, le=366, description="How many backups each database keeps; older ones are deleted.")
    target: BackupTarget = Field(BackupTarget(), description="Where the dumps are written.")


class Blueprint(Strict):
    """A city's MIMs platform."""

    version: Literal[1] = Field(description="Blueprint format version; always 1 for now.")
    city: City = Field(description="Who the platform is for.")
    domain: Hostname = Field(description="DNS domain under which the public APIs live, e.g. `data.example.org`.")
    environment: DnsLabel = Field("prod", description="Environment name, e.g. `prod`, `test`; part of stack names.")
    budget: Budget = Field(Budget(), description="Sizing profile and spending cap.")
    cluster: Cluster = Field(Cluster(), description="Where the platform is deployed.")
    tls: Tls = Field(Tls(), description="How HTTPS reaches the gateway.")
    components: Components = Field(Components(), description="One section per platform component.")
    addons: Addons = Field(Addons(), description="Optional cluster-wide software.")
    images: Images = Field(Images(), description="Where container images are pulled from (air-gapped clusters).")
    charts: Charts = Field(Charts(), description="Where charts of the city's own are found.")
    backup: Backup = Field(Backup(), description="Scheduled backups of the platform's databases.")
    overrides: list[Override] = Field(
        default_factory=list, description="Integrators' merge patches on rendered objects, applied last."
    )

    def enabled_components(self) -> dict[str, Any]:
        """Enabled component and add-on sections keyed by their chart component id (`ai-registry`,
        not `ai_registry`)."""
        sections = list(self.components) + list(self.addons)
        return {name.replace("_", "-"): section for name, section in sections if section.enabled}


# Which components a component cannot work without, and why. Checked after the model validates.
REQUIRES: dict[str, tuple[str, str]] = {
    "gateway": ("iam", "the gateway checks OIDC tokens issued by the city's realm"),
    "ingestion": ("broker", "the IoT agent writes measurements to the context broker"),
}


def cross_checks(blueprint: Blueprint) -> list[tuple[tuple[str, ...], str]]:
    """Rules across sections, returned as (field path, message) pairs."""
    enabled = blueprint.enabled_components()
    problems: list[tuple[tuple[str, ...], str]] = []
    if blueprint.tls.mode == "cert-manager":
        for addon in ("cert_manager", "ingress_controller"):
            if not getattr(blueprint.addons, addon).enabled:
                problems.append(
                    (
                        ("tls", "mode"),
                        f"mode `cert-manager` needs `addons.{addon}.enabled: true` "
                        "(ACME HTTP-01 challenges are answered through the ingress "
                        "controller)",
                    )
                )
        if not blueprint.addons.cert_manager.options.acme_email:
            problems.append(
                (
                    ("addons", "cert_manager", "options"),
                    "mode `cert-manager` needs `acme_email`, the ACME account's contact address",
                )
            )
    if "places" in enabled and not blueprint.components.places.options.collections:
        problems.append(
            (
                ("components", "places", "options", "collections"),
                "`places` is enabled but serves no collection; declare one (id, title, description, licence, "
                "crs, file) or disable components.places",
            )
        )
    for component, (needed, why) in REQUIRES.items():
        if component in enabled and needed not in enabled:
            problems.append(
                (
                    ("components", component.replace("-", "_"), "enabled"),
                    f"`{component}` needs `{needed}` enabled: {why}; enable "
                    f"components.{needed} or disable components.{component}",
                )
            )
    return problems
