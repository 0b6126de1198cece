"""The `nginx-oauth2-proxy` gateway chart: nginx routes every public endpoint by host and path, and a
write to an endpoint with `writes_need_token` passes only after oauth2-proxy verified a bearer JWT."""

from __future__ import annotations

import base64
import http.client
import json
import os
import re
import secrets
import shutil
import subprocess
import threading
import urllib.parse
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from mims.blueprint import load_blueprint
from tests.conftest import find, require_tool
from tests.mqtt import NOT_AUTHORIZED, Client, free_port, running_mosquitto, wait_for_port

NS = "alderbrook-gateway"
DOMAIN = "data.alderbrook.example"


@pytest.fixture
def render(write_blueprint, renderer):
    """Render the small-city example (every component on) with a patch."""

    def run(patch: dict | None = None):
        return renderer.render(load_blueprint(write_blueprint(patch or {})))

    return run


def with_ingress(patch: dict | None = None) -> dict:
    return {**(patch or {}), "addons": {"ingress_controller": {"enabled": True}}}


SECRET_TLS = {"tls": {"mode": "secret", "secret_name": "alderbrook-tls"}}
CERT_MANAGER_TLS = {
    "tls": {"mode": "cert-manager"},
    "addons": {
        "ingress_controller": {"enabled": True},
        "cert_manager": {"enabled": True, "options": {"acme_email": "ops@alderbrook.example"}},
    },
}


# --- reading nginx.conf -------------------------------------------------------------------------

TOKEN = re.compile(r"""\s+|#[^\n]*|'(?:\\.|[^'\\])*'|"(?:\\.|[^"\\])*"|[{};]|[^\s{};'"]+""")


def parse_nginx(text: str) -> list:
    """nginx.conf as nested [name, args, children-or-None] lists."""
    tokens = [t for t in TOKEN.findall(text) if t.strip() and not t.startswith("#")]
    pos = 0

    def block() -> list:
        nonlocal pos
        out, words = [], []
        while pos < len(tokens):
            tok = tokens[pos]
            pos += 1
            if tok == ";":
                out.append([words[0], words[1:], None])
                words = []
            elif tok == "{":
                name, args = words[0], words[1:]
                out.append([name, args, block()])
                words = []
            elif tok == "}":
                return out
            else:
                words.append(tok[1:-1] if tok[0] in "'\"" else tok)
        return out

    return block()


def children(node_list: list, name: str) -> list:
    return [n for n in node_list if n[0] == name]


def directive_args(node_list: list, name: str) -> list[list[str]]:
    return [n[1] for n in node_list if n[0] == name]


def nginx_conf(rendering) -> str:
    return find(rendering, "ConfigMap", "gateway-config", NS)["data"]["nginx.conf"]


def all_servers(rendering) -> list[list]:
    [http] = children(parse_nginx(nginx_conf(rendering)), "http")
    return [body for _, _, body in children(http[2], "server")]


def servers(rendering) -> dict[str, list]:
    """server_name -> directives of the first server block that answers it on a plain or TLS listener
    other than the HTTPS redirect (the default server under `_`)."""
    out = {}
    for body in all_servers(rendering):
        redirect = any(
            directive_args(loc, "return")[:1] == [["308", "https://$host$request_uri"]]
            for loc in locations(body).values()
        )
        for name in directive_args(body, "server_name")[0]:
            if not redirect:
                out.setdefault(name, body)
    return out


def locations(server: list) -> dict[str, list]:
    return {" ".join(args): body for _, args, body in children(server, "location")}


def public_endpoints(rendering) -> list:
    """(component, endpoint) of every public http endpoint of the enabled charts."""
    return [
        (component, e)
        for component, chart in rendering.charts.items()
        for e in chart.meta.endpoints
        if e.public and e.protocol == "http"
    ]


def stream(rendering) -> list | None:
    """The `stream` block of nginx.conf (public tcp endpoints), or None."""
    blocks = children(parse_nginx(nginx_conf(rendering)), "stream")
    return blocks[0][2] if blocks else None


# --- routing and the token rule -----------------------------------------------------------------


def test_every_public_endpoint_is_routed_by_host_and_path_to_its_service(render):
    rendering = render()
    by_host = servers(rendering)
    for component, ep in public_endpoints(rendering):
        server = by_host[f"{ep.host}.{DOMAIN}"]
        location = locations(server)[ep.path]
        sets = {a[0]: a[1] for a in directive_args(location, "set")}
        assert sets["$mims_upstream"] == f"{ep.workload}.alderbrook-{component}.svc.cluster.local:{ep.port}"
        assert directive_args(location, "proxy_pass") == [["http://$mims_upstream"]]


def test_shared_host_serves_each_path_and_nothing_else(render):
    api = servers(render())[f"api.{DOMAIN}"]
    routes = locations(api)
    assert {"/ngsi-ld/", "/context/"} <= set(routes)
    assert directive_args(routes["/"], "return") == [["404", '{"error":"not_found"}\\n']]


def test_every_write_protected_route_has_the_auth_request(render):
    rendering = render()
    by_host = servers(rendering)
    protected = [(c, e) for c, e in public_endpoints(rendering) if e.writes_need_token and not e.reads_need_token]
    assert {c for c, _ in protected} >= {"broker", "catalogue", "ai-registry"}
    for component, ep in protected:
        location = locations(by_host[f"{ep.host}.{DOMAIN}"])[ep.path]
        assert directive_args(location, "auth_request") == [[f"/_mims/auth/{component}"]], ep.name


