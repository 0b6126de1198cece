"""The report: results grouped by MIM in the MIMs' order, JSON and JUnit XML as CI servers read it."""

from __future__ import annotations

from xml.etree import ElementTree

from mims.verify.report import Report, Result, Status


def report() -> Report:
    return Report(
        "city.yaml",
        [
            Result("MIM6", "gateway", "a write without a token gets 401", Status.FAIL, "HTTP 200 (expected 401)", 0.5),
            Result("MIM1", "broker", "create entity", Status.SKIP, "replicas: 0"),
            Result("MIM2", "data-models", "@context served", Status.PASS, "", 0.25),
        ],
    )


def test_sections_follow_the_mims_order_and_name_both_numberings():
    sections = report().sections()
    assert [mim.id for mim, _ in sections] == ["MIM1", "MIM2", "MIM6"]
    assert sections[0][0].title == (
        "MIM1 Context Information Management (OASC: MIM0 Accessing Data, MIM2 Representing Data)"
    )


def test_one_failure_makes_the_report_not_ok_and_is_counted():
    r = report()
    assert not r.ok and [x.probe for x in r.failed] == ["a write without a token gets 401"]
    assert r.counts() == {"pass": 1, "fail": 1, "skip": 1}
    data = r.as_dict()
    assert data["ok"] is False and [m["id"] for m in data["mims"]] == ["MIM1", "MIM2", "MIM6"]
    assert data["mims"][2]["results"][0]["status"] == "fail"


def test_junit_has_a_suite_per_mim_with_failures_and_skips():
    root = ElementTree.fromstring(report().junit())
    assert (root.tag, root.get("tests"), root.get("failures"), root.get("skipped")) == ("testsuites", "3", "1", "1")
    suites = {s.get("name").split()[0]: s for s in root}
    [case] = suites["MIM6"]
    assert case.get("classname") == "MIM6.gateway" and case.find("failure").get("message") == "HTTP 200 (expected 401)"
    assert suites["MIM1"][0].find("skipped").get("message") == "replicas: 0"
    assert suites["MIM2"][0].find("failure") is None and suites["MIM2"].get("time") == "0.250"
