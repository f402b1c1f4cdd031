"""The audit / drill readers of gearlift.report: tolerant of shapes, never crashing the report.

AUDIT_HOSTS mirrors what playbooks/audit.yml writes per host
({"summary": hardening_audit_summary, "controls": hardening_audit_results}); other report tests
import it.
"""

from __future__ import annotations

import json
from pathlib import Path

from gearlift.report.evidence import (
    load_audit,
    load_drills,
    matches_requirement,
    normalise_status,
    split_ids,
)


def _control(ident, cis, pci, title, status, detail, toggle="hardening_rule_x"):
    return {"id": ident, "cis": cis, "pci": pci, "title": title, "toggle": toggle, "status": status, "detail": detail}


#: per host, the document playbooks/audit.yml writes to reports/audit/<host>.json
AUDIT_HOSTS = {
    "app-1": {
        "summary": {
            "host": "app-1",
            "os": "Ubuntu 24.04",
            "benchmark": "CIS Ubuntu 24.04 v1.0.0",
            "container": False,
            "total": 5,
            "pass": 3,
            "fail": 1,
            "skipped": 1,
        },
        "controls": [
            _control("5.3.3.1.1", "5.3.3.1.1", "8.3.4", "pam_faillock deny is configured", "pass", "deny = 5"),
            _control(
                "5.1.20", "5.1.20", "2.2.6", "sshd PermitRootLogin is disabled", "pass", "sshd -T: permitrootlogin no"
            ),
            _control(
                "6.2.3.4",
                "6.2.3.4",
                "10.2.1.1, 10.2.1.4",
                "events that modify date and time are collected",
                "fail",
                "loaded rules lack key time-change",
            ),
            _control(
                "6.3.2", "6.3.2", "11.5.2", "filesystem integrity is regularly checked", "skipped", "aide not installed"
            ),
            _control("pci-8.2.8-tmout", "", "8.2.8", "shell idle timeout", "pass", "TMOUT=900"),
        ],
    },
    "app-2": {
        "summary": {"host": "app-2", "os": "Ubuntu 24.04", "benchmark": "CIS Ubuntu 24.04 v1.0.0", "container": "True"},
        "controls": [
            _control("5.3.3.1.1", "5.3.3.1.1", "8.3.4", "pam_faillock deny is configured", "pass", "deny = 5"),
            _control(
                "1.1.2.1.2",
                "1.1.2.1.2",
                "2.2.6",
                "nodev option set on /tmp",
                "skipped",
                "not applicable in a container: mount options",
            ),
        ],
    },
}


def write_audit_fixture(directory: Path) -> Path:
    """reports/audit/<host>.json as playbooks/audit.yml writes them (plus its .md, which is ignored)."""
    directory.mkdir(parents=True, exist_ok=True)
    for host, body in AUDIT_HOSTS.items():
        (directory / f"{host}.json").write_text(json.dumps(body, indent=2) + "\n")
        (directory / f"{host}.md").write_text(f"# Audit of {host}\n")
    return directory


def test_reads_the_audit_playbook_shape(tmp_path):
    audit = load_audit(write_audit_fixture(tmp_path / "audit"))
    assert [h.host for h in audit.hosts] == ["app-1", "app-2"]
    first = audit.hosts[0]
    assert (first.os, first.benchmark, first.container) == ("Ubuntu 24.04", "CIS Ubuntu 24.04 v1.0.0", False)
    assert (first.count("pass"), first.count("fail"), first.count("skipped")) == (3, 1, 1)
    assert audit.hosts[1].container is True  # "True" as a string is read too
    assert audit.problems == []
    failing = [c for c in audit.controls if c.status == "fail"]
    assert [(c.host, c.id, c.pci, c.detail) for c in failing] == [
        ("app-1", "6.2.3.4", ("10.2.1.1", "10.2.1.4"), "loaded rules lack key time-change")
    ]
    # requirement lookups: prefix at a dot boundary, across hosts
    assert {c.host for c in audit.for_requirement(["8.3.4"])} == {"app-1", "app-2"}
    assert [c.id for c in audit.for_requirement(["10.2"])] == ["6.2.3.4"]
    assert audit.for_requirement(["8.3.40"]) == []


def test_tolerates_other_shapes_and_bad_files(tmp_path):
    folder = tmp_path / "audit"
    folder.mkdir()
    # a bare list of controls, 'reason' instead of 'detail', other status words
    (folder / "web-a.json").write_text(
        json.dumps([{"id": "x1", "status": "PASSED", "pci": ["8.3.6"]}, {"id": "x2", "status": "n/a", "reason": "off"}])
    )
    # several hosts in one file
    (folder / "all.json").write_text(json.dumps({"hosts": {"db-a": {"results": [{"id": "y", "status": "failed"}]}}}))
    (folder / "broken.json").write_text("{not json")
    (folder / "odd.json").write_text(json.dumps({"summary": {}, "controls": "nope"}))
    (folder / "weird.json").write_text(json.dumps({"controls": [{"id": "z", "status": "maybe"}, "text"]}))
    audit = load_audit(folder)
    by_host = {h.host: h for h in audit.hosts}
    assert sorted(by_host) == ["db-a", "web-a", "weird"]
    assert [(c.id, c.status, c.detail) for c in by_host["web-a"].controls] == [
        ("x1", "pass", ""),
        ("x2", "skipped", "off"),
    ]
    assert by_host["db-a"].controls[0].status == "fail"
    problems = " | ".join(audit.problems)
    assert "broken.json: not readable as JSON" in problems
    assert "odd.json: no list of controls" in problems
    assert "weird.json: 1 control entries are not objects" in problems
    assert "weird.json: 1 control(s) with a status other than pass/fail/skipped" in problems


def test_missing_audit_directory_is_no_evidence(tmp_path):
    audit = load_audit(tmp_path / "nothing-here")
    assert audit.hosts == [] and audit.problems == []


def test_status_and_id_helpers():
    assert [normalise_status(s) for s in ("pass", "OK", "Failed", "skipped", "N/A", "weird")] == [
        "pass",
        "pass",
        "fail",
        "skipped",
        "skipped",
        "unknown",
    ]
    assert split_ids("10.2.1.1, 10.2.1.4") == ("10.2.1.1", "10.2.1.4")
    assert split_ids("PCI 1.3.1 / 1.3.2") == ("1.3.1", "1.3.2")
    assert split_ids("") == ()
    assert matches_requirement("8.3.4", "8.3") and matches_requirement("8.3.4", "8.3.4")
    assert not matches_requirement("8.3.40", "8.3.4")


def test_drill_figures(tmp_path):
    (tmp_path / "drills.json").write_text(
        json.dumps(
            {
                "drills": [
                    {"failure": "instance terminated", "rto_seconds": 41, "rpo_seconds": 0, "date": "2026-11-20"},
                    {"failure": "RDS failover (reboot with failover)", "rto_seconds": 95, "date": "2026-11-21"},
                    {"scenario": "restore after deletion", "measured_rto_s": 1800, "measured_rpo_s": 240},
                ],
                "migration": {"cutover_downtime_seconds": 48, "replication_lag_at_cutover_seconds": 0},
            }
        )
    )
    drills = load_drills(tmp_path)
    assert [(d.kind, d.rto_seconds, d.rpo_seconds) for d in drills.drills] == [
        ("instance", 41.0, 0.0),
        ("db", 95.0, None),
        ("deletion", 1800.0, 240.0),
    ]
    assert drills.migration == {"cutover_downtime_seconds": 48, "replication_lag_at_cutover_seconds": 0}