def test_routes_with_reads_need_token_check_every_method(render):
    rendering = render()
    by_host = servers(rendering)
    always = [(c, e) for c, e in public_endpoints(rendering) if e.reads_need_token]
    assert {e.path for _, e in always} >= {"/iot/groups", "/iot/services", "/iot/devices"}
    for component, ep in always:
        server = by_host[f"{ep.host}.{DOMAIN}"]
        check = f"/_mims/auth-always/{component}"
        assert directive_args(locations(server)[ep.path], "auth_request") == [[check]], ep.name
        auth = locations(server)[f"= {check}"]
        assert directive_args(auth, "internal") == [[]]
        assert not children(auth, "if"), "no shortcut for safe methods"
        assert directive_args(auth, "proxy_pass") == [
            [f"http://$mims_oauth2_proxy/oauth2/auth?allowed_groups={component}-writer"]
        ]
        assert directive_args(server, "error_page") == [
            ["401", "=", "@mims_unauthorized"],
            ["403", "=", "@mims_forbidden"],
        ]


def test_provisioning_paths_go_to_the_agents_north_port_and_measures_to_the_south_port(render):
    routes = locations(servers(render())[f"iot.{DOMAIN}"])
    upstream = {
        path: {a[0]: a[1] for a in directive_args(routes[path], "set")}["$mims_upstream"]
        for path in ("/iot/", "/iot/groups", "/iot/services", "/iot/devices")
    }
    agent = "iot-agent.alderbrook-ingestion.svc.cluster.local"
    assert upstream == {
        "/iot/": f"{agent}:7896",
        "/iot/groups": f"{agent}:4041",
        "/iot/services": f"{agent}:4041",
        "/iot/devices": f"{agent}:4041",
    }


def test_routes_without_writes_need_token_have_no_auth_request(render):
    rendering = render()
    by_host = servers(rendering)
    open_routes = [e for _, e in public_endpoints(rendering) if not e.writes_need_token]
    assert {e.name for e in open_routes} >= {"oidc", "contexts", "iot-http", "grafana"}
    for ep in open_routes:
        location = locations(by_host[f"{ep.host}.{DOMAIN}"])[ep.path]
        assert directive_args(location, "auth_request") == [], ep.name


def test_auth_check_lets_safe_methods_through_and_asks_oauth2_proxy_for_the_rest(render):
    rendering = render()
    [http] = children(parse_nginx(nginx_conf(rendering)), "http")
    [safe_map] = [
        body for _, args, body in children(http[2], "map") if args == ["$request_method", "$mims_safe_method"]
    ]
    assert {n[0]: n[1][0] for n in safe_map} == {"GET": "1", "HEAD": "1", "OPTIONS": "1", "default": "0"}
    auth = locations(servers(rendering)[f"api.{DOMAIN}"])["= /_mims/auth/broker"]
    assert directive_args(auth, "internal") == [[]]
    [guard] = children(auth, "if")
    assert guard[1] == ["($mims_safe_method)"] and directive_args(guard[2], "return") == [["204"]]
    assert ["$mims_oauth2_proxy", f"oauth2-proxy.{NS}.svc.cluster.local:4180"] in directive_args(auth, "set")
    assert directive_args(auth, "proxy_pass") == [
        ["http://$mims_oauth2_proxy/oauth2/auth?allowed_groups=broker-writer"]
    ]
    assert directive_args(auth, "proxy_pass_request_body") == [["off"]]


def test_refused_write_gets_401_with_a_bearer_challenge_for_the_city(render):
    api = servers(render())[f"api.{DOMAIN}"]
    assert directive_args(api, "error_page") == [["401", "=", "@mims_unauthorized"], ["403", "=", "@mims_forbidden"]]
    unauthorized = locations(api)["@mims_unauthorized"]
    assert ["WWW-Authenticate", 'Bearer realm="alderbrook"', "always"] in directive_args(unauthorized, "add_header")
    assert directive_args(unauthorized, "return")[0][0] == "401"


def test_other_hosts_get_404_and_probes_a_health_answer(render):
    default = servers(render())["_"]
    routes = locations(default)
    assert directive_args(routes["/"], "return")[0][0] == "404"
    assert directive_args(routes["= /healthz"], "return")[0][0] == "200"
    assert directive_args(default, "listen") == [["8080", "default_server"]]


def test_callers_cannot_pose_as_an_authenticated_user(render):
    rendering = render()
    [http] = children(parse_nginx(nginx_conf(rendering)), "http")
    headers = {a[0]: a[1] for a in directive_args(http[2], "proxy_set_header")}
    assert headers["X-Forwarded-User"] == "$mims_user"
    for body in servers(rendering).values():
        assert ["$mims_user", ""] in directive_args(body, "set")


# --- limits, headers, CORS, logs ---------------------------------------------------------------


def test_request_size_limits_and_security_headers(render):
    [http] = children(parse_nginx(nginx_conf(render())), "http")
    assert directive_args(http[2], "client_max_body_size") == [["10m"]]
    headers = {a[0]: a[1] for a in directive_args(http[2], "add_header")}
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Strict-Transport-Security"].startswith("max-age=")
    assert "Access-Control-Allow-Origin" not in headers


