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


def test_every_readback_check_named_in_the_matrix_exists():
    """Fails when a readback check (path::test_function) named in pci_matrix.json was renamed or removed."""
    assert pci.missing_readbacks(MATRIX, repo.REPO_ROOT) == []


def test_issue_17_controls_are_linked_to_their_requirement_and_read_back():
    """Each PCI control of the AWS-layer work (issue 17) sits on its requirement row, names the
    playbook task that implements it and the provisioning check that reads it back."""
    rows = {row["req"]: row for row in MATRIX["rows"]}
    checker = "tests/integration/test_provision.py::"
    expected = {
        "7.2.1 / 7.2.2": ({"task": "7.2.2"}, "test_instance_role_is_inline_least_privilege"),
        "10.3": ({"task": "10.3.3"}, "test_trail_delivered_to_cloudwatch_logs_with_cis_filters_and_alarms"),
        "10.4": ({"task": "10.4.1"}, "test_findings_routed_to_the_topic_only_from_this_accounts_rules"),
        "10.5.1": ({"task": "10.5.1"}, "test_every_log_group_the_agent_ships_to_exists_encrypted"),
        "1.4.4": ({"task": "1.4.4"}, "test_account_public_access_block_password_policy_and_rds_events"),
        "8.3.6 / 8.3.7": ({"task": "8.3.6"}, "test_account_public_access_block_password_policy_and_rds_events"),
        "8.3.9": ({"task": "8.3.9"}, "test_account_public_access_block_password_policy_and_rds_events"),
        "10.7.1": ({"task": "10.7.1"}, "test_account_public_access_block_password_policy_and_rds_events"),
        "1.2.1": ({"task": "1.2.1"}, "test_default_security_group_has_no_rules"),
    }
    for req, (control, check) in expected.items():
        assert control in rows[req]["controls"], req
        assert checker + check in rows[req]["readback"], req
    csp = rows["6.4.3 / 11.6.1"]
    assert csp["scope"] == "shared" and {"tag": "pci_6.4.3"} in csp["controls"]
    assert any(r.startswith("molecule/apache/tests/test_apache.py::") for r in csp["readback"])
    assert INDEX.has_task("10.4.1") and INDEX.has_task("1.4.4") and INDEX.has_tag("pci_6.4.3")


def test_a_renamed_or_malformed_readback_is_reported(tmp_path):
    (tmp_path / "checks.py").write_text("def test_there():\n    pass\n\nasync def test_async():\n    pass\n")
    matrix = {
        "rows": [
            {"req": "1.1", "readback": ["checks.py::test_there", "checks.py::test_async", "checks.py::test_gone"]},
            {"req": "1.2", "readback": ["checks.py", "/etc/passwd::x", "nothing.py::test_x"]},
        ]
    }
    assert pci.missing_readbacks(matrix, tmp_path) == [
        "1.1: readback checks.py::test_gone",
        "1.2: readback 'checks.py' is not 'relative/path.py::test_function'",
        "1.2: readback '/etc/passwd::x' is not 'relative/path.py::test_function'",
        "1.2: readback nothing.py::test_x",
    ]


def test_build_matrix_carries_the_readback_checks(rows):
    assert "tests/integration/test_provision.py::test_instance_role_is_inline_least_privilege" in (
        rows["7.2.1 / 7.2.2"].readback
    )
    assert rows["3.2 - 3.4"].readback == []
