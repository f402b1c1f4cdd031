"""The PCI DSS matrix of gearlift.report: every control it names exists in the repository, every
requirement row is linked or says why it is out of scope, and the evidence status is right."""

from __future__ import annotations

import copy
import re

import pytest

from gearlift.report import pci, repo
from gearlift.report.evidence import load_audit
from tests.unit.test_report_audit import write_audit_fixture

INDEX = repo.scan_controls(repo.REPO_ROOT)
MATRIX = pci.load_matrix()


def _tokens(req: str) -> set[str]:
    return set(re.findall(r"\d+(?:\.\d+)*(?:\.x)?", req))


def test_every_control_named_in_the_matrix_exists():
    """Fails when a tag (roles/*/tasks/*.yml) or a "PCI x.y.z |" playbook task named in
    src/gearlift/report/data/pci_matrix.json is not in the repository any more."""
    assert pci.missing_references(MATRIX, INDEX) == []


def test_every_row_is_linked_or_plainly_out_of_scope():
    assert pci.unlinked_rows(MATRIX) == []
    for row in MATRIX["rows"]:
        if row["scope"] == "out_of_scope":
            assert not row["controls"], row["req"]


def test_the_brief_and_provisioning_requirements_are_all_rows():
    covered = set().union(*(_tokens(row["req"]) for row in MATRIX["rows"]))
    brief_section_3 = {"2.2.1", "5.2", "5.3", "6.3.3", "8.2.8", "8.3.4", "8.3.6", "8.3.9", "10.2.1.x", "10.3"}
    brief_section_3 |= {"10.5.1", "10.6.x", "11.5.2"}
    provisioning = {"1.2.1", "1.3.1", "1.3.2", "3.5.1", "3.6.1", "4.2.1", "6.4.2", "7.2.1", "7.2.2", "10.7.1"}
    provisioning |= {"11.5.1", "12.10.1", "12.1"}
    assert brief_section_3 - covered == set()
    assert provisioning - covered == set()


def test_the_scan_finds_real_tags_and_tasks_and_a_bogus_reference_is_reported():
    # a sample of what the roles / playbooks hold today
    assert INDEX.has_tag("pci_8.3.4") and INDEX.has_tag("pci_11.5.2") and INDEX.has_tag("cloudwatch_agent")
    assert INDEX.has_task("1.3.1") and INDEX.has_task("6.4.2") and INDEX.has_task("12.10.1")
    assert INDEX.has_task("11.5.1")  # from "PCI 10.7.1 / 11.5.1 | GuardDuty, ..."
    assert any("playbooks/security.yml" in path for path, _ in INDEX.pci_tasks["1.3.1"])
    broken = copy.deepcopy(MATRIX)
    broken["rows"][0]["controls"].append({"tag": "pci_99.9.9"})
    broken["rows"][1]["controls"].append({"task": "99.9.9"})
    assert pci.missing_references(broken, INDEX) == [
        f"{broken['rows'][0]['req']}: tag pci_99.9.9",
        f"{broken['rows'][1]['req']}: playbook task 'PCI 99.9.9'",
    ]
    broken["rows"][2]["controls"] = []
    broken["rows"][3]["scope"] = "out_of_scope"
    broken["rows"][3]["note"] = ""
    assert pci.unlinked_rows(broken) == [
        f"{broken['rows'][2]['req']}: no implementing control",
        f"{broken['rows'][3]['req']}: out of scope without saying why",
    ]


def test_pci_ids_of_task_names():
    assert repo.pci_ids_of_task("PCI 1.3.1 | ALB security group") == ["1.3.1"]
    assert repo.pci_ids_of_task("CIS 4.2.6 | PCI 1.3.1 | ufw rules") == ["1.3.1"]
    assert repo.pci_ids_of_task("PCI 10.7.1 / 11.5.1 | GuardDuty") == ["10.7.1", "11.5.1"]
    assert repo.pci_ids_of_task("Edge | find the VPC") == []


@pytest.fixture
def rows(tmp_path):
    audit = load_audit(write_audit_fixture(tmp_path / "audit"))
    effective = {
        "gearlift_waf_associate": False,
        "gearlift_ssh_ingress_cidrs": [],
        "gearlift_db_extra_ingress_cidrs": [],
        "gearlift_log_retention_days": 365,
        "gearlift_app_secret_rotation_days": 120,
    }
    return {row.req: row for row in pci.build_matrix(MATRIX, INDEX, audit, effective)}


def test_evidence_status_from_the_audit(rows):
    assert rows["8.3.4"].status == "pass"
    assert rows["8.3.4"].counts() == {"pass": 2, "fail": 0, "skipped": 0}  # both hosts
    assert rows["10.2.1.x"].status == "fail"  # 6.2.3.4 fails on app-1
    assert rows["11.5.2"].status == "skipped"
    assert rows["2.2.1 - 2.2.7"].status == "pass"  # 1 pass + 1 skipped
    assert rows["8.2.8"].status == "pass"
    assert rows["6.4.1 / 6.4.2"].status == "no evidence"
    assert rows["3.2 - 3.4"].status == "out of scope"
    assert rows["12.1 - 12.9"].status == "out of scope"


def test_inventory_settings_checks(rows):
    waf = {s.var: s for s in rows["6.4.1 / 6.4.2"].settings}["gearlift_waf_associate"]
    assert (waf.actual, waf.ok) == ("false", False)
    ssh = {s.var: s for s in rows["1.3.1"].settings}["gearlift_ssh_ingress_cidrs"]
    assert ssh.ok is True
    assert rows["10.5.1"].settings[0].ok is True
    rotation = rows["8.3.9"].settings[0]
    assert (rotation.actual, rotation.expect, rotation.ok) == ("120", "<= 90", False)