def test_plain_http_trial_sends_no_hsts(render):
    [http] = children(parse_nginx(nginx_conf(render({"tls": {"mode": "none"}}))), "http")
    assert "Strict-Transport-Security" not in {a[0] for a in directive_args(http[2], "add_header")}


def test_cors_allows_exactly_the_configured_origins(render):
    origin = "https://dashboard.alderbrook.example"
    rendering = render({"components": {"gateway": {"options": {"cors_origins": [origin]}}}})
    [http] = children(parse_nginx(nginx_conf(rendering)), "http")
    [origins] = [body for _, args, body in children(http[2], "map") if args[1:] == ["$mims_cors_origin"]]
    assert {n[0]: n[1][0] for n in origins} == {"default": "", origin: "$http_origin"}
    headers = {a[0]: a[1] for a in directive_args(http[2], "add_header")}
    assert headers["Access-Control-Allow-Origin"] == "$mims_cors_origin"
    assert children(servers(rendering)[f"api.{DOMAIN}"], "if")[0][1] == ["($mims_cors_preflight)"]


def test_access_log_is_json(render):
    [http] = children(parse_nginx(nginx_conf(render())), "http")
    [log_format] = directive_args(http[2], "log_format")
    assert log_format[:2] == ["mims_json", "escape=json"]
    assert directive_args(http[2], "access_log") == [["/dev/stdout", "mims_json"]]


# --- TLS modes and exposure ---------------------------------------------------------------------


def test_external_tls_trusts_forwarded_proto_behind_a_load_balancer(render):
    rendering = render()
    [http] = children(parse_nginx(nginx_conf(rendering)), "http")
    maps = {args[1]: args[0] for _, args, _ in children(http[2], "map")}
    assert maps["$mims_proto"] == "$http_x_forwarded_proto"
    service = find(rendering, "Service", "gateway", NS)
    assert service["spec"]["type"] == "LoadBalancer"
    assert [(p["port"], p["targetPort"]) for p in service["spec"]["ports"]] == [(80, 8080), (8883, "mqtt")]
    assert not [o for o in rendering.objects() if o["kind"] == "Ingress"]


def test_secret_tls_serves_https_and_redirects_plain_http(render):
    rendering = render(SECRET_TLS)
    by_host = servers(rendering)
    api = by_host[f"api.{DOMAIN}"]
    assert directive_args(api, "listen") == [["8443", "ssl"]]
    [redirect] = [
        body
        for body in all_servers(rendering)
        if directive_args(body, "listen") == [["8080"]] and f"api.{DOMAIN}" in directive_args(body, "server_name")[0]
    ]
    assert directive_args(locations(redirect)["/"], "return") == [["308", "https://$host$request_uri"]]
    service = find(rendering, "Service", "gateway", NS)
    assert [(p["port"], p["targetPort"]) for p in service["spec"]["ports"]] == [(80, 8080), (443, 8443), (8883, "mqtt")]
    pod = find(rendering, "Deployment", "gateway", NS)["spec"]["template"]["spec"]
    [tls_volume] = [v for v in pod["volumes"] if v["name"] == "tls"]
    assert tls_volume["secret"] == {"secretName": "alderbrook-tls", "defaultMode": 0o440}
    start = find(rendering, "ConfigMap", "gateway-config", NS)["data"]["start.sh"]
    assert "ln -sfn /etc/mims-tls /tmp/tls" in start


def test_ingress_controller_gets_one_ingress_per_public_host_and_the_gateway_stays_internal(render):
    rendering = render(with_ingress())
    service = find(rendering, "Service", "gateway", NS)
    assert service["spec"]["type"] == "ClusterIP"
    ingresses = [o for o in rendering.objects() if o["kind"] == "Ingress"]
    hosts = sorted(r["host"] for i in ingresses for r in i["spec"]["rules"])
    expected = sorted({f"{e.host}.{DOMAIN}" for _, e in public_endpoints(rendering)})
    assert hosts == expected
    for ingress in ingresses:
        assert ingress["metadata"]["namespace"] == NS
        assert ingress["spec"]["ingressClassName"] == "traefik"
        [path] = ingress["spec"]["rules"][0]["http"]["paths"]
        assert path["backend"]["service"] == {"name": "gateway", "port": {"name": "http"}}
        assert "tls" not in ingress["spec"]


def test_secret_tls_behind_the_ingress_controller_ends_tls_there(render):
    rendering = render(with_ingress(SECRET_TLS))
    for ingress in (o for o in rendering.objects() if o["kind"] == "Ingress"):
        assert ingress["spec"]["tls"][0]["secretName"] == "alderbrook-tls"
        assert ingress["metadata"]["annotations"]["traefik.ingress.kubernetes.io/router.entrypoints"] == "websecure"
    assert directive_args(servers(rendering)[f"api.{DOMAIN}"], "listen") == [["8080"]]


