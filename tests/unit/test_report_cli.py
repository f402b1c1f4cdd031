"""`python -m gearlift.report` end to end on small inventories: what changes the report, and bad
input giving a clear message with exit code 2 (never a traceback)."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap

import pytest

from gearlift.report.__main__ import main
from gearlift.report.repo import REPO_ROOT

HOSTS = """\
---
all:
  children:
    controller:
      hosts:
        localhost:
          ansible_connection: local
"""

MAIN = """\
---
gearlift_environment: staging
gearlift_project: shop
gearlift_region: us-east-1
gearlift_vpc_cidr: 10.30.0.0/16
gearlift_certificate_arn: "{{ lookup('ansible.builtin.env', 'GEARLIFT_CERTIFICATE_ARN') }}"
gearlift_instance_type: t3.medium
gearlift_asg_min_size: 2
gearlift_asg_desired_capacity: 2
gearlift_asg_max_size: 4
gearlift_db_instance_class: db.t3.medium
"""


def make_inventory(root, main=MAIN, with_plugin=True):
    inv = root / "inv"
    (inv / "group_vars" / "all").mkdir(parents=True)
    (inv / "hosts.yml").write_text(HOSTS)
    (inv / "group_vars" / "all" / "main.yml").write_text(main)
    if with_plugin:  # a dynamic source that must be left alone (it would query AWS)
        (inv / "fleet.aws.yml").write_text("plugin: gearlift.platform.fleet\nregions: [us-east-1]\n")
    return inv


def render(tmp_path, inv, *extra, loader="yaml"):
    out = tmp_path / "out"
    empty = tmp_path / "no-audit"
    empty.mkdir(exist_ok=True)
    code = main(["--inventory", str(inv), "--out", str(out), "--audit", str(empty), "--loader", loader, *extra])
    assert code == 0
    return (out / "solution-design.html").read_text(), (out / "solution-design.md").read_text()


def total(markdown):
    return re.search(r"Monthly, on-demand: \*\*\$([\d,.]+)\*\*", markdown).group(1)


def test_ansible_inventory_reads_the_settings_and_lookups_are_run_time(tmp_path, capsys):
    inv = make_inventory(tmp_path)
    html, markdown = render(tmp_path, inv, loader="ansible")
    assert "ansible-inventory --list (static sources only)" in html
    assert "EC2 t3.medium app instances" in markdown
    # the env lookup is neither resolved nor fatal
    assert "| `gearlift_certificate_arn` | (set at run time) |" in markdown
    assert (
        "`gearlift_certificate_arn` (set at run time): "
        "`{{ lookup('ansible.builtin.env', 'GEARLIFT_CERTIFICATE_ARN') }}`" in markdown
    )
    printed = capsys.readouterr().out
    assert "solution-design.html" in printed and "monthly: $" in printed


def test_changing_instance_type_or_count_changes_the_report(tmp_path):
    inv = make_inventory(tmp_path)
    _, base = render(tmp_path, inv)
    (inv / "group_vars" / "all" / "main.yml").write_text(
        MAIN.replace("gearlift_instance_type: t3.medium", "gearlift_instance_type: m6i.large")
    )
    _, bigger = render(tmp_path, inv)
    (inv / "group_vars" / "all" / "main.yml").write_text(
        MAIN.replace("gearlift_asg_desired_capacity: 2", "gearlift_asg_desired_capacity: 3")
    )
    _, more = render(tmp_path, inv)
    assert "EC2 m6i.large app instances" in bigger and "EC2 t3.medium" not in bigger
    # 2 x 730 h: t3.medium $60.74, m6i.large $140.16; 3 x 730 h of t3.medium: $91.10
    assert "| EC2 t3.medium app instances | 1,460.00 instance-hours" in base and "| $60.74 |" in base
    assert "| $140.16 |" in bigger
    assert "| EC2 t3.medium app instances | 2,190.00 instance-hours" in more and "| $91.10 |" in more
    assert len({total(base), total(bigger), total(more)}) == 3


def test_set_overrides_an_inventory_value(tmp_path):
    inv = make_inventory(tmp_path)
    _, markdown = render(tmp_path, inv, "--set", "gearlift_instance_type=t3.large")
    assert "EC2 t3.large app instances" in markdown


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            ("gearlift_instance_type: t3.medium", "gearlift_instance_type: t9.huge"),
            "'t9.huge' is not in the price table",
        ),
        (
            ("gearlift_db_instance_class: db.t3.medium", "gearlift_db_instance_class: db.z1.odd"),
            "'db.z1.odd' is not in",
        ),
        (("gearlift_region: us-east-1\n", ""), "gearlift_region is not set"),
        (
            ("gearlift_instance_type: t3.medium", "gearlift_instance_type: \"{{ lookup('env', 'X') }}\""),
            "gearlift_instance_type is only known at run time",
        ),
        (("gearlift_asg_max_size: 4", "gearlift_asg_max_size: lots"), "gearlift_asg_max_size must be a whole number"),
        (
            (
                "gearlift_db_instance_class",
                "gearlift_asg_peak_schedule: [{name: p, recurrence: '0 25 * * *', "
                "min_size: 2, max_size: 4, desired_capacity: 3}]\ngearlift_db_instance_class",
            ),
            "hour '25' is outside 0-23",
        ),
    ],
)
def test_bad_input_is_a_clear_error(tmp_path, capsys, change, message):
    inv = make_inventory(tmp_path, MAIN.replace(*change))
    code = main(["--inventory", str(inv), "--out", str(tmp_path / "out"), "--loader", "yaml"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("error: ") and message in err
    assert "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_bad_input_from_the_command_line_has_no_traceback(tmp_path):
    inv = make_inventory(tmp_path, MAIN.replace("gearlift_instance_type: t3.medium", "gearlift_instance_type: t9.huge"))
    proc = subprocess.run(
        [sys.executable, "-m", "gearlift.report", "--inventory", str(inv), "--out", str(tmp_path / "out")],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 2
    assert "error: gearlift_instance_type 't9.huge' is not in the price table" in proc.stderr
    assert "known: " in proc.stderr and "t3.medium" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_bad_paths_and_inventories(tmp_path, capsys):
    assert main(["--inventory", str(tmp_path / "missing"), "--out", str(tmp_path / "o")]) == 2
    assert "does not exist" in capsys.readouterr().err
    inv = make_inventory(tmp_path)
    assert main(["--inventory", str(inv / "fleet.aws.yml"), "--out", str(tmp_path / "o")]) == 2
    assert "dynamic inventory plugin config" in capsys.readouterr().err
    assert main(["--inventory", str(inv), "--out", str(tmp_path / "o"), "--audit", str(tmp_path / "nope")]) == 2
    assert "--audit" in capsys.readouterr().err
    (inv / "hosts.yml").write_text(HOSTS.replace("controller", "somebody"))
    assert main(["--inventory", str(inv), "--out", str(tmp_path / "o"), "--loader", "yaml"]) == 2
    assert "no host in group 'controller'" in capsys.readouterr().err
    assert main(["--inventory", str(inv), "--out", str(tmp_path / "o"), "--set", "novalue"]) == 2
    assert "--set expects KEY=VALUE" in capsys.readouterr().err


def test_unreadable_audit_files_are_listed_not_fatal(tmp_path):
    inv = make_inventory(tmp_path)
    audit = tmp_path / "audit"
    audit.mkdir()
    (audit / "app-1.json").write_text("{truncated")
    out = tmp_path / "out"
    assert main(["--inventory", str(inv), "--out", str(out), "--audit", str(audit), "--loader", "yaml"]) == 0
    assert "app-1.json: not readable as JSON" in (out / "solution-design.html").read_text()


def test_yaml_fallback_and_ansible_inventory_agree(tmp_path):
    inv = make_inventory(
        tmp_path,
        MAIN
        + textwrap.dedent("""\
        gearlift_az_count: 3
        gearlift_nat_mode: per_az
        gearlift_interface_endpoints: [ssm, logs]
        """),
    )
    _, via_yaml = render(tmp_path, inv, loader="yaml")
    _, via_ansible = render(tmp_path, inv, loader="ansible")

    def strip(text):
        return re.sub(r"Generated .*|- Note: .*", "", text)

    assert strip(via_yaml) == strip(via_ansible)
    assert "NAT gateways (per_az) | 3 x 730 h" in via_yaml


def test_the_report_states_the_session_mode_and_the_carts_a_lost_host_costs(tmp_path):
    inv = make_inventory(tmp_path)
    html, sticky = render(tmp_path, inv)
    assert "- Sessions: sticky - carts live in each app host's memory" in sticky
    assert "losing a host loses the carts of every session on it" in sticky
    assert "| App instance: the carts in its sessions | the carts of every session on that host |" in sticky
    assert 'id="session-mode">Sessions: sticky' in html
    _, redis = render(tmp_path, inv, "--set", "gearlift_session_store=redis")
    assert "- Sessions: redis - carts live in the ElastiCache session store (TLS, AUTH, 2 nodes, Multi-AZ)" in redis
    assert "losing an app host loses no cart" in redis
    assert "| App instance: the carts in its sessions | 0 carts (session store) |" in redis
    assert "ElastiCache node(s) are not in the price table" in redis
    _, unstuck = render(tmp_path, inv, "--set", "gearlift_tg_stickiness=false")
    assert "stickiness is OFF" in unstuck


def test_the_peak_bench_figures_and_plot_are_in_the_report(tmp_path):
    from gearlift import peak

    side = {
        "rps": [12.5, 74.0],
        "p50_ms": [8.0, 30.0],
        "p95_ms": [20.0, 410.0],
        "p99_ms": [30.0, 900.0],
        "error_rate": [0.0, 0.0125],
        "hosts_in_service": [1, 1],
        "cost_per_hour_usd": [None, None],
        "hosts_at_start": 1,
    }
    summary = {
        "date": "2026-12-05 10:00 UTC",
        "load_multiple": [0.5, 3],
        "peak_rps": 25,
        "today": side,
        "target": {**side, "p95_ms": [15.0, 95.0], "error_rate": [0.0, 0.0], "hosts_in_service": [2, 4]},
        "scale_out_seconds": 48.5,
        "scale_in_failed_requests": 0,
        "config": {"cpu_factor": 0.25, "time_scale": 6},
    }
    summary["verdict"] = peak.verdict(summary)
    data, _ = peak.write(summary, tmp_path / "peak")
    html, md = render(tmp_path, make_inventory(tmp_path), "--peak", str(data))
    assert "Peak load, measured (2026-12-05 10:00 UTC)" in md
    assert "| 3x | 74.0 | 410.0 | 1.25 % | 74.0 | 95.0 | 0.00 % | 4 |" in md
    assert "Scale-out: 48.5 s" in md and "![p95 latency per load step](peak.svg)" in md
    assert (tmp_path / "out" / "peak.svg").read_text().startswith("<svg")
    assert "<polyline" in html and "Peak load, measured" in html


def test_a_peak_file_that_is_not_a_bench_summary_is_named(tmp_path):
    bad = tmp_path / "summary.json"
    bad.write_text('{"drills": []}')
    html, _ = render(tmp_path, make_inventory(tmp_path), "--peak", str(bad))
    assert "no load_multiple list" in html
