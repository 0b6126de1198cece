"""What `mims verify` found: one result per probe, grouped by MIM, as a table, JSON or JUnit XML."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import StrEnum
from xml.etree import ElementTree


class Status(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    SKIP = "skip"


@dataclass(frozen=True)
class Mim:
    """A report section: a MIM as the MIMs Plus list (v5.0) names it, the MIMs of OASC's current
    numbering it belongs to, and the specification its probes check (docs/mims.md)."""

    id: str
    name: str
    oasc: tuple[str, ...]
    specification: str

    @property
    def title(self) -> str:
        current = f" (OASC: {', '.join(self.oasc)})" if self.oasc else ""
        return f"{self.id} {self.name}{current}"


MIMS = {
    mim.id: mim
    for mim in (
        Mim(
            "MIM1",
            "Context Information Management",
            ("MIM0 Accessing Data", "MIM2 Representing Data"),
            "ETSI GS CIM 009 (NGSI-LD API)",
        ),
        Mim("MIM2", "Shared Data Models", ("MIM2 Representing Data",), "JSON-LD 1.1 @context documents"),
        Mim(
            "MIM3",
            "Ecosystem Transactions",
            ("MIM2 Representing Data", "MIM3 Exchanging Data"),
            "DCAT-AP 3.0.0 (SHACL shapes), CKAN Action API",
        ),
        Mim("MIM5", "Fair AI", ("MIM5 Fair & Transparent AI",), "Eurocities Algorithmic Transparency Standard 0.3.1"),
        Mim(
            "MIM6",
            "Security",
            ("MIM6 Securing Data",),
            "RFC 6750 bearer tokens (401, 403), TLS, Kubernetes NetworkPolicy",
        ),
        Mim("ops", "Operations", (), "Prometheus targets and rules"),
    )
}


@dataclass
class Result:
    mim: str
    component: str
    probe: str
    status: Status
    message: str = ""
    seconds: float = 0.0

    def as_dict(self) -> dict:
        return asdict(self) | {"status": self.status.value}


@dataclass
class Report:
    blueprint: str
    results: list[Result] = field(default_factory=list)

    @property
    def failed(self) -> list[Result]:
        return [r for r in self.results if r.status is Status.FAIL]

    @property
    def ok(self) -> bool:
        return not self.failed

    def counts(self) -> dict[str, int]:
        return {s.value: sum(r.status is s for r in self.results) for s in Status}

    def sections(self) -> list[tuple[Mim, list[Result]]]:
        """Results per MIM, in the MIMs' order."""
        return [(mim, found) for mim in MIMS.values() if (found := [r for r in self.results if r.mim == mim.id])]

    def as_dict(self) -> dict:
        return {
            "blueprint": self.blueprint,
            "ok": self.ok,
            "counts": self.counts(),
            "mims": [
                {"id": mim.id, "name": mim.name, "oasc": list(mim.oasc), "specification": mim.specification}
                | {"results": [r.as_dict() for r in found]}
                for mim, found in self.sections()
            ],
        }

    def junit(self) -> str:
        """JUnit XML as CI servers read it: one test suite per MIM, one test case per probe."""
        counts = self.counts()
        suites = ElementTree.Element(
            "testsuites",
            name="mims verify",
            tests=str(len(self.results)),
            failures=str(counts["fail"]),
            skipped=str(counts["skip"]),
            time=f"{sum(r.seconds for r in self.results):.3f}",
        )
        for mim, found in self.sections():
            suite = ElementTree.SubElement(
                suites,
                "testsuite",
                name=mim.title,
                tests=str(len(found)),
                failures=str(sum(r.status is Status.FAIL for r in found)),
                skipped=str(sum(r.status is Status.SKIP for r in found)),
                time=f"{sum(r.seconds for r in found):.3f}",
            )
            for r in found:
                case = ElementTree.SubElement(
                    suite, "testcase", classname=f"{mim.id}.{r.component}", name=r.probe, time=f"{r.seconds:.3f}"
                )
                if r.status is Status.FAIL:
                    ElementTree.SubElement(case, "failure", message=r.message).text = r.message
                elif r.status is Status.SKIP:
                    ElementTree.SubElement(case, "skipped", message=r.message)
        ElementTree.indent(suites)
        return '<?xml version="1.0" encoding="UTF-8"?>\n' + ElementTree.tostring(suites, encoding="unicode") + "\n"