def test_cert_manager_tls_ends_at_traefik_with_one_acme_certificate_per_host(render):
    rendering = render(CERT_MANAGER_TLS)
    ingresses = [o for o in rendering.objects() if o["kind"] == "Ingress"]
    assert ingresses
    for ingress in ingresses:
        annotations = ingress["metadata"]["annotations"]
        assert annotations["cert-manager.io/cluster-issuer"] == "alderbrook-acme"
        assert annotations["traefik.ingress.kubernetes.io/router.entrypoints"] == "websecure"
        [rule] = ingress["spec"]["rules"]
        host = rule["host"].removesuffix(f".{DOMAIN}")
        assert ingress["spec"]["tls"] == [{"hosts": [rule["host"]], "secretName": f"alderbrook-tls-{host}"}]
    # nginx as in mode `external`: plain HTTP on 8080, scheme from Traefik's X-Forwarded-Proto, HSTS.
    [http] = children(parse_nginx(nginx_conf(rendering)), "http")
    maps = {args[1]: args[0] for _, args, _ in children(http[2], "map")}
    assert maps["$mims_proto"] == "$http_x_forwarded_proto"
    assert "Strict-Transport-Security" in {a[0] for a in directive_args(http[2], "add_header")}
    assert directive_args(servers(rendering)[f"api.{DOMAIN}"], "listen") == [["8080"]]
    assert find(rendering, "Service", "gateway", NS)["spec"]["type"] == "ClusterIP"
    pod = find(rendering, "Deployment", "gateway", NS)["spec"]["template"]["spec"]
    assert [v["name"] for v in pod["volumes"]] == ["config", "tmp"]


def test_cert_manager_gets_a_certificate_for_the_mqtt_host_too(render):
    """Traefik ends MQTT's TLS with it: the Ingress exists only so that cert-manager issues it and
    Traefik loads it (plain HTTPS to that host reaches the gateway, which answers 404)."""
    [mqtt] = [
        o
        for o in render(CERT_MANAGER_TLS).objects()
        if o["kind"] == "Ingress" and o["spec"]["rules"][0]["host"] == f"mqtt.{DOMAIN}"
    ]
    assert mqtt["spec"]["tls"] == [{"hosts": [f"mqtt.{DOMAIN}"], "secretName": "alderbrook-tls-mqtt"}]
    assert mqtt["metadata"]["annotations"]["cert-manager.io/cluster-issuer"] == "alderbrook-acme"
    for patch in (with_ingress(), with_ingress(SECRET_TLS)):
        assert not [
            o
            for o in render(patch).objects()
            if o["kind"] == "Ingress" and o["spec"]["rules"][0]["host"] == f"mqtt.{DOMAIN}"
        ]


# --- public tcp endpoints (MQTT) without the ingress controller: nginx's stream module ------------


def test_secret_tls_ends_mqtt_tls_in_nginx_and_streams_to_mosquitto(render):
    rendering = render(SECRET_TLS)
    block = stream(rendering)
    assert directive_args(block, "ssl_certificate") == [["tls/tls.crt"]]
    [server] = [body for _, _, body in children(block, "server")]
    assert directive_args(server, "listen") == [["8883", "ssl"]]
    assert directive_args(server, "set") == [
        ["$mims_upstream", "mosquitto.alderbrook-ingestion.svc.cluster.local:1883"]
    ]
    assert directive_args(server, "proxy_pass") == [["$mims_upstream"]]
    assert directive_args(block, "include") == [["resolver.conf"]]
    pod = find(rendering, "Deployment", "gateway", NS)["spec"]["template"]["spec"]
    assert {"name": "mqtt", "containerPort": 8883, "protocol": "TCP"} in pod["containers"][0]["ports"]


def test_external_tls_streams_plain_mqtt_from_the_terminator_in_front(render):
    block = stream(render())
    [server] = [body for _, _, body in children(block, "server")]
    assert directive_args(server, "listen") == [["8883"]]
    assert not directive_args(block, "ssl_certificate")


def test_no_public_mqtt_on_plain_http_trials_nor_through_the_gateway_behind_traefik(render):
    for patch in ({"tls": {"mode": "none"}}, with_ingress(), with_ingress(SECRET_TLS)):
        rendering = render(patch)
        assert stream(rendering) is None
        assert 8883 not in [p["port"] for p in find(rendering, "Service", "gateway", NS)["spec"]["ports"]]
        egress = find(rendering, "NetworkPolicy", "allow-egress-gateway", NS)["spec"]["egress"]
        assert not [
            r for r in egress if r["to"][0]["podSelector"]["matchLabels"]["app.kubernetes.io/name"] == "mosquitto"
        ]


def test_cert_manager_solver_pods_are_reachable_from_traefik_only(render):
    policy = find(render(CERT_MANAGER_TLS), "NetworkPolicy", "allow-ingress-acme-http01-solver", NS)
    assert policy["spec"]["podSelector"] == {"matchLabels": {"acme.cert-manager.io/http01-solver": "true"}}
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    assert policy["spec"]["ingress"] == [
        {
            "from": [
                {
                    "podSelector": {"matchLabels": {"app.kubernetes.io/name": "traefik"}},
                    "namespaceSelector": {
                        "matchLabels": {"kubernetes.io/metadata.name": "alderbrook-ingress-controller"}
                    },
                }
            ],
            "ports": [{"protocol": "TCP", "port": 8089}],
        }
    ]
    for patch in ({}, with_ingress(), with_ingress(SECRET_TLS)):
        rendering = render(patch)
        assert not [
            o
            for o in rendering.objects()
            if o["kind"] == "NetworkPolicy" and o["metadata"]["name"] == "allow-ingress-acme-http01-solver"
        ]


