"""How EC2 Auto Scaling decides a group's capacity, as the service plays its policies.

Pure logic, no I/O: from the group's state (size limits, desired capacity, its
instances and when each went InService), the scaling policies and scheduled
actions as DescribePolicies / DescribeScheduledActions return them (same key
names), the CloudWatch alarms of step and simple policies as DescribeAlarms
returns them, per-instance metric datapoints and a clock value, return the
decision (new desired capacity, min and max, or none, and why) and the state to
carry to the next evaluation (alarm states, when each alarm last invoked its
policy, the simple-scaling cooldown, the last evaluation time).

Rules played, with their sources:

- Target tracking ("Target tracking scaling policies",
  https://docs.aws.amazon.com/autoscaling/ec2/userguide/as-scaling-target-tracking.html):
  the service manages a high alarm (metric above the target) and a low alarm;
  the capacity is proportional to metric/target, rounded up so the metric
  falls to or below the target (conservative: adding 1.5 instances adds 2,
  removing 1.5 removes 1). ``DisableScaleIn`` drops the low alarm. Several
  target tracking policies: scale out if any is ready to, scale in only if all
  policies with scale-in enabled are ready to. Missing data is
  INSUFFICIENT_DATA and does not scale.
  The high alarm needs 3 of 3 one-minute datapoints above the target and the
  low alarm 15 of 15 below its threshold; those counts are what the service
  creates for predefined metrics (the TargetTracking-...-AlarmHigh/-AlarmLow
  alarms, 3 and 15 datapoints, as a maintainer-answered thread reports:
  https://github.com/aws-samples/amazon-aurora-labs-for-mysql/issues/3).
  CHOICE (docs silent on the exact value): the low alarm's threshold is 90 %
  of the target (LOW_ALARM_RATIO); AWS documents only that scale-in is more
  gradual than scale-out.
- Step and simple scaling ("Step and simple scaling policies",
  https://docs.aws.amazon.com/autoscaling/ec2/userguide/as-scaling-simple-step.html
  and the StepAdjustment API reference,
  https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_StepAdjustment.html):
  step bounds are relative to the alarm threshold; above the threshold the
  lower bound is inclusive and the upper exclusive, below it the reverse; a
  null lower bound is -infinity, a null upper +infinity; steps can't overlap
  or leave a gap. ``ChangeInCapacity``, ``ExactCapacity`` (non-negative),
  ``PercentChangeInCapacity`` with its rounding (above 1 rounded down,
  between 0 and 1 to 1, between 0 and -1 to -1, below -1 rounded up) and
  ``MinAdjustmentMagnitude``. The step's metric value is the alarm's
  datapoints aggregated by ``MetricAggregationType`` (Average by default).
- Instance warm-up (same pages and "Set the default instance warmup",
  https://docs.aws.amazon.com/autoscaling/ec2/userguide/ec2-auto-scaling-default-instance-warmup.html,
  "Available warm-up and cooldown settings",
  https://docs.aws.amazon.com/autoscaling/ec2/userguide/consolidated-view-of-warm-up-and-cooldown-settings.html):
  an instance in warm-up is not counted in the aggregated metric; when scaling
  out the current capacity leaves out warming instances and the result is
  compared with the desired capacity, so a further scale-out adds only what
  exceeds the capacity already warming (the guide's 10 → 11, then 30 % of 10
  at 70 → 13); scale-in by a policy is blocked while a scale-out is in
  progress (instances warming or still pending). The warm-up is the policy's
  ``EstimatedInstanceWarmup``, else the group's default instance warmup,
  else its default cooldown.
- Cooldowns ("Scaling cooldowns",
  https://docs.aws.amazon.com/autoscaling/ec2/userguide/ec2-auto-scaling-scaling-cooldowns.html):
  after a scaling activity, simple policies wait for the cooldown (the
  policy's ``Cooldown`` when the activity came from a simple policy that has
  one, else the group's default cooldown, 300 s); target tracking, step and
  scheduled actions do not wait.
- Several policies at once ("Multiple dynamic scaling policies",
  https://docs.aws.amazon.com/autoscaling/ec2/userguide/as-scale-based-on-demand.html):
  the policy giving the largest capacity wins, for scale-out and scale-in.
- Alarm actions: an alarm invokes its Auto Scaling action when it enters
  ALARM and again once a minute while it stays there
  (https://repost.aws/knowledge-center/autoscaling-policy-cloudwatch-alarm).
- Limits: desired capacity stays within min and max
  (https://docs.aws.amazon.com/autoscaling/ec2/userguide/asg-capacity-limits.html).
- Scheduled actions ("Scheduled scaling",
  https://docs.aws.amazon.com/autoscaling/ec2/userguide/ec2-auto-scaling-scheduled-scaling.html,
  and the ScheduledUpdateGroupAction and UpdateAutoScalingGroup API
  references): a 5-field Unix cron ``Recurrence`` (minute hour day-of-month
  month day-of-week) in UTC or the IANA ``TimeZone`` (daylight saving
  followed, via zoneinfo); ``StartTime``/``EndTime`` bound the recurrence; a
  one-off action runs at ``StartTime``. The action sets min, max and desired;
  given min or max without desired, the desired moves to the new min (or max)
  when outside them; a desired outside the new limits is clamped to them.
  CHOICE: the user guide also says a recurring action runs once at its
  ``StartTime``; this follows the API reference (start and end are the
  boundaries of the recurrence) instead.

Rehearsal compression: ``time_scale`` divides every AWS duration (alarm
periods, warm-ups, cooldowns, the once-a-minute alarm re-invocation): with
``time_scale=60`` one AWS minute lasts one second of the clock. The cron
schedule of scheduled actions is wall-clock and is not compressed. Default 1.

Approximations: CloudWatch periods are counted back from the evaluation time,
not aligned to clock minutes; a missing datapoint never breaches (missing data
treated as missing); cooldowns start when the activity is decided, not when its
last instance finishes launching; instance weights, lifecycle hooks, warm pools
and predictive scaling are not played (PredictiveScaling policies are ignored);
metrics without a per-instance breakdown (``Datapoint.value``) can't leave out
warming instances; a scheduled action's first evaluation window is the last
minute, and windows longer than MAX_SCHEDULE_LOOKBACK are cut to it.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DEFAULT_TIME_SCALE = 1.0
DEFAULT_COOLDOWN = 300.0
# Target tracking alarms the service creates for predefined metrics (one-minute periods).
TT_PERIOD = 60.0
TT_HIGH_DATAPOINTS = 3
TT_LOW_DATAPOINTS = 15
# CHOICE (docs silent): the low alarm's threshold as a fraction of the target value.
LOW_ALARM_RATIO = 0.9
# An alarm that stays in ALARM invokes its Auto Scaling action again once a minute.
ALARM_REPEAT = 60.0
MAX_SCHEDULE_LOOKBACK = 31 * 24 * 3600.0

# Predefined target tracking metrics and the CloudWatch metric each aggregates.
PREDEFINED_METRICS = {
    "ASGAverageCPUUtilization": "CPUUtilization",
    "ASGAverageNetworkIn": "NetworkIn",
    "ASGAverageNetworkOut": "NetworkOut",
    "ALBRequestCountPerTarget": "RequestCountPerTarget",
}
ADJUSTMENT_TYPES = ("ChangeInCapacity", "ExactCapacity", "PercentChangeInCapacity")
POLICY_TYPES = ("TargetTrackingScaling", "StepScaling", "SimpleScaling", "PredictiveScaling")
COMPARISONS = (
    "GreaterThanOrEqualToThreshold",
    "GreaterThanThreshold",
    "LessThanThreshold",
    "LessThanOrEqualToThreshold",
)
STATISTICS = ("Average", "Sum", "Minimum", "Maximum", "SampleCount")
AGGREGATIONS = ("Average", "Minimum", "Maximum")

OK = "OK"
ALARM = "ALARM"
INSUFFICIENT_DATA = "INSUFFICIENT_DATA"


# --- inputs ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Instance:
    """One instance of the group: ``in_service_at`` is when it entered InService (clock seconds)."""

    instance_id: str
    in_service_at: float
    terminating: bool = False


@dataclass(frozen=True)
class GroupState:
    """The group as DescribeAutoScalingGroups describes it (durations in AWS seconds)."""

    min_size: int
    max_size: int
    desired_capacity: int
    instances: tuple[Instance, ...] = ()
    default_cooldown: float = DEFAULT_COOLDOWN
    default_instance_warmup: float | None = None

    def __post_init__(self) -> None:
        if self.min_size < 0 or self.max_size < self.min_size:
            raise ValueError(f"MinSize/MaxSize: need 0 <= MinSize <= MaxSize, got {self.min_size}/{self.max_size}")
        if not self.min_size <= self.desired_capacity <= self.max_size:
            raise ValueError(f"DesiredCapacity: {self.desired_capacity} outside [{self.min_size}, {self.max_size}]")
        if self.default_cooldown < 0:
            raise ValueError(f"DefaultCooldown: must be >= 0, got {self.default_cooldown}")
        if self.default_instance_warmup is not None and self.default_instance_warmup < 0:
            raise ValueError(f"DefaultInstanceWarmup: must be >= 0, got {self.default_instance_warmup}")


@dataclass(frozen=True)
class Datapoint:
    """One sample of a metric at ``timestamp``: per-instance values, or one group-level ``value``."""

    timestamp: float
    values: Mapping[str, float] = field(default_factory=dict)
    value: float | None = None


Metrics = Mapping[str, Sequence[Datapoint]]  # CloudWatch MetricName -> datapoints


# --- parsed policies ------------------------------------------------------------------------


@dataclass(frozen=True)
class StepAdjustment:
    lower: float | None
    upper: float | None
    adjustment: int


@dataclass(frozen=True)
class TargetTrackingPolicy:
    name: str
    metric: str  # CloudWatch MetricName
    target: float
    disable_scale_in: bool
    warmup: float | None


@dataclass(frozen=True)
class StepPolicy:
    name: str
    arn: str
    adjustment_type: str
    steps: tuple[StepAdjustment, ...]
    min_magnitude: int | None
    aggregation: str
    warmup: float | None
    alarm_names: tuple[str, ...]


@dataclass(frozen=True)
class SimplePolicy:
    name: str
    arn: str
    adjustment_type: str
    adjustment: int
    min_magnitude: int | None
    cooldown: float | None
    alarm_names: tuple[str, ...]


Policy = TargetTrackingPolicy | StepPolicy | SimplePolicy


@dataclass(frozen=True)
class Alarm:
    """A CloudWatch metric alarm (DescribeAlarms' MetricAlarms entry)."""

    name: str
    metric: str
    threshold: float
    comparison: str
    evaluation_periods: int
    datapoints_to_alarm: int
    period: float
    statistic: str
    actions: tuple[str, ...]

    def breaches(self, value: float) -> bool:
        return _compare(self.comparison, value, self.threshold)


@dataclass(frozen=True)
class CronField:
    values: frozenset[int]
    star: bool


@dataclass(frozen=True)
class Cron:
    minute: CronField
    hour: CronField
    day: CronField
    month: CronField
    weekday: CronField

    def matches(self, when: datetime) -> bool:
        """Whether the minute ``when`` (in the schedule's time zone) is a firing time.

        As in Unix cron, when both day-of-month and day-of-week are restricted either one matching is enough.
        """
        if when.minute not in self.minute.values or when.hour not in self.hour.values:
            return False
        if when.month not in self.month.values:
            return False
        day_ok = when.day in self.day.values
        weekday_ok = (when.isoweekday() % 7) in self.weekday.values
        if self.day.star or self.weekday.star:
            return day_ok and weekday_ok
        return day_ok or weekday_ok


@dataclass(frozen=True)
class ScheduledAction:
    name: str
    recurrence: Cron | None
    start: float | None
    end: float | None
    min_size: int | None
    max_size: int | None
    desired: int | None
    zone: ZoneInfo


# --- outputs --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScalingState:
    """What one evaluation hands to the next (all times on the caller's clock)."""

    alarm_states: Mapping[str, str] = field(default_factory=dict)
    alarm_invoked_at: Mapping[str, float] = field(default_factory=dict)
    cooldown_until: float | None = None
    last_scaling_at: float | None = None
    last_evaluated_at: float | None = None


@dataclass(frozen=True)
class Decision:
    """The outcome: the new desired/min/max (None when unchanged), why, and the state to carry."""

    desired_capacity: int | None
    min_size: int | None
    max_size: int | None
    reason: str
    source: str | None
    state: ScalingState


# --- validation helpers ---------------------------------------------------------------------


def _int(
    doc: Mapping[str, Any], key: str, where: str, *, required: bool = False, minimum: int | None = None
) -> int | None:
    if key not in doc or doc[key] is None:
        if required:
            raise ValueError(f"{where}.{key}: required")
        return None
    value = doc[key]
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{where}.{key}: must be an integer, got {value!r}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{where}.{key}: must be >= {minimum}, got {value}")
    return value


def _number(doc: Mapping[str, Any], key: str, where: str, *, required: bool = False) -> float | None:
    if key not in doc or doc[key] is None:
        if required:
            raise ValueError(f"{where}.{key}: required")
        return None
    value = doc[key]
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{where}.{key}: must be a finite number, got {value!r}")
    return float(value)


def _str(
    doc: Mapping[str, Any], key: str, where: str, *, required: bool = False, choices: Sequence[str] = ()
) -> str | None:
    if key not in doc or doc[key] is None:
        if required:
            raise ValueError(f"{where}.{key}: required")
        return None
    value = doc[key]
    if not isinstance(value, str) or not value:
        raise ValueError(f"{where}.{key}: must be a non-empty string, got {value!r}")
    if choices and value not in choices:
        raise ValueError(f"{where}.{key}: {value!r} is not one of {', '.join(choices)}")
    return value


def _mapping(doc: Mapping[str, Any], key: str, where: str) -> Mapping[str, Any] | None:
    value = doc.get(key)
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise ValueError(f"{where}.{key}: must be an object, got {type(value).__name__}")
    return value


def _alarm_names(doc: Mapping[str, Any], where: str) -> tuple[str, ...]:
    alarms = doc.get("Alarms") or []
    if not isinstance(alarms, list):
        raise ValueError(f"{where}.Alarms: must be a list")
    names = []
    for i, alarm in enumerate(alarms):
        if not isinstance(alarm, Mapping):
            raise ValueError(f"{where}.Alarms[{i}]: must be an object")
        names.append(_str(alarm, "AlarmName", f"{where}.Alarms[{i}]", required=True) or "")
    return tuple(names)


# --- parsing --------------------------------------------------------------------------------


def parse_policy(doc: Mapping[str, Any]) -> Policy | None:
    """A DescribePolicies ScalingPolicies entry, checked; None for a disabled or predictive policy."""
    if not isinstance(doc, Mapping):
        raise ValueError(f"ScalingPolicy: must be an object, got {type(doc).__name__}")
    name = _str(doc, "PolicyName", "ScalingPolicy", required=True) or ""
    where = f"ScalingPolicy[{name}]"
    kind = _str(doc, "PolicyType", where, choices=POLICY_TYPES) or "SimpleScaling"
    enabled = doc.get("Enabled", True)
    if not isinstance(enabled, bool):
        raise ValueError(f"{where}.Enabled: must be a boolean, got {enabled!r}")
    warmup_int = _int(doc, "EstimatedInstanceWarmup", where, minimum=0)
    warmup = None if warmup_int is None else float(warmup_int)
    arn = _str(doc, "PolicyARN", where) or ""
    if kind == "PredictiveScaling" or not enabled:
        return None
    if kind == "TargetTrackingScaling":
        return _parse_target_tracking(doc, name, where, warmup)
    adjustment_type = _str(doc, "AdjustmentType", where, required=True, choices=ADJUSTMENT_TYPES) or ""
    magnitude = _int(doc, "MinAdjustmentMagnitude", where, minimum=0)
    if magnitude is not None and adjustment_type != "PercentChangeInCapacity":
        raise ValueError(f"{where}.MinAdjustmentMagnitude: only valid with PercentChangeInCapacity")
    alarms = _alarm_names(doc, where)
    if kind == "StepScaling":
        aggregation = _str(doc, "MetricAggregationType", where, choices=AGGREGATIONS) or "Average"
        steps = _parse_steps(doc.get("StepAdjustments"), adjustment_type, where)
        return StepPolicy(name, arn, adjustment_type, steps, magnitude, aggregation, warmup, alarms)
    adjustment = _int(doc, "ScalingAdjustment", where, required=True)
    assert adjustment is not None
    if adjustment_type == "ExactCapacity" and adjustment < 0:
        raise ValueError(f"{where}.ScalingAdjustment: ExactCapacity needs a non-negative value, got {adjustment}")
    cooldown_int = _int(doc, "Cooldown", where, minimum=0)
    cooldown = None if cooldown_int is None else float(cooldown_int)
    return SimplePolicy(name, arn, adjustment_type, adjustment, magnitude, cooldown, alarms)


def _parse_target_tracking(doc: Mapping[str, Any], name: str, where: str, warmup: float | None) -> TargetTrackingPolicy:
    config = _mapping(doc, "TargetTrackingConfiguration", where)
    if config is None:
        raise ValueError(f"{where}.TargetTrackingConfiguration: required for TargetTrackingScaling")
    cwhere = f"{where}.TargetTrackingConfiguration"
    target = _number(config, "TargetValue", cwhere, required=True)
    assert target is not None
    if target <= 0:
        raise ValueError(f"{cwhere}.TargetValue: must be > 0, got {target}")
    disable = config.get("DisableScaleIn", False)
    if not isinstance(disable, bool):
        raise ValueError(f"{cwhere}.DisableScaleIn: must be a boolean, got {disable!r}")
    predefined = _mapping(config, "PredefinedMetricSpecification", cwhere)
    customized = _mapping(config, "CustomizedMetricSpecification", cwhere)
    if (predefined is None) == (customized is None):
        raise ValueError(f"{cwhere}: exactly one of PredefinedMetricSpecification, CustomizedMetricSpecification")
    if predefined is not None:
        kind = _str(
            predefined,
            "PredefinedMetricType",
            f"{cwhere}.PredefinedMetricSpecification",
            required=True,
            choices=tuple(PREDEFINED_METRICS),
        )
        metric = PREDEFINED_METRICS[kind or ""]
    else:
        assert customized is not None
        metric = _str(customized, "MetricName", f"{cwhere}.CustomizedMetricSpecification", required=True) or ""
    return TargetTrackingPolicy(name, metric, target, disable, warmup)


def _parse_steps(raw: Any, adjustment_type: str, where: str) -> tuple[StepAdjustment, ...]:
    if not isinstance(raw, list) or not raw:
        raise ValueError(f"{where}.StepAdjustments: required, a non-empty list")
    steps = []
    for i, item in enumerate(raw):
        swhere = f"{where}.StepAdjustments[{i}]"
        if not isinstance(item, Mapping):
            raise ValueError(f"{swhere}: must be an object")
        lower = _number(item, "MetricIntervalLowerBound", swhere)
        upper = _number(item, "MetricIntervalUpperBound", swhere)
        adjustment = _int(item, "ScalingAdjustment", swhere, required=True)
        assert adjustment is not None
        if lower is None and upper is None:
            raise ValueError(f"{swhere}: MetricIntervalLowerBound and MetricIntervalUpperBound can't both be null")
        if lower is not None and upper is not None and upper <= lower:
            raise ValueError(f"{swhere}.MetricIntervalUpperBound: must be greater than the lower bound")
        if adjustment_type == "ExactCapacity" and adjustment < 0:
            raise ValueError(f"{swhere}.ScalingAdjustment: ExactCapacity needs a non-negative value")
        steps.append(StepAdjustment(lower, upper, adjustment))
    ordered = sorted(steps, key=lambda s: -math.inf if s.lower is None else s.lower)
    if sum(s.lower is None for s in steps) > 1:
        raise ValueError(f"{where}.StepAdjustments: only one MetricIntervalLowerBound can be null")
    if sum(s.upper is None for s in steps) > 1:
        raise ValueError(f"{where}.StepAdjustments: only one MetricIntervalUpperBound can be null")
    for left, right in itertools.pairwise(ordered):
        if left.upper is None or right.lower is None or left.upper != right.lower:
            raise ValueError(f"{where}.StepAdjustments: ranges overlap or leave a gap")
    if ordered[0].lower is not None and ordered[0].lower < 0:
        raise ValueError(f"{where}.StepAdjustments: a negative lower bound needs a step with a null lower bound")
    if ordered[-1].upper is not None and ordered[-1].upper > 0:
        raise ValueError(f"{where}.StepAdjustments: a positive upper bound needs a step with a null upper bound")
    return tuple(ordered)


def parse_alarm(doc: Mapping[str, Any]) -> Alarm:
    """A DescribeAlarms MetricAlarms entry, checked."""
    if not isinstance(doc, Mapping):
        raise ValueError(f"MetricAlarm: must be an object, got {type(doc).__name__}")
    name = _str(doc, "AlarmName", "MetricAlarm", required=True) or ""
    where = f"MetricAlarm[{name}]"
    metric = _str(doc, "MetricName", where, required=True) or ""
    threshold = _number(doc, "Threshold", where, required=True)
    comparison = _str(doc, "ComparisonOperator", where, required=True, choices=COMPARISONS) or ""
    periods = _int(doc, "EvaluationPeriods", where, required=True, minimum=1)
    assert periods is not None and threshold is not None
    to_alarm = _int(doc, "DatapointsToAlarm", where, minimum=1) or periods
    if to_alarm > periods:
        raise ValueError(f"{where}.DatapointsToAlarm: must be <= EvaluationPeriods ({periods}), got {to_alarm}")
    period = _int(doc, "Period", where, required=True, minimum=1)
    assert period is not None
    statistic = _str(doc, "Statistic", where, choices=STATISTICS) or "Average"
    actions = doc.get("AlarmActions") or []
    if not isinstance(actions, list) or not all(isinstance(a, str) for a in actions):
        raise ValueError(f"{where}.AlarmActions: must be a list of ARNs")
    return Alarm(name, metric, threshold, comparison, periods, to_alarm, float(period), statistic, tuple(actions))


_MONTHS = {
    m: i + 1 for i, m in enumerate(("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"))
}
_WEEKDAYS = {d: i for i, d in enumerate(("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"))}


def _cron_value(text: str, names: Mapping[str, int], where: str) -> int:
    upper = text.upper()
    if upper in names:
        return names[upper]
    if not text.isdigit():
        raise ValueError(f"{where}: {text!r} is not a number")
    return int(text)


def _cron_field(text: str, low: int, high: int, names: Mapping[str, int], where: str) -> CronField:
    values: set[int] = set()
    for part in text.split(","):
        base, _, step_text = part.partition("/")
        step = 1
        if step_text:
            if not step_text.isdigit() or int(step_text) < 1:
                raise ValueError(f"{where}: bad step in {part!r}")
            step = int(step_text)
        if base == "*":
            first, last = low, high
        elif "-" in base:
            a, _, b = base.partition("-")
            first, last = _cron_value(a, names, where), _cron_value(b, names, where)
        else:
            first = _cron_value(base, names, where)
            last = high if step_text else first
        if not low <= first <= last <= high:
            raise ValueError(f"{where}: {part!r} outside {low}-{high}")
        values.update(range(first, last + 1, step))
    return CronField(frozenset(values), text.startswith("*"))


def parse_cron(text: str, where: str = "Recurrence") -> Cron:
    """A 5-field Unix cron expression: minute hour day-of-month month day-of-week."""
    fields = text.split()
    if len(fields) != 5:
        raise ValueError(f"{where}: need 5 cron fields (minute hour day month weekday), got {text!r}")
    weekday = _cron_field(fields[4], 0, 7, _WEEKDAYS, f"{where} (day-of-week)")
    weekday = CronField(frozenset(v % 7 for v in weekday.values), weekday.star)  # 7 is Sunday too
    return Cron(
        _cron_field(fields[0], 0, 59, {}, f"{where} (minute)"),
        _cron_field(fields[1], 0, 23, {}, f"{where} (hour)"),
        _cron_field(fields[2], 1, 31, {}, f"{where} (day-of-month)"),
        _cron_field(fields[3], 1, 12, _MONTHS, f"{where} (month)"),
        weekday,
    )


def _epoch(value: Any, where: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError(f"{where}: not a time: {value!r}")
    if isinstance(value, int | float):
        return float(value)
    moment: datetime
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError as exc:
            raise ValueError(f"{where}: not an ISO 8601 time: {value!r}") from exc
    elif isinstance(value, datetime):
        moment = value
    else:
        raise ValueError(f"{where}: not a time: {value!r}")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)  # the API's times are UTC
    return moment.timestamp()


def parse_scheduled_action(doc: Mapping[str, Any]) -> ScheduledAction:
    """A DescribeScheduledActions ScheduledUpdateGroupActions entry, checked."""
    if not isinstance(doc, Mapping):
        raise ValueError(f"ScheduledAction: must be an object, got {type(doc).__name__}")
    name = _str(doc, "ScheduledActionName", "ScheduledAction", required=True) or ""
    where = f"ScheduledAction[{name}]"
    recurrence_text = _str(doc, "Recurrence", where)
    recurrence = None if recurrence_text is None else parse_cron(recurrence_text, f"{where}.Recurrence")
    start = _epoch(doc.get("StartTime"), f"{where}.StartTime")
    end = _epoch(doc.get("EndTime"), f"{where}.EndTime")
    if recurrence is None and start is None:
        raise ValueError(f"{where}.StartTime: required when there is no Recurrence")
    if start is not None and end is not None and end < start:
        raise ValueError(f"{where}.EndTime: before StartTime")
    min_size = _int(doc, "MinSize", where, minimum=0)
    max_size = _int(doc, "MaxSize", where, minimum=0)
    desired = _int(doc, "DesiredCapacity", where, minimum=0)
    if min_size is None and max_size is None and desired is None:
        raise ValueError(f"{where}: needs at least one of MinSize, MaxSize, DesiredCapacity")
    if min_size is not None and max_size is not None and min_size > max_size:
        raise ValueError(f"{where}.MinSize: {min_size} greater than MaxSize {max_size}")
    zone_name = _str(doc, "TimeZone", where) or "Etc/UTC"
    try:
        zone = ZoneInfo(zone_name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"{where}.TimeZone: unknown time zone {zone_name!r}") from exc
    return ScheduledAction(name, recurrence, start, end, min_size, max_size, desired, zone)


# --- pure rules -----------------------------------------------------------------------------


def _compare(comparison: str, value: float, threshold: float) -> bool:
    if comparison == "GreaterThanOrEqualToThreshold":
        return value >= threshold
    if comparison == "GreaterThanThreshold":
        return value > threshold
    if comparison == "LessThanThreshold":
        return value < threshold
    return value <= threshold


def percent_adjustment(capacity: int, percent: int, min_magnitude: int | None = None) -> int:
    """The change ``PercentChangeInCapacity`` makes: above 1 rounded down, between 0 and 1 to 1,
    between 0 and -1 to -1, below -1 rounded up; then at least ``MinAdjustmentMagnitude``."""
    raw = capacity * percent / 100
    if raw == 0:
        change = 0
    elif 0 < raw < 1:
        change = 1
    elif -1 < raw < 0:
        change = -1
    else:
        change = math.trunc(raw)  # down above 1, up below -1
    if min_magnitude and percent != 0 and abs(change) < min_magnitude:
        change = min_magnitude if percent > 0 else -min_magnitude
    return change


def apply_adjustment(capacity: int, adjustment_type: str, adjustment: int, min_magnitude: int | None = None) -> int:
    """The capacity a step or simple adjustment asks for, from ``capacity`` (before the min/max limits)."""
    if adjustment_type == "ExactCapacity":
        return adjustment
    if adjustment_type == "ChangeInCapacity":
        return capacity + adjustment
    if adjustment_type == "PercentChangeInCapacity":
        return capacity + percent_adjustment(capacity, adjustment, min_magnitude)
    raise ValueError(f"AdjustmentType: {adjustment_type!r} is not one of {', '.join(ADJUSTMENT_TYPES)}")


def select_step(steps: Sequence[StepAdjustment], metric: float, threshold: float) -> StepAdjustment | None:
    """The step whose interval holds ``metric - threshold``: above the threshold lower bound
    inclusive and upper exclusive, below it the reverse. At the threshold itself a step starting
    at 0 (scale-out side) is taken, else one ending at 0 (scale-in side)."""
    diff = metric - threshold

    def above(step: StepAdjustment) -> bool:
        return (step.lower is None or diff >= step.lower) and (step.upper is None or diff < step.upper)

    def below(step: StepAdjustment) -> bool:
        return (step.lower is None or diff > step.lower) and (step.upper is None or diff <= step.upper)

    if diff > 0:
        return next((s for s in steps if above(s)), None)
    if diff < 0:
        return next((s for s in steps if below(s)), None)
    return next((s for s in steps if above(s)), None) or next((s for s in steps if below(s)), None)


def target_tracking_capacity(capacity: int, metric: float, target: float) -> int:
    """The capacity that brings the metric to or below ``target``: ceil(capacity * metric / target)."""
    if target <= 0:
        raise ValueError(f"TargetValue: must be > 0, got {target}")
    exact = capacity * metric / target
    # a hair of tolerance so 4 * 75 / 50 == 6 does not become 7 through float error
    return max(0, math.ceil(exact - 1e-9))


def _grows(adjustment_type: str, adjustment: int, desired: int) -> bool:
    if adjustment_type == "ExactCapacity":
        return adjustment > desired
    return adjustment > 0


def clamp(value: int, low: int, high: int) -> int:
    return max(low, min(high, value))


def warmup_for(policy: TargetTrackingPolicy | StepPolicy, group: GroupState) -> float:
    """The policy's warm-up in AWS seconds: its own, else the group's default instance warmup,
    else the group's default cooldown."""
    if policy.warmup is not None:
        return policy.warmup
    if group.default_instance_warmup is not None:
        return group.default_instance_warmup
    return group.default_cooldown


def _warming(instance: Instance, at: float, warmup: float) -> bool:
    return at < instance.in_service_at + warmup


def _statistic(values: Sequence[float], statistic: str) -> float:
    if statistic == "Sum":
        return sum(values)
    if statistic == "Minimum":
        return min(values)
    if statistic == "Maximum":
        return max(values)
    if statistic == "SampleCount":
        return float(len(values))
    return sum(values) / len(values)


def period_values(
    datapoints: Sequence[Datapoint],
    group: GroupState,
    now: float,
    period: float,
    periods: int,
    warmup: float,
    statistic: str = "Average",
) -> list[float | None]:
    """The metric's value in each of the last ``periods`` periods (newest first, None when missing),
    leaving out instances still in warm-up at each datapoint's time and instances not in the group."""
    members = {i.instance_id: i for i in group.instances}
    buckets: list[list[float]] = [[] for _ in range(periods)]
    for point in datapoints:
        age = now - point.timestamp
        if age < 0 or age >= period * periods:
            continue
        slot = int(age // period)
        if point.values:
            for instance_id, value in point.values.items():
                member = members.get(instance_id)
                if member is not None and not _warming(member, point.timestamp, warmup):
                    buckets[slot].append(value)
        elif point.value is not None:
            buckets[slot].append(point.value)
    return [_statistic(b, statistic) if b else None for b in buckets]


def evaluate_alarm(values: Sequence[float | None], datapoints_to_alarm: int, breaches: Any) -> str:
    """CloudWatch's M-out-of-N: ALARM with at least M breaching periods, INSUFFICIENT_DATA with no data at all."""
    present = [v for v in values if v is not None]
    if not present:
        return INSUFFICIENT_DATA
    return ALARM if sum(1 for v in present if breaches(v)) >= datapoints_to_alarm else OK


def cron_occurrence(action: ScheduledAction, after: float, until: float) -> float | None:
    """The latest time in (after, until] at which ``action`` runs, or None."""
    if action.recurrence is None:
        start = action.start
        return start if start is not None and after < start <= until else None
    lower = after if action.start is None else max(after, action.start - 1e-6)
    upper = until if action.end is None else min(until, action.end)
    lower = max(lower, until - MAX_SCHEDULE_LOOKBACK)
    minute = math.floor(upper / 60) * 60
    while minute > lower:
        local = datetime.fromtimestamp(minute, UTC).astimezone(action.zone)
        if action.recurrence.matches(local):
            return float(minute)
        minute -= 60
    return None


def apply_scheduled(action: ScheduledAction, min_size: int, max_size: int, desired: int) -> tuple[int, int, int]:
    """The group's (min, max, desired) after ``action`` runs (UpdateAutoScalingGroup's rules)."""
    new_min = min_size if action.min_size is None else action.min_size
    new_max = max_size if action.max_size is None else action.max_size
    if new_min > new_max:
        # only one limit given and it crosses the other: the given one wins, as AWS rejects the pair otherwise
        if action.min_size is None:
            new_min = new_max
        else:
            new_max = new_min
    wanted = desired if action.desired is None else action.desired
    return new_min, new_max, clamp(wanted, new_min, new_max)


# --- the evaluation -------------------------------------------------------------------------


@dataclass(frozen=True)
class _Candidate:
    capacity: int
    source: str
    reason: str
    simple_cooldown: float | None = None
    is_simple: bool = False


def evaluate(
    group: GroupState,
    now: float,
    *,
    policies: Sequence[Mapping[str, Any]] = (),
    scheduled_actions: Sequence[Mapping[str, Any]] = (),
    alarms: Sequence[Mapping[str, Any]] = (),
    metrics: Metrics | None = None,
    state: ScalingState | None = None,
    time_scale: float = DEFAULT_TIME_SCALE,
) -> Decision:
    """One evaluation of the group's scheduled actions and dynamic policies at clock ``now``.

    Scheduled actions due since the last evaluation run first (in time order) and set the limits;
    then every enabled dynamic policy whose alarm invokes it proposes a capacity; the largest
    proposal wins, scale-ins are dropped while a scale-out is in progress, and the result is kept
    within min and max.
    """
    if isinstance(time_scale, bool) or not isinstance(time_scale, int | float) or not time_scale > 0:
        raise ValueError(f"time_scale: must be a number > 0, got {time_scale!r}")
    state = state or ScalingState()
    metrics = metrics or {}
    parsed = [p for p in (parse_policy(d) for d in policies) if p is not None]
    actions = [parse_scheduled_action(d) for d in scheduled_actions]
    parsed_alarms = {a.name: a for a in (parse_alarm(d) for d in alarms)}

    def scaled(seconds: float) -> float:
        return seconds / time_scale

    # 1. scheduled actions
    min_size, max_size, desired = group.min_size, group.max_size, group.desired_capacity
    after = state.last_evaluated_at if state.last_evaluated_at is not None else now - 60.0
    due = sorted(
        ((when, action) for action in actions if (when := cron_occurrence(action, after, now)) is not None),
        key=lambda item: (item[0], item[1].name),
    )
    reasons: list[str] = []
    source: str | None = None
    for when, action in due:
        min_size, max_size, desired = apply_scheduled(action, min_size, max_size, desired)
        reasons.append(
            f"scheduled action {action.name} at {datetime.fromtimestamp(when, UTC):%Y-%m-%dT%H:%MZ}: "
            f"min {min_size}, max {max_size}, desired {desired}"
        )
        source = action.name

    # 2. alarms and the policies they invoke
    alarm_states = dict(state.alarm_states)
    invoked_at = dict(state.alarm_invoked_at)

    decided: dict[str, bool] = {}  # each alarm is evaluated once, whatever number of policies it invokes

    def invoke(name: str, new_state: str) -> bool:
        if name in decided:
            return decided[name]
        previous = alarm_states.get(name)
        alarm_states[name] = new_state
        last = invoked_at.get(name)
        if new_state != ALARM:
            invoked_at.pop(name, None)
            decided[name] = False
        elif previous != ALARM or last is None or now - last >= scaled(ALARM_REPEAT) - 1e-9:
            invoked_at[name] = now
            decided[name] = True
        else:
            decided[name] = False
        return decided[name]

    active = [i for i in group.instances if not i.terminating]
    scale_out_candidates: list[_Candidate] = []
    scale_in_candidates: list[_Candidate] = []
    tt_in: list[tuple[TargetTrackingPolicy, bool, _Candidate | None]] = []

    def in_service_capacity(warmup: float) -> int:
        return sum(1 for i in active if not _warming(i, now, scaled(warmup)))

    for policy in parsed:
        if isinstance(policy, TargetTrackingPolicy):
            warm = scaled(warmup_for(policy, group))
            points = metrics.get(policy.metric, ())
            high = period_values(points, group, now, scaled(TT_PERIOD), TT_HIGH_DATAPOINTS, warm)
            high_state = evaluate_alarm(high, TT_HIGH_DATAPOINTS, lambda v, t=policy.target: v > t)
            capacity = in_service_capacity(warmup_for(policy, group))
            if invoke(f"TargetTracking-{policy.name}-AlarmHigh", high_state):
                metric = high[0] if high[0] is not None else next(v for v in high if v is not None)
                wanted = target_tracking_capacity(capacity, metric, policy.target)
                scale_out_candidates.append(
                    _Candidate(
                        max(desired, wanted),
                        policy.name,
                        f"target tracking {policy.name}: {policy.metric} {metric:g} > target {policy.target:g} "
                        f"for {TT_HIGH_DATAPOINTS} datapoints; ceil({capacity} x {metric:g} / {policy.target:g}) "
                        f"= {wanted}",
                    )
                )
            if policy.disable_scale_in:
                continue
            threshold = LOW_ALARM_RATIO * policy.target
            low = period_values(points, group, now, scaled(TT_PERIOD), TT_LOW_DATAPOINTS, warm)
            low_state = evaluate_alarm(low, TT_LOW_DATAPOINTS, lambda v, t=threshold: v < t)
            fired = invoke(f"TargetTracking-{policy.name}-AlarmLow", low_state)
            candidate = None
            if low_state == ALARM:
                base = len(group.instances) if group.instances else desired
                metric = low[0] if low[0] is not None else next(v for v in low if v is not None)
                wanted = target_tracking_capacity(base, metric, policy.target)
                candidate = _Candidate(
                    min(desired, wanted),
                    policy.name,
                    f"target tracking {policy.name}: {policy.metric} {metric:g} < {threshold:g} "
                    f"({LOW_ALARM_RATIO:g} x target) for {TT_LOW_DATAPOINTS} datapoints; "
                    f"ceil({base} x {metric:g} / {policy.target:g}) = {wanted}",
                )
            tt_in.append((policy, fired, candidate))
            continue

        # step and simple policies: the alarms that invoke them
        names = set(policy.alarm_names) | {
            a.name for a in parsed_alarms.values() if policy.arn and policy.arn in a.actions
        }
        for alarm_name in sorted(names):
            alarm = parsed_alarms.get(alarm_name)
            if alarm is None:
                continue
            warmup = warmup_for(policy, group) if isinstance(policy, StepPolicy) else 0.0
            values = period_values(
                metrics.get(alarm.metric, ()),
                group,
                now,
                scaled(alarm.period),
                alarm.evaluation_periods,
                scaled(warmup),
                alarm.statistic,
            )
            if not invoke(alarm_name, evaluate_alarm(values, alarm.datapoints_to_alarm, alarm.breaches)):
                continue
            present = [v for v in values if v is not None]
            if isinstance(policy, StepPolicy):
                metric = _statistic(present, policy.aggregation)
                step = select_step(policy.steps, metric, alarm.threshold)
                if step is None:
                    continue
                if _grows(policy.adjustment_type, step.adjustment, desired):
                    # scale out from the capacity past warm-up; what is warming already counts in desired
                    capacity = in_service_capacity(warmup)
                    wanted = max(
                        desired,
                        apply_adjustment(capacity, policy.adjustment_type, step.adjustment, policy.min_magnitude),
                    )
                    into = scale_out_candidates
                else:
                    # scale in from the current capacity, terminating instances included
                    capacity = len(group.instances) if group.instances else desired
                    wanted = min(
                        desired,
                        apply_adjustment(capacity, policy.adjustment_type, step.adjustment, policy.min_magnitude),
                    )
                    into = scale_in_candidates
                into.append(
                    _Candidate(
                        wanted,
                        policy.name,
                        f"step scaling {policy.name}: alarm {alarm_name} {policy.aggregation} {metric:g} vs threshold "
                        f"{alarm.threshold:g}, step {step.adjustment:+d} {policy.adjustment_type} "
                        f"on {capacity} -> {wanted}",
                    )
                )
            else:
                metric = present[0]
                if state.cooldown_until is not None and now < state.cooldown_until:
                    reasons.append(f"simple scaling {policy.name}: alarm {alarm_name} in ALARM, blocked by cooldown")
                    continue
                wanted = apply_adjustment(desired, policy.adjustment_type, policy.adjustment, policy.min_magnitude)
                reason = (
                    f"simple scaling {policy.name}: alarm {alarm_name} {metric:g} vs threshold {alarm.threshold:g}, "
                    f"{policy.adjustment:+d} {policy.adjustment_type} on {desired} = {wanted}"
                )
                candidate = _Candidate(wanted, policy.name, reason, policy.cooldown, is_simple=True)
                (scale_out_candidates if wanted > desired else scale_in_candidates).append(candidate)

    # target tracking scales in only when every policy with scale-in enabled is ready to
    if tt_in and all(c is not None for _, _, c in tt_in) and any(fired for _, fired, _ in tt_in):
        best = max((c for _, _, c in tt_in if c is not None), key=lambda c: c.capacity)
        scale_in_candidates.append(best)

    # 3. the largest capacity wins; scale-in waits for a scale-out in progress
    chosen: _Candidate | None = None
    outs = [c for c in scale_out_candidates if c.capacity > desired]
    ins = [c for c in scale_in_candidates if c.capacity < desired]
    if outs:
        chosen = max(outs, key=lambda c: c.capacity)
    elif ins:
        in_progress = desired > len(active) or any(
            _warming(i, now, scaled(warmup_for(p, group)))
            for i in active
            for p in parsed
            if isinstance(p, TargetTrackingPolicy | StepPolicy)
        )
        if in_progress:
            reasons.append("scale-in blocked: a scale-out is in progress (instances warming up)")
        else:
            chosen = max(ins, key=lambda c: c.capacity)

    cooldown_until = state.cooldown_until
    last_scaling_at = state.last_scaling_at
    new_desired = desired
    if chosen is not None:
        bounded = clamp(chosen.capacity, min_size, max_size)
        if bounded != desired:
            new_desired = bounded
            limit = ""
            if bounded != chosen.capacity:
                limit = f" (kept within min {min_size} / max {max_size})"
            reasons.append(f"{chosen.reason} -> desired {bounded}{limit}")
            source = chosen.source
        else:
            reasons.append(f"{chosen.reason}; already at the {'max' if chosen.capacity > desired else 'min'} size")
    if new_desired != group.desired_capacity:
        last_scaling_at = now
        cooldown = group.default_cooldown
        if chosen is not None and chosen.is_simple and chosen.simple_cooldown is not None:
            cooldown = chosen.simple_cooldown
        cooldown_until = now + scaled(cooldown)

    new_state = replace(
        state,
        alarm_states=alarm_states,
        alarm_invoked_at=invoked_at,
        cooldown_until=cooldown_until,
        last_scaling_at=last_scaling_at,
        last_evaluated_at=now,
    )
    return Decision(
        desired_capacity=new_desired if new_desired != group.desired_capacity else None,
        min_size=min_size if min_size != group.min_size else None,
        max_size=max_size if max_size != group.max_size else None,
        reason="; ".join(reasons) if reasons else "no change",
        source=source,
        state=new_state,
    )
