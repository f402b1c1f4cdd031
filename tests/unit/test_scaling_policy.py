"""The EC2 Auto Scaling policy rules the rehearsal twin plays (gearlift.twin.scaling), with AWS's documented numbers."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from gearlift.twin import scaling
from gearlift.twin.scaling import Datapoint, GroupState, Instance, ScalingState, StepAdjustment

NOW = 1_700_000_000.0
OLD = NOW - 100_000  # in service long ago: past any warm-up


def group(n, desired=None, *, min_size=1, max_size=20, warming=(), cooldown=300.0, warmup=None):
    """``n`` instances past warm-up plus ``warming`` ids that entered service just now."""
    instances = [Instance(f"i-{k}", OLD) for k in range(n)]
    instances += [Instance(w, NOW - 1) for w in warming]
    return GroupState(
        min_size,
        max_size,
        len(instances) if desired is None else desired,
        tuple(instances),
        default_cooldown=cooldown,
        default_instance_warmup=warmup,
    )


def series(g, value, periods, *, period=60.0, now=NOW, per_instance=None):
    """One datapoint per period for the last ``periods`` periods, every instance at ``value``."""
    points = []
    for k in range(periods):
        ts = now - (k + 0.5) * period
        values = {i.instance_id: value for i in g.instances}
        values.update(per_instance or {})
        points.append(Datapoint(ts, values))
    return points


def tt(name="cpu50", target=50.0, metric="ASGAverageCPUUtilization", **extra):
    config = {"TargetValue": target, "PredefinedMetricSpecification": {"PredefinedMetricType": metric}}
    config.update(extra)
    return {"PolicyName": name, "PolicyType": "TargetTrackingScaling", "TargetTrackingConfiguration": config}


GUIDE_OUT = [
    {"MetricIntervalLowerBound": 0, "MetricIntervalUpperBound": 10, "ScalingAdjustment": 0},
    {"MetricIntervalLowerBound": 10, "MetricIntervalUpperBound": 20, "ScalingAdjustment": 10},
    {"MetricIntervalLowerBound": 20, "ScalingAdjustment": 30},
]
GUIDE_IN = [
    {"MetricIntervalLowerBound": -10, "MetricIntervalUpperBound": 0, "ScalingAdjustment": 0},
    {"MetricIntervalLowerBound": -20, "MetricIntervalUpperBound": -10, "ScalingAdjustment": -10},
    {"MetricIntervalUpperBound": -20, "ScalingAdjustment": -30},
]


def step_policy(name, steps, alarm, adjustment_type="PercentChangeInCapacity", **extra):
    doc = {
        "PolicyName": name,
        "PolicyType": "StepScaling",
        "AdjustmentType": adjustment_type,
        "StepAdjustments": steps,
        "Alarms": [{"AlarmName": alarm}],
    }
    doc.update(extra)
    return doc


def alarm(name, comparison, threshold=50.0, periods=1, period=60):
    return {
        "AlarmName": name,
        "MetricName": "CPUUtilization",
        "Threshold": threshold,
        "ComparisonOperator": comparison,
        "EvaluationPeriods": periods,
        "Period": period,
        "Statistic": "Average",
    }


STEP_POLICIES = [step_policy("out", GUIDE_OUT, "high"), step_policy("in", GUIDE_IN, "low")]
STEP_ALARMS = [alarm("high", "GreaterThanOrEqualToThreshold"), alarm("low", "LessThanOrEqualToThreshold")]


# --- target tracking ----------------------------------------------------------------------


def test_target_tracking_scales_out_proportionally_rounding_up():
    g = group(4)
    d = scaling.evaluate(g, NOW, policies=[tt()], metrics={"CPUUtilization": series(g, 80.0, 3)})
    assert d.desired_capacity == 7  # ceil(4 * 80 / 50) = ceil(6.4)
    assert d.source == "cpu50"
    assert d.state.alarm_states["TargetTracking-cpu50-AlarmHigh"] == "ALARM"
    assert "ceil(4 x 80 / 50) = 7" in d.reason


def test_target_tracking_high_alarm_needs_three_datapoints():
    g = group(4)
    points = series(g, 80.0, 2) + series(g, 40.0, 3)[2:]  # newest two breach, the third does not
    d = scaling.evaluate(g, NOW, policies=[tt()], metrics={"CPUUtilization": points})
    assert d.desired_capacity is None
    assert d.state.alarm_states["TargetTracking-cpu50-AlarmHigh"] == "OK"


def test_target_tracking_missing_data_is_insufficient_and_does_not_scale():
    d = scaling.evaluate(group(4), NOW, policies=[tt()], metrics={})
    assert d.desired_capacity is None
    assert d.state.alarm_states["TargetTracking-cpu50-AlarmLow"] == "INSUFFICIENT_DATA"


def test_target_tracking_scales_in_after_fifteen_datapoints_below_ninety_percent():
    g = group(10)
    d = scaling.evaluate(g, NOW, policies=[tt()], metrics={"CPUUtilization": series(g, 30.0, 15)})
    assert d.desired_capacity == 6  # ceil(10 * 30 / 50)
    # removing 1.2 instances removes just one: ceil(8.8) = 9
    d = scaling.evaluate(g, NOW, policies=[tt()], metrics={"CPUUtilization": series(g, 44.0, 15)})
    assert d.desired_capacity == 9
    # 46 is below the target but not below the low alarm's 45 (0.9 x 50)
    d = scaling.evaluate(g, NOW, policies=[tt()], metrics={"CPUUtilization": series(g, 46.0, 15)})
    assert d.desired_capacity is None
    assert d.state.alarm_states["TargetTracking-cpu50-AlarmLow"] == "OK"
    # 14 low datapoints are not enough
    d = scaling.evaluate(g, NOW, policies=[tt()], metrics={"CPUUtilization": series(g, 30.0, 14)})
    assert d.desired_capacity is None


def test_disable_scale_in_keeps_capacity():
    g = group(10)
    policy = tt(DisableScaleIn=True)
    d = scaling.evaluate(g, NOW, policies=[policy], metrics={"CPUUtilization": series(g, 10.0, 15)})
    assert d.desired_capacity is None
    assert "TargetTracking-cpu50-AlarmLow" not in d.state.alarm_states
    d = scaling.evaluate(g, NOW, policies=[policy], metrics={"CPUUtilization": series(g, 90.0, 3)})
    assert d.desired_capacity == 18  # scale-out still works: ceil(10 * 90 / 50)


def test_two_target_tracking_policies_scale_out_if_any_says_so():
    g = group(4)
    metrics = {"CPUUtilization": series(g, 80.0, 15), "RequestCountPerTarget": series(g, 10.0, 15)}
    policies = [tt(), tt("req100", 100.0, "ALBRequestCountPerTarget")]
    d = scaling.evaluate(g, NOW, policies=policies, metrics=metrics)
    assert d.desired_capacity == 7
    assert d.source == "cpu50"


def test_two_target_tracking_policies_scale_in_only_if_all_agree():
    g = group(10)
    policies = [tt(), tt("req100", 100.0, "ALBRequestCountPerTarget")]
    low_cpu = series(g, 20.0, 15)
    d = scaling.evaluate(
        g, NOW, policies=policies, metrics={"CPUUtilization": low_cpu, "RequestCountPerTarget": series(g, 95.0, 15)}
    )
    assert d.desired_capacity is None  # the request policy is not ready to scale in
    d = scaling.evaluate(
        g, NOW, policies=policies, metrics={"CPUUtilization": low_cpu, "RequestCountPerTarget": series(g, 60.0, 15)}
    )
    assert d.desired_capacity == 6  # both ready: the larger capacity wins, max(ceil(4.0), ceil(6.0))
    assert d.source == "req100"
    # a policy with scale-in disabled does not get a say
    policies = [tt(), tt("req100", 100.0, "ALBRequestCountPerTarget", DisableScaleIn=True)]
    d = scaling.evaluate(
        g, NOW, policies=policies, metrics={"CPUUtilization": low_cpu, "RequestCountPerTarget": series(g, 95.0, 15)}
    )
    assert d.desired_capacity == 4


def test_min_and_max_bound_the_result():
    g = group(4, max_size=6)
    d = scaling.evaluate(g, NOW, policies=[tt()], metrics={"CPUUtilization": series(g, 80.0, 3)})
    assert d.desired_capacity == 6
    assert "max 6" in d.reason
    g = group(6, max_size=6)
    d = scaling.evaluate(g, NOW, policies=[tt()], metrics={"CPUUtilization": series(g, 80.0, 3)})
    assert d.desired_capacity is None
    g = group(10, min_size=8)
    d = scaling.evaluate(g, NOW, policies=[tt()], metrics={"CPUUtilization": series(g, 5.0, 15)})
    assert d.desired_capacity == 8


def test_target_tracking_capacity_is_exact_at_whole_numbers():
    assert scaling.target_tracking_capacity(4, 75.0, 50.0) == 6
    assert scaling.target_tracking_capacity(3, 70.0, 40.0) == 6  # 5.25 -> 6


# --- step scaling ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("capacity", "percent", "magnitude", "change"),
    [
        (13, 10, None, 1),  # 1.3 -> 1
        (23, -29, None, -6),  # -6.67 -> -6
        (127, 10, None, 12),  # 12.7 -> 12
        (10, 10, None, 1),
        (5, 10, None, 1),  # 0.5 -> 1
        (2, -29, None, -1),  # -0.58 -> -1
        (5, 10, 2, 2),  # MinAdjustmentMagnitude 2
        (4, 25, 2, 2),  # the guide's 25 % of 4 with a minimum of 2
        (5, -10, 2, -2),
        (40, 10, 2, 4),
    ],
)
def test_percent_change_rounding(capacity, percent, magnitude, change):
    assert scaling.percent_adjustment(capacity, percent, magnitude) == change


def test_adjustment_types():
    assert scaling.apply_adjustment(3, "ChangeInCapacity", 5) == 8
    assert scaling.apply_adjustment(3, "ExactCapacity", 5) == 5
    assert scaling.apply_adjustment(10, "PercentChangeInCapacity", 10) == 11


def test_step_bounds_inclusive_above_and_exclusive_below():
    policy = scaling.parse_policy(step_policy("out", GUIDE_OUT + GUIDE_IN, "a"))
    assert isinstance(policy, scaling.StepPolicy)
    steps = policy.steps
    assert scaling.select_step(steps, 60.0, 50.0) == StepAdjustment(10.0, 20.0, 10)  # lower bound inclusive
    assert scaling.select_step(steps, 59.99, 50.0) == StepAdjustment(0.0, 10.0, 0)
    assert scaling.select_step(steps, 70.0, 50.0) == StepAdjustment(20.0, None, 30)
    assert scaling.select_step(steps, 40.0, 50.0) == StepAdjustment(-20.0, -10.0, -10)  # upper bound inclusive
    assert scaling.select_step(steps, 40.01, 50.0) == StepAdjustment(-10.0, 0.0, 0)
    assert scaling.select_step(steps, 30.0, 50.0) == StepAdjustment(None, -20.0, -30)
    assert scaling.select_step(steps, 50.0, 50.0) == StepAdjustment(0.0, 10.0, 0)


def test_step_scaling_follows_the_user_guide_example():
    g = group(10)
    run = scaling.evaluate
    metrics = {"CPUUtilization": series(g, 60.0, 1)}
    assert run(g, NOW, policies=STEP_POLICIES, alarms=STEP_ALARMS, metrics=metrics).desired_capacity == 11
    metrics = {"CPUUtilization": series(g, 55.0, 1)}
    assert run(g, NOW, policies=STEP_POLICIES, alarms=STEP_ALARMS, metrics=metrics).desired_capacity is None
    metrics = {"CPUUtilization": series(g, 70.0, 1)}
    assert run(g, NOW, policies=STEP_POLICIES, alarms=STEP_ALARMS, metrics=metrics).desired_capacity == 13
    g14 = group(14)
    metrics = {"CPUUtilization": series(g14, 40.0, 1)}
    d = run(g14, NOW, policies=STEP_POLICIES, alarms=STEP_ALARMS, metrics=metrics)
    assert d.desired_capacity == 13  # remove 10 % of 14 = 1.4 -> 1
    g13 = group(13)
    metrics = {"CPUUtilization": series(g13, 30.0, 1)}
    d = run(g13, NOW, policies=STEP_POLICIES, alarms=STEP_ALARMS, metrics=metrics)
    assert d.desired_capacity == 10  # remove 30 % of 13 = 3.9 -> 3
    assert d.source == "in"


def test_step_exact_capacity_and_change_in_capacity():
    g = group(4)
    policies = [
        step_policy("exact", [{"MetricIntervalLowerBound": 0, "ScalingAdjustment": 9}], "high", "ExactCapacity"),
    ]
    d = scaling.evaluate(
        g, NOW, policies=policies, alarms=STEP_ALARMS[:1], metrics={"CPUUtilization": series(g, 51.0, 1)}
    )
    assert d.desired_capacity == 9
    policies = [
        step_policy("add", [{"MetricIntervalLowerBound": 0, "ScalingAdjustment": 2}], "high", "ChangeInCapacity")
    ]
    d = scaling.evaluate(
        g, NOW, policies=policies, alarms=STEP_ALARMS[:1], metrics={"CPUUtilization": series(g, 51.0, 1)}
    )
    assert d.desired_capacity == 6


def test_largest_capacity_wins_among_policies():
    # the guide: one policy removes 3, another 25 %, group of 8 -> the 25 % policy (remove 2) wins
    g = group(8)
    low = [alarm("low", "LessThanThreshold", 30.0)]
    policies = [
        step_policy("minus3", [{"MetricIntervalUpperBound": 0, "ScalingAdjustment": -3}], "low", "ChangeInCapacity"),
        step_policy("minus25", [{"MetricIntervalUpperBound": 0, "ScalingAdjustment": -25}], "low"),
    ]
    d = scaling.evaluate(g, NOW, policies=policies, alarms=low, metrics={"CPUUtilization": series(g, 10.0, 1)})
    assert d.desired_capacity == 6
    assert d.source == "minus25"


def test_alarm_reinvokes_its_policy_once_a_minute():
    g = group(4)
    policies = [
        step_policy("add", [{"MetricIntervalLowerBound": 0, "ScalingAdjustment": 1}], "high", "ChangeInCapacity")
    ]
    first = scaling.evaluate(
        g, NOW, policies=policies, alarms=STEP_ALARMS[:1], metrics={"CPUUtilization": series(g, 80.0, 1)}
    )
    assert first.desired_capacity == 5
    g5 = group(5)
    later = NOW + 30
    again = scaling.evaluate(
        g5,
        later,
        policies=policies,
        alarms=STEP_ALARMS[:1],
        metrics={"CPUUtilization": series(g5, 80.0, 1, now=later)},
        state=first.state,
    )
    assert again.desired_capacity is None  # still in ALARM, invoked 30 s ago
    minute = NOW + 60
    third = scaling.evaluate(
        g5,
        minute,
        policies=policies,
        alarms=STEP_ALARMS[:1],
        metrics={"CPUUtilization": series(g5, 80.0, 1, now=minute)},
        state=again.state,
    )
    assert third.desired_capacity == 6


# --- warm-up and cooldown -------------------------------------------------------------------


def test_warming_instances_do_not_count_in_the_metric():
    g = group(4, warming=("new-1", "new-2"))  # desired 6: two still warming (warm-up = default cooldown 300)
    metrics = {"CPUUtilization": series(g, 80.0, 3, per_instance={"new-1": 5.0, "new-2": 5.0})}
    values = scaling.period_values(metrics["CPUUtilization"], g, NOW, 60.0, 3, 300.0)
    assert values == [80.0, 80.0, 80.0]  # not (4 * 80 + 2 * 5) / 6 = 55
    d = scaling.evaluate(g, NOW, policies=[tt()], metrics=metrics)
    # capacity past warm-up is 4: ceil(4 * 80 / 50) = 7; the 2 warming count in desired 6 -> add 1
    assert d.desired_capacity == 7


def test_step_scale_out_during_warmup_adds_only_what_exceeds_warming_capacity():
    # the guide: 10 in service, 1 warming (desired 11); at 62 -> 10 % of 10 = 1 -> still 11; at 70 -> 30 % -> 13
    g = group(10, warming=("new-1",))
    d = scaling.evaluate(
        g, NOW, policies=STEP_POLICIES, alarms=STEP_ALARMS, metrics={"CPUUtilization": series(g, 62.0, 1)}
    )
    assert d.desired_capacity is None
    d = scaling.evaluate(
        g, NOW, policies=STEP_POLICIES, alarms=STEP_ALARMS, metrics={"CPUUtilization": series(g, 70.0, 1)}
    )
    assert d.desired_capacity == 13


def test_scale_in_is_blocked_while_instances_warm_up():
    g = group(10, warming=("new-1",))
    d = scaling.evaluate(g, NOW, policies=[tt()], metrics={"CPUUtilization": series(g, 10.0, 15)})
    assert d.desired_capacity is None
    assert "scale-in blocked" in d.reason
    g = group(10, desired=12)  # two still pending launch
    d = scaling.evaluate(g, NOW, policies=[tt()], metrics={"CPUUtilization": series(g, 10.0, 15)})
    assert d.desired_capacity is None


def test_estimated_instance_warmup_overrides_the_default():
    g = GroupState(1, 20, 5, tuple(Instance(f"i-{k}", NOW - 120) for k in range(5)))
    metrics = {"CPUUtilization": [Datapoint(NOW - 30, {f"i-{k}": 80.0 for k in range(5)})]}
    # default warm-up is the default cooldown (300 s): everything is still warming, no data
    assert scaling.period_values(metrics["CPUUtilization"], g, NOW, 60.0, 1, 300.0) == [None]
    policy = step_policy("out", GUIDE_OUT, "high", EstimatedInstanceWarmup=60)
    d = scaling.evaluate(g, NOW, policies=[policy], alarms=STEP_ALARMS[:1], metrics=metrics)
    assert d.desired_capacity == 6  # 80 is 30 above the threshold: +30 % of 5 = 1.5 -> 1


SIMPLE = {
    "PolicyName": "add2",
    "PolicyType": "SimpleScaling",
    "AdjustmentType": "ChangeInCapacity",
    "ScalingAdjustment": 2,
    "Alarms": [{"AlarmName": "high"}],
}


def _simple_run(g, at, state, policy=SIMPLE, time_scale=1.0):
    period = 60.0 / time_scale
    return scaling.evaluate(
        g,
        at,
        policies=[policy],
        alarms=STEP_ALARMS[:1],
        metrics={"CPUUtilization": series(g, 90.0, 1, now=at, period=period)},
        state=state,
        time_scale=time_scale,
    )


def test_simple_scaling_waits_for_the_default_cooldown():
    first = _simple_run(group(4), NOW, None)
    assert first.desired_capacity == 6
    assert first.state.cooldown_until == NOW + 300
    blocked = _simple_run(group(6), NOW + 120, first.state)
    assert blocked.desired_capacity is None
    assert "blocked by cooldown" in blocked.reason
    after = _simple_run(group(6), NOW + 301, blocked.state)
    assert after.desired_capacity == 8


def test_simple_policy_cooldown_overrides_the_default():
    policy = dict(SIMPLE, Cooldown=60)
    first = _simple_run(group(4), NOW, None, policy)
    assert first.state.cooldown_until == NOW + 60
    assert _simple_run(group(6), NOW + 61, first.state, policy).desired_capacity == 8


def test_time_scale_compresses_every_duration():
    # cooldown: 300 AWS seconds are 5 clock seconds at time_scale 60
    first = _simple_run(group(4), NOW, None, time_scale=60)
    assert first.state.cooldown_until == NOW + 5
    assert _simple_run(group(6), NOW + 4, first.state, time_scale=60).desired_capacity is None
    assert _simple_run(group(6), NOW + 6, first.state, time_scale=60).desired_capacity == 8
    # alarm periods: 3 one-minute datapoints are 3 one-second datapoints
    g = group(4)
    fast = {"CPUUtilization": series(g, 80.0, 3, period=1.0)}
    assert scaling.evaluate(g, NOW, policies=[tt()], metrics=fast, time_scale=60).desired_capacity == 7
    assert scaling.evaluate(g, NOW, policies=[tt()], metrics=fast).desired_capacity is None  # AWS time: 1 period
    # warm-up: 300 s is 5 s; an instance 6 s in service has warmed up, one 4 s in service has not
    g = GroupState(1, 20, 2, (Instance("a", NOW - 6), Instance("b", NOW - 4)))
    points = [Datapoint(NOW - 0.5, {"a": 90.0, "b": 10.0})]
    assert scaling.period_values(points, g, NOW, 1.0, 1, 300 / 60) == [90.0]
    # the once-a-minute alarm re-invocation is once a second
    g4 = group(4)
    policies = [
        step_policy("add", [{"MetricIntervalLowerBound": 0, "ScalingAdjustment": 1}], "high", "ChangeInCapacity")
    ]
    first = scaling.evaluate(
        g4,
        NOW,
        policies=policies,
        alarms=STEP_ALARMS[:1],
        metrics={"CPUUtilization": series(g4, 80.0, 1, period=1.0)},
        time_scale=60,
    )
    g5 = group(5)
    second = scaling.evaluate(
        g5,
        NOW + 1,
        policies=policies,
        alarms=STEP_ALARMS[:1],
        metrics={"CPUUtilization": series(g5, 80.0, 1, now=NOW + 1, period=1.0)},
        state=first.state,
        time_scale=60,
    )
    assert (first.desired_capacity, second.desired_capacity) == (5, 6)


# --- scheduled actions ----------------------------------------------------------------------


def _ts(text):
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def test_cron_fields():
    cron = scaling.parse_cron("30 6 * * 2")  # the guide's example: every Tuesday at 6:30
    assert cron.matches(datetime(2024, 1, 2, 6, 30, tzinfo=UTC))  # a Tuesday
    assert not cron.matches(datetime(2024, 1, 3, 6, 30, tzinfo=UTC))
    assert not cron.matches(datetime(2024, 1, 2, 6, 31, tzinfo=UTC))
    every15 = scaling.parse_cron("*/15 8-17 * JAN-MAR MON-FRI")
    assert every15.matches(datetime(2024, 2, 5, 17, 45, tzinfo=UTC))
    assert not every15.matches(datetime(2024, 2, 5, 18, 0, tzinfo=UTC))
    assert not every15.matches(datetime(2024, 2, 4, 9, 0, tzinfo=UTC))  # a Sunday
    sunday = scaling.parse_cron("0 0 * * 7")
    assert sunday.matches(datetime(2024, 2, 4, 0, 0, tzinfo=UTC))
    either = scaling.parse_cron("0 0 1 * 1")  # day 1 or a Monday, as in Unix cron
    assert either.matches(datetime(2024, 2, 1, tzinfo=UTC)) and either.matches(datetime(2024, 2, 5, tzinfo=UTC))
    assert not either.matches(datetime(2024, 2, 6, tzinfo=UTC))


def test_scheduled_action_runs_at_its_boundary_minute_once():
    action = {
        "ScheduledActionName": "morning",
        "Recurrence": "0 8 * * *",
        "MinSize": 4,
        "MaxSize": 10,
        "DesiredCapacity": 6,
    }
    g = group(2, max_size=5)
    eight = _ts("2024-01-15T08:00:00")
    early = scaling.evaluate(g, eight - 1, scheduled_actions=[action], state=ScalingState(last_evaluated_at=eight - 31))
    assert early.desired_capacity is None and early.min_size is None
    on_time = scaling.evaluate(g, eight, scheduled_actions=[action], state=early.state)
    assert (on_time.min_size, on_time.max_size, on_time.desired_capacity) == (4, 10, 6)
    assert on_time.source == "morning"
    again = scaling.evaluate(g, eight + 30, scheduled_actions=[action], state=on_time.state)
    assert again.desired_capacity is None  # not run twice for the same minute


def test_scheduled_action_time_zone_follows_daylight_saving():
    action = {
        "ScheduledActionName": "ny",
        "Recurrence": "0 8 * * *",
        "TimeZone": "America/New_York",
        "DesiredCapacity": 3,
    }
    parsed = scaling.parse_scheduled_action(action)
    winter = _ts("2024-01-15T13:00:00")  # 08:00 EST = UTC-5
    summer = _ts("2024-07-15T12:00:00")  # 08:00 EDT = UTC-4
    assert scaling.cron_occurrence(parsed, winter - 60, winter) == winter
    assert scaling.cron_occurrence(parsed, winter - 3600 - 60, winter - 3600) is None
    assert scaling.cron_occurrence(parsed, summer - 60, summer) == summer
    d = scaling.evaluate(group(1), summer, scheduled_actions=[action], state=ScalingState(last_evaluated_at=summer - 5))
    assert d.desired_capacity == 3


def test_scheduled_action_start_and_end_times():
    start = _ts("2024-03-01T00:00:00")
    once = scaling.parse_scheduled_action(
        {"ScheduledActionName": "once", "StartTime": "2024-03-01T00:00:00Z", "DesiredCapacity": 5}
    )
    assert scaling.cron_occurrence(once, start - 10, start) == start
    assert scaling.cron_occurrence(once, start, start + 600) is None
    bounded = scaling.parse_scheduled_action(
        {
            "ScheduledActionName": "hourly",
            "Recurrence": "0 * * * *",
            "StartTime": datetime(2024, 3, 1, 2, 0, tzinfo=UTC),
            "EndTime": "2024-03-01T04:00:00Z",
            "MinSize": 2,
        }
    )
    assert scaling.cron_occurrence(bounded, start, start + 3600) is None  # before StartTime
    assert scaling.cron_occurrence(bounded, start, start + 3 * 3600) == start + 3 * 3600
    assert scaling.cron_occurrence(bounded, start + 4 * 3600, start + 6 * 3600) is None  # after EndTime


def test_scheduled_limits_move_and_clamp_the_desired_capacity():
    def run(fields, g):
        action = scaling.parse_scheduled_action({"ScheduledActionName": "a", "StartTime": 0, **fields})
        return scaling.apply_scheduled(action, g.min_size, g.max_size, g.desired_capacity)

    assert run({"MinSize": 5}, group(3)) == (5, 20, 5)  # new min above the size: desired goes to it
    assert run({"MaxSize": 2}, group(3)) == (1, 2, 2)  # new max below the size: desired goes to it
    assert run({"MaxSize": 10, "DesiredCapacity": 12}, group(3)) == (1, 10, 10)
    assert run({"MinSize": 4, "DesiredCapacity": 2}, group(3)) == (4, 20, 4)
    assert run({"DesiredCapacity": 7}, group(3)) == (1, 20, 7)


def test_dynamic_policies_use_the_limits_a_scheduled_action_just_set():
    g = group(4, max_size=5)
    action = {"ScheduledActionName": "raise", "StartTime": NOW, "MaxSize": 12}
    d = scaling.evaluate(
        g, NOW, policies=[tt()], scheduled_actions=[action], metrics={"CPUUtilization": series(g, 80.0, 3)}
    )
    assert (d.max_size, d.desired_capacity, d.source) == (12, 7, "cpu50")


# --- validation -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("doc", "field"),
    [
        ({"PolicyName": "p", "PolicyType": "TargetTrackingScaling"}, "TargetTrackingConfiguration"),
        ({**tt(), "TargetTrackingConfiguration": {"PredefinedMetricSpecification": {}}}, "TargetValue"),
        (tt(metric="ASGCPU"), "PredefinedMetricType"),
        (tt(DisableScaleIn="yes"), "DisableScaleIn"),
        ({"PolicyName": "p", "PolicyType": "Bogus"}, "PolicyType"),
        ({"PolicyName": "p", "PolicyType": "SimpleScaling", "AdjustmentType": "Double"}, "AdjustmentType"),
        ({"PolicyName": "p", "AdjustmentType": "ChangeInCapacity"}, "ScalingAdjustment"),
        ({"PolicyName": "p", "AdjustmentType": "ChangeInCapacity", "ScalingAdjustment": True}, "ScalingAdjustment"),
        (
            {
                "PolicyName": "p",
                "AdjustmentType": "ChangeInCapacity",
                "ScalingAdjustment": 1,
                "MinAdjustmentMagnitude": 2,
            },
            "MinAdjustmentMagnitude",
        ),
        (
            {"PolicyName": "p", "AdjustmentType": "ChangeInCapacity", "ScalingAdjustment": 1, "Cooldown": -1},
            "Cooldown",
        ),
        (step_policy("p", [], "a"), "StepAdjustments"),
        (step_policy("p", [{"ScalingAdjustment": 1}], "a"), "can't both be null"),
        (
            step_policy(
                "p",
                [
                    {"MetricIntervalLowerBound": 0, "MetricIntervalUpperBound": 10, "ScalingAdjustment": 1},
                    {"MetricIntervalLowerBound": 20, "ScalingAdjustment": 2},
                ],
                "a",
            ),
            "gap",
        ),
        (
            step_policy(
                "p", [{"MetricIntervalLowerBound": 0, "MetricIntervalUpperBound": 10, "ScalingAdjustment": 1}], "a"
            ),
            "null upper bound",
        ),
        (
            step_policy("p", [{"MetricIntervalLowerBound": 0, "ScalingAdjustment": -1}], "a", "ExactCapacity"),
            "ScalingAdjustment",
        ),
        (step_policy("p", GUIDE_OUT, "a", EstimatedInstanceWarmup="60"), "EstimatedInstanceWarmup"),
    ],
)
def test_malformed_policies_name_the_field(doc, field):
    with pytest.raises(ValueError, match=field):
        scaling.parse_policy(doc)


@pytest.mark.parametrize(
    ("doc", "field"),
    [
        ({"ScheduledActionName": "s", "Recurrence": "0 8 * *", "DesiredCapacity": 1}, "Recurrence"),
        ({"ScheduledActionName": "s", "Recurrence": "61 8 * * *", "DesiredCapacity": 1}, "minute"),
        ({"ScheduledActionName": "s", "Recurrence": "0 8 * * *"}, "MinSize, MaxSize, DesiredCapacity"),
        ({"ScheduledActionName": "s", "DesiredCapacity": 1}, "StartTime"),
        ({"ScheduledActionName": "s", "StartTime": "tomorrow", "DesiredCapacity": 1}, "StartTime"),
        ({"ScheduledActionName": "s", "StartTime": 0, "MinSize": 5, "MaxSize": 2}, "MinSize"),
        ({"ScheduledActionName": "s", "Recurrence": "0 8 * * *", "TimeZone": "Mars/Olympus", "MinSize": 1}, "TimeZone"),
    ],
)
def test_malformed_scheduled_actions_name_the_field(doc, field):
    with pytest.raises(ValueError, match=field):
        scaling.parse_scheduled_action(doc)


def test_malformed_alarm_and_time_scale_are_refused():
    with pytest.raises(ValueError, match="ComparisonOperator"):
        scaling.parse_alarm(dict(alarm("a", "GreaterThanThreshold"), ComparisonOperator="Above"))
    with pytest.raises(ValueError, match="DatapointsToAlarm"):
        scaling.parse_alarm(dict(alarm("a", "GreaterThanThreshold", periods=2), DatapointsToAlarm=3))
    with pytest.raises(ValueError, match="time_scale"):
        scaling.evaluate(group(1), NOW, time_scale=0)
    with pytest.raises(ValueError, match="DesiredCapacity"):
        GroupState(2, 5, 6)


def test_disabled_and_predictive_policies_are_not_played():
    assert scaling.parse_policy(dict(tt(), Enabled=False)) is None
    assert scaling.parse_policy({"PolicyName": "p", "PolicyType": "PredictiveScaling"}) is None