# --- oauth2-proxy, secrets, network, sizes -------------------------------------------------------


def oauth2_config(rendering) -> dict[str, str]:
    text = find(rendering, "ConfigMap", "oauth2-proxy-config", NS)["data"]["oauth2-proxy.cfg"]
    return dict(line.split(" = ", 1) for line in text.splitlines() if " = " in line and not line.startswith("#"))


def test_oauth2_proxy_checks_realm_tokens_with_keys_fetched_in_cluster(render):
    cfg = oauth2_config(render({"components": {"iam": {"options": {"realm": "city"}}}}))
    assert cfg["oidc_issuer_url"] == f'"https://auth.{DOMAIN}/realms/city"'
    assert cfg["oidc_jwks_url"] == (
        '"http://keycloak.alderbrook-iam.svc.cluster.local:8080/realms/city/protocol/openid-connect/certs"'
    )
    assert cfg["skip_oidc_discovery"] == "true"
    assert cfg["skip_jwt_bearer_tokens"] == "true"
    assert cfg["client_id"] == '"gateway"'


def test_oauth2_proxy_secrets_are_generated_and_read_from_files(render):
    rendering = render()
    secret = find(rendering, "Secret", "oauth2-proxy-secrets", NS)
    assert (
        secret["metadata"]["annotations"]["mims.io/generate"]
        == '{"client-secret": "shared:oidc-client-gateway", "cookie-secret": "cookie:32"}'
    )
    cfg = oauth2_config(rendering)
    assert cfg["client_secret_file"] == '"/etc/oauth2-proxy/secrets/client-secret"'
    assert cfg["cookie_secret_file"] == '"/etc/oauth2-proxy/secrets/cookie-secret"'
    pod = find(rendering, "Deployment", "oauth2-proxy", NS)["spec"]["template"]["spec"]
    [volume] = [v for v in pod["volumes"] if v["name"] == "secrets"]
    assert volume["secret"]["defaultMode"] == 0o440
    assert "env" not in pod["containers"][0]


def test_network_gateway_reaches_every_public_endpoint_and_oauth2_proxy_only_keycloak(render):
    rendering = render()
    egress = find(rendering, "NetworkPolicy", "allow-egress-gateway", NS)["spec"]["egress"]
    reached = {
        (r["to"][0]["podSelector"]["matchLabels"]["app.kubernetes.io/name"], p["port"])
        for r in egress
        for p in r["ports"]
    }
    assert {(e.workload, e.port) for _, e in public_endpoints(rendering)} | {
        ("oauth2-proxy", 4180),
        ("mosquitto", 1883),
    } == reached
    [rule] = find(rendering, "NetworkPolicy", "allow-egress-oauth2-proxy", NS)["spec"]["egress"]
    assert rule["to"][0]["namespaceSelector"]["matchLabels"] == {"kubernetes.io/metadata.name": "alderbrook-iam"}
    assert rule["ports"] == [{"protocol": "TCP", "port": 8080}]
    ingress = find(rendering, "NetworkPolicy", "allow-ingress-gateway", NS)["spec"]["ingress"]
    assert next(r for r in ingress if "from" not in r)["ports"] == [{"protocol": "TCP", "port": 8883}]
    assert {
        "ports": [{"protocol": "TCP", "port": 8080}, {"protocol": "TCP", "port": 8443}],
        "from": PUBLIC_ADDRESSES,
    } in ingress
    assert {
        "ports": [{"protocol": "TCP", "port": 1883}],
        "to": [
            {
                "podSelector": {"matchLabels": {"app.kubernetes.io/name": "mosquitto"}},
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "alderbrook-ingestion"}},
            }
        ],
    } in egress


@pytest.mark.parametrize("patch, ports", [({}, [8080]), (SECRET_TLS, [8080, 8443]), (with_ingress(), [])])
def test_callers_of_public_urls_may_reach_the_listeners_the_load_balancer_forwards_to(render, patch, ports):
    """Without the ingress controller the gateway's LoadBalancer is the city's public address: the broker
    (which fetches @context documents by public URL) lands on 8080, and on 8443 where TLS is served."""
    ingress = find(render(patch), "NetworkPolicy", "allow-ingress-gateway", NS)["spec"]["ingress"]
    broker = [
        p["port"]
        for r in ingress
        if "podSelector" in r.get("from", [{}])[0]
        if r["from"][0]["podSelector"]["matchLabels"]["app.kubernetes.io/name"] == "orion-ld"
        for p in r["ports"]
    ]
    assert broker == ports


PUBLIC_ADDRESSES = [
    {
        "ipBlock": {
            "cidr": "0.0.0.0/0",
            "except": ["10.0.0.0/8", "100.64.0.0/10", "169.254.0.0/16", "172.16.0.0/12", "192.168.0.0/16"],
        }
    },
    {"ipBlock": {"cidr": "::/0", "except": ["fc00::/7", "fe80::/10"]}},
]


