"""The MIM1 probes against a broker that answers as ETSI GS CIM 009 V1.9.1 prescribes
(tests/fixtures/verify/ngsi-ld.yaml), and against brokers that answer one operation wrongly. No
broker runs on these machines (docs/mims.md): these exchanges are the probes' only counterpart."""

from __future__ import annotations

from mims.verify.probes import context
from mims.verify.report import Status
from tests.verify.conftest import load_exchanges, run_family


def run(platform, exchanges):
    return run_family(platform, context, exchanges)


def test_every_probe_passes_against_a_broker_that_follows_the_specification(platform):
    results, replay = run(platform, load_exchanges("ngsi-ld"))
    assert {name: r.status for name, r in results.items()} == dict.fromkeys(results, Status.PASS)
    assert len(results) == 14  # 13 MIM1 probes and MIM2's expansion with the city's @context
    assert not replay.unused, [e["id"] for e in replay.unused]


def test_a_create_without_201_and_location_fails_and_its_followers_are_skipped(platform):
    results, _ = run(platform, load_exchanges("ngsi-ld", **{"create-inline": {"status": 200}}))
    create = results["create entity (application/ld+json, @context in the body)"]
    assert create.status is Status.FAIL and "HTTP 200" in create.message and "6.4.3.1" in create.message
    retrieve = results["retrieve entity as application/ld+json: @context in the body"]
    assert (
        retrieve.status is Status.SKIP and "needs `create entity" in retrieve.message and "failed" in retrieve.message
    )


def test_an_error_that_is_not_problem_details_fails(platform):
    html = {"status": 409, "headers": {"Content-Type": "text/html"}, "body": "<h1>Conflict</h1>"}
    results, _ = run(platform, load_exchanges("ngsi-ld", **{"create-existing": html}))
    probe = results["create an existing entity: 409 AlreadyExists as ProblemDetails"]
    assert probe.status is Status.FAIL and "text/html" in probe.message and "5.5.3" in probe.message


def test_a_json_answer_without_the_context_link_fails(platform):
    exchanges = load_exchanges("ngsi-ld")
    [retrieve] = [e for e in exchanges if e["id"] == "retrieve-json"]
    del retrieve["response"]["headers"]["Link"]
    results, _ = run(platform, exchanges)
    probe = results["retrieve entity as application/json: @context in a Link header"]
    assert probe.status is Status.FAIL and "no Link header" in probe.message


def test_a_broker_that_ignores_q_fails_the_attribute_query(platform):
    exchanges = load_exchanges("ngsi-ld")
    [everything] = [e["response"] for e in exchanges if e["id"] == "query-type"]
    [q] = [e for e in exchanges if e["id"] == "query-q"]
    q["response"] = everything
    results, _ = run(platform, exchanges)
    probe = results["query entities by attribute (q)"]
    assert probe.status is Status.FAIL and "q=temperature>15" in probe.message


def test_an_upsert_that_does_not_list_the_created_entity_fails(platform):
    results, _ = run(platform, load_exchanges("ngsi-ld", upsert={"status": 204}))
    probe = results["batch upsert"]
    assert probe.status is Status.FAIL and "HTTP 204" in probe.message and "6.15.3.1" in probe.message


def test_a_history_without_the_updated_value_fails(platform):
    exchanges = load_exchanges("ngsi-ld")
    [temporal] = [e for e in exchanges if e["id"] == "temporal"]
    temporal["response"]["json"]["temperature"] = temporal["response"]["json"]["temperature"][1:]
    results, _ = run(platform, exchanges)
    probe = results["temporal evolution of the entity"]
    assert probe.status is Status.FAIL and "lack 25" in probe.message


def test_without_the_citys_context_a_broker_that_shortens_the_term_anyway_fails(platform):
    exchanges = load_exchanges("ngsi-ld")
    [shortened] = [e["response"] for e in exchanges if e["id"] == "retrieve-city-terms"]
    [plain] = [e for e in exchanges if e["id"] == "retrieve-json-core"]
    plain["response"] = shortened
    results, _ = run(platform, exchanges)
    probe = results["the broker expands and compacts terms with the city's @context"]
    assert probe.status is Status.FAIL and "context/ats#description_short" in probe.message


def test_an_interrupted_runs_entities_are_deleted_before_the_probes_start(platform):
    """The sweep asks for every entity of the probe type and deletes each (here one of run 9f9f9f)."""
    leftover = "urn:ngsi-ld:MimsVerifyProbe:9f9f9f-2"
    exchanges = load_exchanges("ngsi-ld")
    [sweep] = [e for e in exchanges if e["id"] == "sweep"]
    sweep["response"]["json"] = [{"id": leftover, "type": "MimsVerifyProbe"}]
    delete = {
        "id": "delete-leftover",
        "request": {"method": "DELETE", "host": "api", "path": f"/ngsi-ld/v1/entities/{leftover}"},
        "response": {"status": 204},
    }
    p = platform([sweep, delete])
    context.sweep(p)
    assert not p.public.unused
