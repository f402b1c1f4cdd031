"""Cost arithmetic of gearlift.report against a hand calculation, and the capacity schedule."""

from __future__ import annotations

from pathlib import Path

import pytest

from gearlift.report import cost, repo
from gearlift.report.errors import ReportError
from gearlift.report.inputs import design_inputs
from gearlift.report.inventory import Inventory
from gearlift.report.schedule import ScheduledAction, capacity_profile, firing_minutes

GUARDS = repo.load_guards(repo.REPO_ROOT)

#: usage assumptions fixed here, so a change of the packaged defaults does not move the expectation
USAGE = {
    "alb_average_lcu": 2,
    "requests_million_per_month": 10,
    "nat_gb_per_month": 100,
    "endpoint_gb_per_month": 20,
    "logs_gb_per_instance_month": 2,
    "flow_logs_gb_per_month": 5,
    "waf_logs_gb_per_million_requests": 1,
    "data_out_gb_per_month": 300,
    "backup_storage_factor": 1.5,
    "secrets_count": 3,
    "kms_keys": 3,
    "alb_public_ipv4_per_az": 1,
}

SETTINGS = {
    "gearlift_environment": "staging",
    "gearlift_project": "shop",
    "gearlift_region": "us-east-1",
    "gearlift_vpc_cidr": "10.20.0.0/16",
    "gearlift_az_count": 3,
    "gearlift_nat_mode": "per_az",
    "gearlift_interface_endpoints": ["ssm", "ssmmessages", "ec2messages"],
    "gearlift_instance_type": "t3.medium",
    "gearlift_asg_min_size": 2,
    "gearlift_asg_desired_capacity": 2,
    "gearlift_asg_max_size": 6,
    # weekdays 09:00-17:00 at 4 instances, else 2
    "gearlift_asg_peak_schedule": [
        {"name": "day", "recurrence": "0 9 * * 1-5", "min_size": 4, "max_size": 6, "desired_capacity": 4},
        {"name": "night", "recurrence": "0 17 * * 1-5", "min_size": 2, "max_size": 6, "desired_capacity": 2},
    ],
    "gearlift_root_volume_gb": 20,
    "gearlift_db_instance_class": "db.m6g.large",
    "gearlift_db_multi_az": True,
    "gearlift_db_allocated_storage": 100,
    "gearlift_backup_copy_region": "eu-central-1",
    "gearlift_log_retention_days": 365,
    "gearlift_flow_logs": True,
}


def inventory(**changes):
    settings = {**SETTINGS, **changes}
    return Inventory(Path("/tmp/inv"), "localhost", settings, {}, "test", [])


def table():
    return cost.load_prices().with_assumptions(USAGE)


def test_capacity_hours_by_hand():
    # 2027 has 261 weekdays (365 = 52 weeks + Friday 1 January). Peak: 8 h x 2 extra instances x 261 days
    # = 4176 extra instance-hours a year = 348 a month; baseline 2 x 730 = 1460 -> 1808 instance-hours / month.
    actions = [ScheduledAction("day", "0 9 * * 1-5", 4), ScheduledAction("night", "0 17 * * 1-5", 2)]
    profile = capacity_profile(2, actions)
    assert len(firing_minutes("0 9 * * 1-5")) == 261
    assert (profile.baseline, profile.peak) == (2, 4)
    assert profile.instance_hours(730) == pytest.approx(1808)
    assert profile.peak_hours_per_year == pytest.approx(4176)
    # the rehearsal's daily 17:00-22:00 peak at 3 instances: (19 h x 2 + 5 h x 3) / 24 = 53 / 24
    daily = [ScheduledAction("peak", "0 17 * * *", 3), ScheduledAction("after", "0 22 * * *", 2)]
    assert capacity_profile(2, daily).average == pytest.approx(53 / 24)
    # no schedule: the desired capacity all the time
    assert capacity_profile(3, []).instance_hours(730) == pytest.approx(3 * 730)


def test_monthly_cost_matches_the_hand_calculation():
    inputs = design_inputs(inventory(), GUARDS)
    estimate = cost.estimate(inputs, table(), waf_rules=5)
    hours = 1808  # see test_capacity_hours_by_hand
    average = hours / 730
    logs_gb = 2 * average + 5 + 1 * 10  # hosts + flow logs + WAF logs
    expected = {
        "EC2 t3.medium app instances": 1808 * 0.0416,  # 75.2128
        "EBS gp3 root volumes": average * 20 * 0.08,  # 3.9627
        "RDS MySQL db.m6g.large Multi-AZ": 730 * 0.304,  # 221.92
        "RDS gp3 storage (Multi-AZ)": 100 * 0.23,  # 23.00
        "AWS Backup storage (us-east-1 + eu-central-1)": 100 * 1.5 * 2 * 0.05,  # 15.00
        "Secrets Manager secrets": 3 * 0.40,  # 1.20
        "KMS customer managed keys": (3 + 1) * 1.0,  # 4.00 (one more in the copy region)
        "NAT gateways (per_az)": 3 * 730 * 0.045 + 100 * 0.045,  # 98.55 + 4.50
        "Public IPv4 addresses (NAT + ALB)": (3 + 3) * 730 * 0.005,  # 21.90
        "Interface VPC endpoints": 3 * 3 * 730 * 0.01 + 20 * 0.01,  # 65.70 + 0.20
        "Data transfer out to the internet": (300 - 100) * 0.09,  # 18.00
        "Application Load Balancer": 730 * 0.0225 + 2 * 730 * 0.008,  # 16.425 + 11.68
        "AWS WAF web ACL": 5 + 5 * 1 + 10 * 0.60,  # 16.00
        "CloudWatch Logs ingestion": logs_gb * 0.50,  # 9.9767
        "CloudWatch Logs storage (steady state)": logs_gb * 12 * 0.03,  # 7.1832
    }
    got = {line.item: line.usd for line in estimate.lines}
    assert got == pytest.approx(expected, abs=1e-4)
    total = sum(expected.values())
    # 75.2128 + 3.9627 + 221.92 + 23 + 15 + 1.2 + 4 + 103.05 + 21.9 + 65.9 + 18 + 28.105 + 16 + 9.9767 + 7.1832
    assert total == pytest.approx(614.4105, abs=1e-3)
    assert estimate.total_on_demand == pytest.approx(total, abs=1e-4)
    # Savings Plan: 27 % off the 1460 baseline hours, the 348 peak hours stay on-demand
    ec2_sp = 1460 * 0.0416 * (1 - 0.27) + 348 * 0.0416  # 44.33696 + 14.4768 = 58.81376
    assert estimate.ec2_savings_plan == pytest.approx(ec2_sp)
    assert estimate.total_savings_plan == pytest.approx(total - 1808 * 0.0416 + ec2_sp, abs=1e-4)