def test_as_the_load_balancer_entry_point_the_gateway_takes_public_addresses_and_no_pod(render):
    ingress = find(render(SECRET_TLS), "NetworkPolicy", "allow-ingress-gateway", NS)["spec"]["ingress"]
    public = [r for r in ingress if r.get("from") == PUBLIC_ADDRESSES]
    assert public == [
        {"ports": [{"protocol": "TCP", "port": 8080}, {"protocol": "TCP", "port": 8443}], "from": PUBLIC_ADDRESSES}
    ]
    # Besides them only pods named by a chart's call (the broker fetching public URLs) and, on the
    # MQTT port alone, anyone (docs/components/ingestion.md).
    others = [r for r in ingress if r not in public]
    assert all("podSelector" in r["from"][0] for r in others if "from" in r)
    assert [r["ports"] for r in others if "from" not in r] == [[{"protocol": "TCP", "port": 8883}]]


def test_behind_the_ingress_controller_only_traefiks_pods_reach_the_gateway(render):
    ingress = find(render(with_ingress()), "NetworkPolicy", "allow-ingress-gateway", NS)["spec"]["ingress"]
    assert ingress == [
        {
            "ports": [{"protocol": "TCP", "port": 8080}],
            "from": [
                {
                    "podSelector": {"matchLabels": {"app.kubernetes.io/name": "traefik"}},
                    "namespaceSelector": {
                        "matchLabels": {"kubernetes.io/metadata.name": "alderbrook-ingress-controller"}
                    },
                }
            ],
        }
    ]


def test_standard_profile_runs_two_of_each_with_disruption_budgets(render):
    rendering = render({"budget": {"profile": "standard"}})
    for workload in ("gateway", "oauth2-proxy"):
        assert find(rendering, "Deployment", workload, NS)["spec"]["replicas"] == 2
        assert find(rendering, "PodDisruptionBudget", workload, NS)["spec"]["minAvailable"] == 1


def test_minimal_profile_sizes(render):
    rendering = render()
    sizes = {
        w: find(rendering, "Deployment", w, NS)["spec"]["template"]["spec"]["containers"][0]["resources"]
        for w in ("gateway", "oauth2-proxy")
    }
    assert sizes["gateway"] == {
        "requests": {"cpu": "100m", "memory": "64Mi"},
        "limits": {"cpu": "500m", "memory": "128Mi"},
    }
    assert sizes["oauth2-proxy"] == {
        "requests": {"cpu": "50m", "memory": "48Mi"},
        "limits": {"cpu": "200m", "memory": "96Mi"},
    }


# --- the real nginx -----------------------------------------------------------------------------


def loadable(conf: str) -> str:
    """`conf` as the checker's nginx accepts it. The image's nginx (nginx.org's Alpine package) has the
    stream module built in, so the rendered config loads no module; Debian's nginx, the checker here,
    builds it as a dynamic module (`--with-stream=dynamic`, package libnginx-mod-stream), which a
    config must load first."""
    if not re.search(r"^stream \{", conf, re.M):
        return conf
    build = subprocess.run([require_tool("nginx"), "-V"], capture_output=True, text=True, timeout=30).stderr
    if "--with-stream=dynamic" not in build:
        return conf
    module = Path(re.search(r"--modules-path=(\S+)", build).group(1)) / "ngx_stream_module.so"
    if not module.exists():
        pytest.fail(f"{module} is missing: install Debian's libnginx-mod-stream (scripts/test does)")
    return f"load_module {module};\n" + conf


def nginx_prefix(conf: str, folder: Path, tls: bool) -> Path:
    """What start.sh prepares in /tmp: nginx.conf, resolver.conf and, for tls, tls/tls.{crt,key} (a
    throwaway certificate for 127.0.0.1, which also serves as its own CA)."""
    (folder / "nginx.conf").write_text(loadable(conf))
    (folder / "resolver.conf").write_text("resolver 127.0.0.1 valid=10s;\n")
    if tls:
        openssl = shutil.which("openssl")
        if not openssl:
            pytest.skip("openssl is needed to make a throwaway certificate")
        (folder / "tls").mkdir()
        subprocess.run(
            [
                openssl,
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "1",
                "-subj",
                "/CN=test",
                "-addext",
                "subjectAltName=IP:127.0.0.1",
                "-keyout",
                str(folder / "tls" / "tls.key"),
                "-out",
                str(folder / "tls" / "tls.crt"),
            ],
            check=True,
            capture_output=True,
        )
    return folder / "nginx.conf"


@pytest.mark.scanners
@pytest.mark.parametrize(
    "patch",
    [
        {"tls": {"mode": "external"}},
        SECRET_TLS,
        {"tls": {"mode": "none"}, "components": {"gateway": {"options": {"cors_origins": ["https://a.example"]}}}},
        with_ingress(SECRET_TLS),
        CERT_MANAGER_TLS,
    ],
    ids=["external", "secret", "none-with-cors", "secret-behind-ingress-controller", "cert-manager"],
)
def test_nginx_accepts_the_generated_config(render, tmp_path, patch):
    nginx = require_tool("nginx")
    conf = nginx_prefix(nginx_conf(render(patch)), tmp_path, tls=patch.get("tls", {}).get("mode") == "secret")
    run = subprocess.run(
        [nginx, "-t", "-p", f"{tmp_path}/", "-c", str(conf), "-e", "stderr"], capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 0, run.stderr


@contextmanager
def running_nginx(conf: str, folder: Path, tls: bool = False):
    """nginx with `conf`, each listener (8080, 8443, 8883) moved to a free loopback port; yields
    {rendered port: local port}."""
    nginx = require_tool("nginx")
    ports = {port: free_port() for port in (8080, 8443, 8883)}
    for port, local in ports.items():
        conf = re.sub(rf"listen {port}\b", f"listen 127.0.0.1:{local}", conf)
    path = nginx_prefix(conf, folder, tls)
    proc = subprocess.Popen(
        [nginx, "-p", f"{folder}/", "-c", str(path), "-e", "stderr", "-g", "daemon off;"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_for_port(ports[8080], proc)
        yield ports
    finally:
        proc.terminate()
        proc.wait(timeout=10)


class Backend(BaseHTTPRequestHandler):
    """Any upstream API: echoes the method and the caller identity the gateway passed on."""

    def answer(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body = f"{self.command} user={self.headers.get('X-Forwarded-User')}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = answer

    def log_message(self, *args):
        pass


class FakeOauth2Proxy(BaseHTTPRequestHandler):
    """/oauth2/auth as oauth2-proxy answers it (AuthOnly and checkAllowedGroups in oauthproxy.go at
    v7.15.3): 401 unless the token is one of TOKEN_GROUPS, 403 when `allowed_groups` names none of
    its groups, else 202."""

    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        allowed = {g for v in urllib.parse.parse_qs(url.query).get("allowed_groups", []) for g in v.split(",")}
        groups = TOKEN_GROUPS.get(self.headers.get("Authorization", ""))
        if url.path != "/oauth2/auth" or groups is None:
            self.send_response(401)
        elif allowed and not allowed & groups:
            self.send_response(403)
        else:
            self.send_response(202)
            self.send_header("X-Auth-Request-User", "alice")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


# Valid tokens and the realm roles in their `groups` claim.
TOKEN_GROUPS = {"Bearer good": {"broker-writer", "ingestion-writer"}, "Bearer no-roles": set()}


@contextmanager
def serve_gateway(rendering, folder: Path):
    """The rendered gateway in a real nginx, every API replaced by Backend and oauth2-proxy by
    FakeOauth2Proxy; yields call(method, host, url, **headers) -> (status, headers, body)."""
    backend, auth = free_port(), free_port()
    servers_ = [
        ThreadingHTTPServer(("127.0.0.1", port), handler)
        for port, handler in ((backend, Backend), (auth, FakeOauth2Proxy))
    ]
    for server in servers_:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    conf = nginx_conf(rendering).replace(f'"oauth2-proxy.{NS}.svc.cluster.local:4180"', f'"127.0.0.1:{auth}"')
    conf = re.sub(r'"[a-z0-9-]+\.alderbrook-[a-z-]+\.svc\.cluster\.local:\d+"', f'"127.0.0.1:{backend}"', conf)

    try:
        with running_nginx(conf, folder) as ports:

            def call(method: str, host: str, url: str, **headers) -> tuple[int, dict, bytes]:
                conn = http.client.HTTPConnection("127.0.0.1", ports[8080], timeout=5)
                conn.request(
                    method,
                    url,
                    body=b"{}" if method in ("POST", "PUT", "PATCH") else None,
                    headers={"Host": host, **headers},
                )
                response = conn.getresponse()
                return response.status, dict(response.getheaders()), response.read()

            yield call
    finally:
        for server in servers_:
            server.shutdown()


@pytest.fixture
def gateway(render, tmp_path):
    """The small city's gateway (tls.mode external) in a real nginx (serve_gateway)."""
    with serve_gateway(render(), tmp_path) as call:
        yield call


@pytest.mark.scanners
def test_nginx_refuses_a_write_without_a_valid_token(gateway):
    api = f"api.{DOMAIN}"
    status, headers, _ = gateway("POST", api, "/ngsi-ld/v1/entities")
    assert status == 401 and headers["WWW-Authenticate"] == 'Bearer realm="alderbrook"'
    assert gateway("DELETE", api, "/ngsi-ld/v1/entities/x", Authorization="Bearer forged")[0] == 401
    assert (
        gateway("POST", api, "/ngsi-ld/v1/entities", Authorization="Bearer good", **{"X-Forwarded-User": "mallory"})[2]
        == b"POST user=alice"
    )
    assert gateway("GET", api, "/ngsi-ld/v1/entities", **{"X-Forwarded-User": "mallory"})[2] == b"GET user=None"
    assert gateway("POST", f"iot.{DOMAIN}", "/iot/json")[0] == 200
    assert gateway("GET", "elsewhere.example", "/")[0] == 404


@pytest.mark.scanners
def test_nginx_refuses_a_valid_token_without_the_write_role_of_the_api(gateway):
    """`good` holds broker-writer only: the broker takes its writes, the catalogue answers 403."""
    status, headers, body = gateway("POST", f"api.{DOMAIN}", "/ngsi-ld/v1/entities", Authorization="Bearer no-roles")
    assert status == 403 and json.loads(body)["error"] == "forbidden"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert gateway("POST", f"data.{DOMAIN}", "/api/3/action/package_create", Authorization="Bearer good")[0] == 403
    assert gateway("POST", f"api.{DOMAIN}", "/ngsi-ld/v1/entities", Authorization="Bearer good")[0] == 200
    assert gateway("GET", f"data.{DOMAIN}", "/api/3/action/package_list", Authorization="Bearer no-roles")[0] == 200


@pytest.mark.scanners
def test_nginx_refuses_provisioning_reads_without_a_valid_token(gateway):
    iot = f"iot.{DOMAIN}"
    for path in ("/iot/groups", "/iot/services", "/iot/devices", "/iot/devices/parking-1"):
        status, headers, body = gateway("GET", iot, path)
        assert status == 401 and headers["WWW-Authenticate"] == 'Bearer realm="alderbrook"', path
        assert b"needs a bearer token" in body
        assert gateway("GET", iot, path, Authorization="Bearer forged")[0] == 401
        assert gateway("GET", iot, path, Authorization="Bearer good")[2] == b"GET user=alice"
    assert gateway("POST", iot, "/iot/devices", Authorization="Bearer good")[2] == b"POST user=alice"
    assert gateway("GET", iot, "/iot/json?k=key1&i=parking-1&t=1")[0] == 200, "devices need no token"


@pytest.mark.scanners
def test_a_device_publishes_over_tls_through_the_gateway_to_the_real_mosquitto(render, tmp_path):
    """tls.mode secret without the ingress controller: nginx ends TLS on 8883 and streams MQTT to
    Mosquitto (rendered config and ACL), where the agent receives the measure."""
    rendering = render({**SECRET_TLS, "components": {"ingestion": {"options": {"device_users": ["parking-1"]}}}})
    passwords = {"iot-agent": "agent-secret", "parking-1": "device-secret"}
    data = find(rendering, "ConfigMap", "mosquitto-config", "alderbrook-ingestion")["data"]
    (tmp_path / "mosquitto").mkdir()
    (tmp_path / "nginx").mkdir()
    with running_mosquitto(data, passwords, tmp_path / "mosquitto") as (_, mosquitto):
        conf = nginx_conf(rendering).replace(
            '"mosquitto.alderbrook-ingestion.svc.cluster.local:1883"', f'"127.0.0.1:{mosquitto}"'
        )
        with running_nginx(conf, tmp_path / "nginx", tls=True) as ports:
            ca = tmp_path / "nginx" / "tls" / "tls.crt"
            agent = Client(mosquitto, "iot-agent", passwords["iot-agent"], "agent")
            agent.subscribe("$share/json//+/+/attrs")
            assert Client(ports[8883], "parking-1", "wrong", "parking-1", ca=ca).connack == NOT_AUTHORIZED
            device = Client(ports[8883], "parking-1", passwords["parking-1"], "parking-1", ca=ca)
            assert device.connack == 0
            assert device.publish("/key1/parking-1/attrs", b'{"occupied": true}') == 0
            assert agent.receive() == ("/key1/parking-1/attrs", b'{"occupied": true}')


@pytest.mark.scanners
def test_oauth2_proxy_accepts_the_generated_config(render, tmp_path):
    """oauth2-proxy's own checker (`--config-test`, v7.15+); scripts/test builds the chart's version."""
    binary = require_tool("oauth2-proxy")
    text = find(render(), "ConfigMap", "oauth2-proxy-config", NS)["data"]["oauth2-proxy.cfg"]
    (tmp_path / "client-secret").write_text(secrets.token_hex(16))
    (tmp_path / "cookie-secret").write_text(base64.urlsafe_b64encode(os.urandom(32)).decode())  # like cookie:32
    (tmp_path / "oauth2-proxy.cfg").write_text(text.replace("/etc/oauth2-proxy/secrets/", f"{tmp_path}/"))
    run = subprocess.run(
        [binary, f"--config={tmp_path / 'oauth2-proxy.cfg'}", "--config-test"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stdout + run.stderr


@pytest.mark.parametrize("patch", [{}, SECRET_TLS], ids=["external", "secret"])
def test_start_script_is_posix_sh_and_feeds_nginx_the_cluster_dns(render, patch):
    script = find(render(patch), "ConfigMap", "gateway-config", NS)["data"]["start.sh"]
    run = subprocess.run(["sh", "-n"], input=script, capture_output=True, text=True, timeout=30)
    assert run.returncode == 0, run.stderr
    assert "/etc/resolv.conf" in script and "> /tmp/resolver.conf" in script
    assert script.rstrip().endswith("exec nginx -p /tmp/ -c /tmp/nginx.conf -e stderr -g 'daemon off;'")
    pod = find(render(patch), "Deployment", "gateway", NS)["spec"]["template"]["spec"]
    assert pod["containers"][0]["command"] == ["/bin/sh", "/etc/mims/start.sh"]


@pytest.mark.scanners
def test_hidden_paths_of_an_endpoint_are_never_forwarded(render, tmp_path):
    """Scorpio's `createcache` would fetch any URL for anyone (a GET needs no token): 404 at the gateway,
    while the rest of the NGSI-LD API, and the longest-prefix route around it, still reach the broker."""
    rendering = render({"components": {"broker": {"implementation": "scorpio"}}})
    with serve_gateway(rendering, tmp_path) as call:
        api = f"api.{DOMAIN}"
        status, _, body = call("GET", api, "/ngsi-ld/v1/jsonldContexts/createcache/http%3A%2F%2F10.0.0.1%2F")
        assert status == 404 and b"not_found" in body
        assert call("GET", api, "/ngsi-ld/v1/jsonldContexts/createcache")[0] == 404
        assert call("GET", api, "/ngsi-ld/v1/jsonldContexts/")[2] == b"GET user=None"
        assert call("GET", api, "/ngsi-ld/v1/entities")[2] == b"GET user=None"