def test_single_az_database_and_single_nat_by_hand():
    inputs = design_inputs(
        inventory(gearlift_db_multi_az=False, gearlift_nat_mode="single", gearlift_interface_endpoints=[]),
        GUARDS,
    )
    got = {line.item: line.usd for line in cost.estimate(inputs, table()).lines}
    assert got["RDS MySQL db.m6g.large single-AZ"] == pytest.approx(730 * 0.152)  # 110.96
    assert got["RDS gp3 storage (single-AZ)"] == pytest.approx(100 * 0.115)  # 11.50
    assert got["NAT gateways (single)"] == pytest.approx(1 * 730 * 0.045 + 100 * 0.045)  # 37.35
    assert got["Public IPv4 addresses (NAT + ALB)"] == pytest.approx((1 + 3) * 730 * 0.005)  # 14.60
    assert "Interface VPC endpoints" not in got


def test_sensitivity_lines():
    inputs = design_inputs(inventory(), GUARDS)
    lines = {s.driver: s for s in cost.sensitivities(inputs, table())}
    # +1 instance all month: 730 h x $0.0416 + its 20 GB root volume + its 2 GB of logs (ingested, stored 12 months)
    one_more = 730 * 0.0416 + 20 * 0.08 + 2 * 0.50 + 2 * 12 * 0.03
    assert lines["instance count"].delta_usd == pytest.approx(one_more)
    # t3.medium -> t3.large: 1808 h x (0.0832 - 0.0416)
    assert lines["instance size"].change == "t3.medium -> t3.large"
    assert lines["instance size"].delta_usd == pytest.approx(1808 * (0.0832 - 0.0416))
    # one shared NAT instead of three: 2 gateways x 730 h x $0.045 less, 2 public IPv4 less
    assert lines["NAT gateways"].delta_usd == pytest.approx(-(2 * 730 * 0.045 + 2 * 730 * 0.005))
    # single-AZ database: (0.304 - 0.152) x 730 + (0.23 - 0.115) x 100 less
    assert lines["database availability"].delta_usd == pytest.approx(-(0.152 * 730 + 0.115 * 100))
    # db.m6g.large -> db.m6g.xlarge Multi-AZ (an 'assumption' price): (0.608 - 0.304) x 730
    assert lines["database class"].delta_usd == pytest.approx((0.608 - 0.304) * 730)
    # without the peak schedule: 348 instance-hours, their EBS and logs less
    peak = 348 * 0.0416 + 348 / 730 * 20 * 0.08 + 348 / 730 * 2 * (0.50 + 12 * 0.03)
    assert lines["peak schedule"].delta_usd == pytest.approx(-peak)


def test_price_table_entries_carry_source_and_basis():
    prices = cost.load_prices()
    entries = [*prices.ec2.values(), *prices.units.values()] + [p for pair in prices.rds.values() for p in pair]
    assert entries
    for price in entries:
        assert price.source.startswith("https://aws.amazon.com/"), price
        assert price.basis in {"brief §6", "assumption"}, price
        assert price.date.startswith("2026"), price
    # the brief §6 figures, as written there
    assert prices.instance("t3.medium").usd == 0.0416 and prices.instance("t3.medium").basis == "brief §6"
    assert prices.database("db.m6g.large", True).usd == 0.304
    assert prices.unit("nat_hour").usd == 0.045 and prices.unit("waf_acl_month").usd == 5.0
    assert prices.savings_plan_discount == 0.27
    # not in the brief, so labelled
    assert prices.instance("t3.small").basis == "assumption"


def test_unknown_types_and_assumptions_are_clear_errors():
    prices = table()
    with pytest.raises(ReportError, match=r"'t9\.huge' is not in the price table .* known: .*t3\.medium"):
        prices.instance("t9.huge")
    with pytest.raises(ReportError, match=r"db\.x9\.big"):
        prices.database("db.x9.big", True)
    with pytest.raises(ReportError, match="unknown usage assumption 'bogus'"):
        prices.with_assumptions({"bogus": 1})
    assert cost.next_size("t3.medium") == "t3.large"
    assert cost.next_size("db.m6g.large", "db.") == "db.m6g.xlarge"
    assert cost.next_size("weird") is None
