"""EC2 Auto Scaling's dynamic and scheduled scaling, and the CloudWatch metrics it scales on.

moto stores scaling policies, scheduled actions and alarms but never runs them, and publishes no
metrics. Every round this reconciler plays the services that do:

1. CloudWatch's metrics, as AWS publishes them, put into the emulator's CloudWatch (PutMetricData):

   - ``AWS/EC2`` ``CPUUtilization`` (Percent) per ``InstanceId``, and the average of each group's
     instances per ``AutoScalingGroupName``: CPU time an instance container used (its cgroup's
     ``cpu.stat`` ``usage_usec``, or ``cpuacct.usage`` on cgroup v1) over the wall time, divided by
     the container's CPU quota, or 1 CPU without one (the twin starts containers without ``--cpus``:
     gearlift.twin.dataplane.ec2), kept within 0-100 as EC2 reports it;
   - ``AWS/ApplicationELB`` ``RequestCountPerTarget`` (Count, a per-minute Sum) per ``TargetGroup``
     (``targetgroup/<name>/<id>``) and per ``LoadBalancer``, ``TargetGroup``: the requests the target
     group's HAProxy servers took (``show stat``: ``req_tot``, else ``stot``) divided by its healthy
     targets; ``TargetResponseTime`` (Seconds) per ``LoadBalancer`` (``app/<name>/<id>``): the servers'
     ``rtime`` (HAProxy's average over its last 1024 requests) weighted by their requests. As on AWS,
     the load balancer metrics are published only for periods with requests.

2. EC2 Auto Scaling's evaluation of every group (DescribeAutoScalingGroups, DescribePolicies,
   DescribeScheduledActions and the DescribeAlarms alarms that invoke its step and simple policies)
   by gearlift.twin.scaling.evaluate, with the state it carries kept per group between rounds.

3. The decision applied through the API as the service does: SetDesiredCapacity (HonorCooldown
   false: the evaluation already played the cooldowns) for a policy, UpdateAutoScalingGroup for a
   scheduled action that changes the group's min or max. Each applied activity is logged
   (``scaling: <group> <old> -> <new> (<reason>)``, the twin prefixes ``twin:``) and kept in
   ``ScalingReconciler.activities`` (DescribeScalingActivities stays empty: moto records none).

Time compression: ``TIME_SCALE`` AWS seconds pass per clock second (60: one AWS minute is one
second), for alarm periods, warm-ups and cooldowns (gearlift.twin.scaling); scheduled actions follow
the wall clock. A round is longer than a compressed minute, so each round's measurement is spread
over datapoints at most one compressed minute apart (``spread``); RequestCountPerTarget is counted
per compressed minute. The emulator's CloudWatch holds the datapoints at their wall-clock times, so
its own 60-second statistics aggregate 60 AWS minutes.

Approximations: policies are evaluated on the datapoints this reconciler published (kept in
memory), not read back from CloudWatch, and by metric name only (gearlift.twin.scaling): an alarm on
a metric the twin does not publish (NetworkIn/Out, the app's own metrics, metric math) has no data
and never invokes its policy; an alarm's dimensions are not compared. An instance's warm-up starts
when its container started (or when the group first listed it InService, if later). HAProxy's
counters restart with every reload (a new process): a counter that went down counts from zero, and
what the old process served after the last reading is lost. With no healthy target the request
count is divided by the registered targets. Suspended ``AlarmNotification`` / ``ScheduledActions``
processes are honoured; instance weights, warm pools and predictive scaling are not played.
"""

from __future__ import annotations

import csv
import io
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from botocore.exceptions import ClientError

from gearlift.twin import podman, scaling
from gearlift.twin.awsclients import paginate
from gearlift.twin.dataplane import Round
from gearlift.twin.dataplane.elbv2 import _backend_id
from gearlift.twin.errors import TwinError
from gearlift.twin.scaling import Datapoint, GroupState, Instance, ScalingState

Log = Callable[[str], None]
ClientFactory = Callable[[str], Any]  # service name -> boto3 client (gearlift.twin.awsclients.Clients)

#: AWS seconds per clock second: one AWS minute of alarm periods, warm-ups and cooldowns lasts one second.
TIME_SCALE = 60.0
CGROUP_ROOT = Path("/sys/fs/cgroup")
#: AWS seconds of datapoints kept for the evaluation: an alarm looks back at most one day
#: (EvaluationPeriods x Period <= 86,400 s).
HISTORY = 86_400.0
#: At most this many datapoints per measurement (a long pause leaves gaps rather than a flood).
MAX_POINTS_PER_ROUND = 60
#: MetricData items per PutMetricData call.
PUT_BATCH = 100
EC2_NAMESPACE = "AWS/EC2"
ELB_NAMESPACE = "AWS/ApplicationELB"
_V1_CPUACCT = ("cpuacct", "cpu,cpuacct", "cpuacct,cpu")
_V1_CPU = ("cpu", "cpu,cpuacct", "cpuacct,cpu")


# --- cgroup CPU -----------------------------------------------------------------------------


@dataclass(frozen=True)
class CpuSample:
    """A container's cumulative CPU time and its CPU quota in CPUs (None: no quota)."""

    usage_usec: int
    cpus: float | None = None


def parse_cpu_stat(text: str) -> int | None:
    """``usage_usec`` of a cgroup v2 ``cpu.stat``; None when absent (cgroup v1's cpu.stat has none)."""
    for line in text.splitlines():
        key, _, value = line.strip().partition(" ")
        if key == "usage_usec" and value.strip().isdigit():
            return int(value)
    return None


def parse_cpu_max(text: str) -> float | None:
    """The CPUs a cgroup v2 ``cpu.max`` ("$MAX $PERIOD") allows; None without a limit ("max ...")."""
    parts = text.split()
    if not parts or parts[0] == "max":
        return None
    try:
        quota = float(parts[0])
        period = float(parts[1]) if len(parts) > 1 else 100_000.0
    except ValueError:
        return None
    return quota / period if quota > 0 and period > 0 else None


def parse_cfs_quota(quota: str, period: str) -> float | None:
    """The CPUs cgroup v1's ``cpu.cfs_quota_us`` / ``cpu.cfs_period_us`` allow; None for no limit (-1)."""
    try:
        q, p = float(quota.strip()), float(period.strip())
    except ValueError:
        return None
    return q / p if q > 0 and p > 0 else None


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except OSError:
        return None


def read_cgroup_cpu(cgroup_path: str, root: Path = CGROUP_ROOT) -> CpuSample | None:
    """The CPU sample of the cgroup at ``cgroup_path`` (podman inspect's State.CgroupPath) under ``root``.

    cgroup v2 (``<root>/<path>/cpu.stat`` usage_usec, ``cpu.max``), the unified hierarchy of a hybrid
    layout (``<root>/unified/<path>``), or cgroup v1 (``<root>/cpuacct/<path>/cpuacct.usage`` in
    nanoseconds, the quota from ``<root>/cpu/<path>/cpu.cfs_quota_us``). None when none is readable.
    """
    rel = cgroup_path.strip("/")
    v1_quota: float | None = None
    for controller in _V1_CPU:
        quota, period = (
            _read(root / controller / rel / "cpu.cfs_quota_us"),
            _read(root / controller / rel / "cpu.cfs_period_us"),
        )
        if quota is not None and period is not None:
            v1_quota = parse_cfs_quota(quota, period)
            break
    for base in (root, root / "unified"):
        usage = parse_cpu_stat(_read(base / rel / "cpu.stat") or "")
        if usage is not None:
            cpus = parse_cpu_max(_read(base / rel / "cpu.max") or "")
            return CpuSample(usage, cpus if cpus is not None else v1_quota)
    for controller in _V1_CPUACCT:
        text = (_read(root / controller / rel / "cpuacct.usage") or "").strip()
        if text.isdigit():
            return CpuSample(int(text) // 1000, v1_quota)
    return None


def cpu_utilization(before: CpuSample, after: CpuSample, seconds: float) -> float | None:
    """EC2's CPUUtilization (percent) between two samples ``seconds`` apart: the CPU time used over
    the wall time times the quota's CPUs (1 without a quota), within 0-100. None when it can't be
    told (no time passed, or the counter went back: a restarted container)."""
    used = after.usage_usec - before.usage_usec
    if seconds <= 0 or used < 0:
        return None
    cpus = after.cpus or 1.0
    return max(0.0, min(100.0, 100.0 * used / (seconds * 1_000_000 * cpus)))


# --- HAProxy statistics ---------------------------------------------------------------------


@dataclass(frozen=True)
class ServerStat:
    """One server (target) row of HAProxy's ``show stat``."""

    backend: str
    server: str
    status: str
    weight: int
    requests: int  # req_tot (HTTP requests), else stot (sessions): cumulative since the process started
    response_ms: float | None  # rtime: average response time over the last 1024 requests


def _number(row: Mapping[str, str | None], key: str) -> float | None:
    raw = (row.get(key) or "").strip()
    try:
        return float(raw) if raw else None
    except ValueError:
        return None


def parse_haproxy_stats(text: str) -> list[ServerStat]:
    """The server rows of ``show stat`` CSV (header ``# pxname,svname,...``); FRONTEND/BACKEND rows left out."""
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith("# ")), None)
    if start is None:
        return []
    body = "\n".join([lines[start][2:], *lines[start + 1 :]])
    out: list[ServerStat] = []
    for row in csv.DictReader(io.StringIO(body)):
        backend, server = row.get("pxname") or "", row.get("svname") or ""
        if not backend or not server or server in ("FRONTEND", "BACKEND"):
            continue
        requests = _number(row, "req_tot")
        if requests is None:
            requests = _number(row, "stot")
        weight = _number(row, "weight")
        out.append(
            ServerStat(
                backend=backend,
                server=server,
                status=(row.get("status") or "").strip(),
                weight=int(weight) if weight is not None else 0,
                requests=int(requests or 0),
                response_ms=_number(row, "rtime"),
            )
        )
    return out


def counter_increase(before: int | None, after: int) -> int:
    """A cumulative counter's increase; one that went down was reset (a reloaded HAProxy starts at 0)."""
    if before is None:
        return 0
    return after if after < before else after - before


# --- datapoints -----------------------------------------------------------------------------


def spread(start: float, end: float, period: float, limit: int = MAX_POINTS_PER_ROUND) -> list[float]:
    """Timestamps (oldest first, ``end`` last) for one measurement of the interval (start, end]: evenly
    spaced and at most ``period`` apart, so every alarm period of the interval holds a datapoint."""
    span = end - start
    if span <= 0 or period <= 0:
        return []
    count = max(1, min(limit, math.ceil(span / period - 1e-9)))
    return [end - span * k / count for k in reversed(range(count))]


def target_group_dimension(arn: str) -> str:
    """CloudWatch's TargetGroup dimension: ``targetgroup/<name>/<id>``, the ARN's last part."""
    return arn.rsplit(":", 1)[-1]


def load_balancer_dimension(arn: str) -> str:
    """CloudWatch's LoadBalancer dimension: ``app/<name>/<id>``, the ARN after ``loadbalancer/``."""
    return arn.split(":loadbalancer/", 1)[-1]


def _datum(name: str, dimensions: Sequence[tuple[str, str]], at: float, value: float, unit: str) -> dict[str, Any]:
    return {
        "MetricName": name,
        "Dimensions": [{"Name": k, "Value": v} for k, v in dimensions],
        "Timestamp": datetime.fromtimestamp(at, UTC),
        "Value": value,
        "Unit": unit,
    }


# --- where measurements come from -----------------------------------------------------------


class MetricSource(Protocol):
    """What the hosts and load balancers measure: an instance's CPU, a load balancer's HAProxy CSV."""

    def cpu(self, instance_id: str) -> CpuSample | None: ...

    def haproxy_stats(self, lb_name: str) -> str | None: ...


class StatsSocket(Protocol):
    def stats_csv(self, lb_name: str) -> str | None: ...


class ContainerMetricSource:
    """The twin's own: each instance container's cgroup (path from ``podman inspect``'s
    State.CgroupPath, under ``root``), each ALB's HAProxy stats socket (gearlift.twin.dataplane.elbv2)."""

    def __init__(self, alb: StatsSocket | None, root: Path = CGROUP_ROOT) -> None:
        self.alb = alb
        self.root = root
        self._paths: dict[str, str] = {}

    def cgroup_path(self, instance_id: str) -> str | None:
        if instance_id not in self._paths:
            try:
                info = podman.inspect(instance_id)
            except (TwinError, ValueError, IndexError):
                return None
            path = (info.get("State") or {}).get("CgroupPath") or ""
            if not path:
                return None
            self._paths[instance_id] = str(path)
        return self._paths[instance_id]

    def cpu(self, instance_id: str) -> CpuSample | None:
        path = self.cgroup_path(instance_id)
        if path is None:
            return None
        sample = read_cgroup_cpu(path, self.root)
        if sample is None:
            self._paths.pop(instance_id, None)  # restarted or gone: ask podman again next time
        return sample

    def haproxy_stats(self, lb_name: str) -> str | None:
        return self.alb.stats_csv(lb_name) if self.alb is not None else None


# --- the reconciler -------------------------------------------------------------------------


@dataclass(frozen=True)
class ScalingActivity:
    """One scaling activity the twin applied (what DescribeScalingActivities would list)."""

    at: float  # clock time (epoch seconds) of the evaluation that decided it
    group: str
    call: str  # SetDesiredCapacity or UpdateAutoScalingGroup
    old_desired: int
    new_desired: int
    old_min: int
    new_min: int
    old_max: int
    new_max: int
    reason: str
    source: str | None  # the policy or scheduled action


class ScalingReconciler:
    """Plays CloudWatch's metrics and EC2 Auto Scaling's policies and scheduled actions (see the module)."""

    def __init__(
        self,
        clients: ClientFactory,
        log: Log,
        source: MetricSource,
        *,
        time_scale: float = TIME_SCALE,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.clients = clients
        self.log = log
        self.source = source
        self.time_scale = time_scale
        self.clock = clock
        self.states: dict[str, ScalingState] = {}  # group name -> what the last evaluation carries
        self.activities: list[ScalingActivity] = []
        self._cpu: list[Datapoint] = []
        self._requests: dict[str, list[Datapoint]] = {}  # target group ARN -> RequestCountPerTarget
        self._latency: dict[str, list[Datapoint]] = {}  # load balancer ARN -> TargetResponseTime
        self._tg_lbs: dict[str, list[str]] = {}  # target group ARN -> load balancer ARNs
        self._cpu_last: dict[str, tuple[float, CpuSample]] = {}
        self._counters: dict[tuple[str, str, str], int] = {}  # (lb, backend, server) -> requests
        self._stats_at: dict[str, float] = {}  # lb name -> time of the last reading
        self._seen: dict[str, float] = {}  # instance id -> when first listed InService
        self._warned: set[str] = set()

    @classmethod
    def for_twin(
        cls, clients: ClientFactory, log: Log, alb: StatsSocket | None, time_scale: float = TIME_SCALE
    ) -> ScalingReconciler:
        """The reconciler as the twin runs it: its containers' cgroups, its ALBs' HAProxy, its clock."""
        return cls(clients, log, ContainerMetricSource(alb), time_scale=time_scale)

    @property
    def period(self) -> float:
        """One AWS minute (CloudWatch's period for these metrics) on the clock."""
        return scaling.TT_PERIOD / self.time_scale

    def _warn(self, message: str) -> None:
        if message not in self._warned:
            self._warned.add(message)
            self.log(message)

    def activities_since(self, at: float) -> list[ScalingActivity]:
        """The activities decided at or after clock time ``at`` (a copy: safe from another thread)."""
        return [a for a in list(self.activities) if a.at >= at]

    # ----------------------------------------------------------------- round
    def reconcile(self, round_: Round) -> None:
        now = self.clock()
        groups = paginate(self.clients("autoscaling"), "describe_auto_scaling_groups", "AutoScalingGroups")
        data = self.collect(round_, groups, now)
        self.publish(data)
        self._prune(now)
        alarms = [
            a
            for a in paginate(self.clients("cloudwatch"), "describe_alarms", "MetricAlarms")
            if a.get("ActionsEnabled", True) and a.get("MetricName")
        ]
        names = {g["AutoScalingGroupName"] for g in groups}
        for name in list(self.states):
            if name not in names:
                del self.states[name]
        members = {m["InstanceId"] for g in groups for m in g.get("Instances", [])}
        for iid in list(self._seen):
            if iid not in members:
                del self._seen[iid]
        for group in groups:
            self.evaluate_group(group, round_, alarms, now)

    # --------------------------------------------------------------- metrics
    def collect(self, round_: Round, groups: Sequence[Mapping[str, Any]], now: float) -> list[dict[str, Any]]:
        """This round's measurements: kept for the evaluation, returned as PutMetricData items by namespace."""
        data = [{"Namespace": EC2_NAMESPACE, **d} for d in self._collect_cpu(round_, groups, now)]
        data += [{"Namespace": ELB_NAMESPACE, **d} for d in self._collect_elb(round_, now)]
        return data

    def _collect_cpu(self, round_: Round, groups: Sequence[Mapping[str, Any]], now: float) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        measured: dict[str, tuple[float, float]] = {}  # instance id -> (since, percent)
        for iid in sorted(round_.addresses):  # the running instance containers
            sample = self.source.cpu(iid)
            if sample is None:
                self._cpu_last.pop(iid, None)
                continue
            last = self._cpu_last.get(iid)
            self._cpu_last[iid] = (now, sample)
            if last is None:
                continue
            percent = cpu_utilization(last[1], sample, now - last[0])
            if percent is None:
                continue
            measured[iid] = (last[0], percent)
            for at in spread(last[0], now, self.period):
                self._cpu.append(Datapoint(at, {iid: percent}))
                out.append(_datum("CPUUtilization", [("InstanceId", iid)], at, percent, "Percent"))
        for iid in list(self._cpu_last):
            if iid not in round_.addresses:
                del self._cpu_last[iid]
        for group in groups:
            values = [measured[m["InstanceId"]] for m in group.get("Instances", []) if m["InstanceId"] in measured]
            if not values:
                continue
            average = sum(v for _, v in values) / len(values)
            for at in spread(min(s for s, _ in values), now, self.period):
                dims = [("AutoScalingGroupName", group["AutoScalingGroupName"])]
                out.append(_datum("CPUUtilization", dims, at, average, "Percent"))
        return out

    def _collect_elb(self, round_: Round, now: float) -> list[dict[str, Any]]:
        elbv2 = self.clients("elbv2")
        lbs = {
            lb["LoadBalancerArn"]: lb
            for lb in paginate(elbv2, "describe_load_balancers", "LoadBalancers")
            if lb.get("Type", "application") == "application"
        }
        tgs = paginate(elbv2, "describe_target_groups", "TargetGroups")
        self._tg_lbs = {tg["TargetGroupArn"]: [a for a in tg.get("LoadBalancerArns", []) if a in lbs] for tg in tgs}
        # per load balancer: each backend's request increase, servers, and (requests, rtime) per server
        since: dict[str, float] = {}
        increases: dict[tuple[str, str], int] = {}
        servers: dict[tuple[str, str], list[ServerStat]] = {}
        timed: dict[str, list[tuple[int, float]]] = {}
        for arn, lb in lbs.items():
            name = lb["LoadBalancerName"]
            text = self.source.haproxy_stats(name)
            if text is None:
                self._stats_at.pop(name, None)
                continue
            last_at = self._stats_at.get(name)
            self._stats_at[name] = now
            stats = parse_haproxy_stats(text)
            current = {(name, s.backend, s.server) for s in stats}
            for key in [k for k in self._counters if k[0] == name and k not in current]:
                del self._counters[key]  # a server that left the load balancer
            for stat in stats:
                key = (name, stat.backend, stat.server)
                increase = counter_increase(self._counters.get(key) if last_at is not None else None, stat.requests)
                self._counters[key] = stat.requests
                servers.setdefault((arn, stat.backend), []).append(stat)
                increases[(arn, stat.backend)] = increases.get((arn, stat.backend), 0) + increase
                if increase > 0 and stat.response_ms is not None:
                    timed.setdefault(arn, []).append((increase, stat.response_ms / 1000.0))
            if last_at is not None:
                since[arn] = last_at
        out: list[dict[str, Any]] = []
        for tg in tgs:
            tg_arn = tg["TargetGroupArn"]
            backend = _backend_id(tg_arn)
            lb_arns = [a for a in self._tg_lbs.get(tg_arn, []) if a in since]
            requests = sum(increases.get((a, backend), 0) for a in lb_arns)
            if not lb_arns or requests <= 0:
                continue  # ELB publishes no datapoint for a period without requests
            start = min(since[a] for a in lb_arns)
            targets = self._healthy_targets(tg_arn, [s for a in lb_arns for s in servers.get((a, backend), [])], round_)
            per_minute = requests / targets * (self.period / (now - start))
            tg_dim = ("TargetGroup", target_group_dimension(tg_arn))
            for at in spread(start, now, self.period):
                self._requests.setdefault(tg_arn, []).append(Datapoint(at, value=per_minute))
                out.append(_datum("RequestCountPerTarget", [tg_dim], at, per_minute, "Count"))
                for lb_arn in lb_arns:
                    dims = [("LoadBalancer", load_balancer_dimension(lb_arn)), tg_dim]
                    out.append(_datum("RequestCountPerTarget", dims, at, per_minute, "Count"))
        for lb_arn, samples in timed.items():
            if lb_arn not in since:
                continue
            weight = sum(n for n, _ in samples)
            seconds = sum(n * s for n, s in samples) / weight
            for at in spread(since[lb_arn], now, self.period):
                self._latency.setdefault(lb_arn, []).append(Datapoint(at, value=seconds))
                dims = [("LoadBalancer", load_balancer_dimension(lb_arn))]
                out.append(_datum("TargetResponseTime", dims, at, seconds, "Seconds"))
        return out

    @staticmethod
    def _healthy_targets(tg_arn: str, servers: Sequence[ServerStat], round_: Round) -> int:
        """The target group's healthy targets: ELB's verdicts of this round, else HAProxy's (UP and
        given traffic); with none healthy, the registered ones (never less than 1)."""
        verdicts = round_.health.get(tg_arn)
        if verdicts:
            healthy = sum(1 for state in verdicts.values() if state == "healthy")
        else:
            healthy = len({s.server for s in servers if s.status.startswith("UP") and s.weight > 0})
        return max(1, healthy or len({s.server for s in servers}))

    def publish(self, data: Sequence[dict[str, Any]]) -> None:
        """PutMetricData, by namespace and in batches."""
        cloudwatch = self.clients("cloudwatch")
        for namespace in sorted({d["Namespace"] for d in data}):
            items = [{k: v for k, v in d.items() if k != "Namespace"} for d in data if d["Namespace"] == namespace]
            for i in range(0, len(items), PUT_BATCH):
                try:
                    cloudwatch.put_metric_data(Namespace=namespace, MetricData=items[i : i + PUT_BATCH])
                except ClientError as exc:
                    self._warn(f"scaling: PutMetricData {namespace} refused: {exc}")

    def _prune(self, now: float) -> None:
        oldest = now - HISTORY / self.time_scale

        def keep(points: Iterable[Datapoint]) -> list[Datapoint]:
            return [p for p in points if p.timestamp >= oldest]

        self._cpu = keep(self._cpu)
        for series in (self._requests, self._latency):
            for key in list(series):
                series[key] = keep(series[key])
                if not series[key]:
                    del series[key]

    def metrics_for(
        self, group: Mapping[str, Any], policies: Sequence[Mapping[str, Any]]
    ) -> dict[str, list[Datapoint]]:
        """The series the group's policies read, by CloudWatch metric name: CPU per instance (the
        evaluation keeps the group's own), the requests per target of its target group (the one a
        target tracking policy's ResourceLabel names, else the group's first) and its load balancer's
        response time."""
        metrics: dict[str, list[Datapoint]] = {"CPUUtilization": list(self._cpu)}
        tg_arn = self._target_group_of(group, policies)
        if tg_arn is not None:
            metrics["RequestCountPerTarget"] = list(self._requests.get(tg_arn, []))
            for lb_arn in self._tg_lbs.get(tg_arn, []):
                metrics["TargetResponseTime"] = list(self._latency.get(lb_arn, []))
                break
        return metrics

    def _target_group_of(self, group: Mapping[str, Any], policies: Sequence[Mapping[str, Any]]) -> str | None:
        for policy in policies:
            config = policy.get("TargetTrackingConfiguration") or {}
            label = (config.get("PredefinedMetricSpecification") or {}).get("ResourceLabel") or ""
            if "/targetgroup/" in label:
                suffix = ":" + label[label.index("/targetgroup/") + 1 :]
                found = next((arn for arn in self._tg_lbs if arn.endswith(suffix)), None)
                if found is not None:
                    return found
        arns: list[str] = group.get("TargetGroupARNs") or []
        return arns[0] if arns else None

    # ------------------------------------------------------------ evaluation
    def group_state(self, group: Mapping[str, Any], round_: Round, now: float) -> GroupState:
        """The group for the evaluation: InService instances from when their container started (or
        the group first listed them, if later), Pending ones as just in service (warming), Terminating
        ones marked; Standby and detached ones are out of its capacity."""
        instances = []
        for member in group.get("Instances", []):
            iid, lifecycle = member["InstanceId"], member.get("LifecycleState", "")
            if lifecycle == "InService":
                at = self._seen.setdefault(iid, now)
                started = round_.launched_at.get(iid)
                if started is not None:
                    at = max(at, now - (time.monotonic() - started))
                instances.append(Instance(iid, at))
            elif lifecycle.startswith("Pending"):
                instances.append(Instance(iid, now))
            elif lifecycle.startswith("Terminating"):
                instances.append(Instance(iid, self._seen.get(iid, now), terminating=True))
        warmup = group.get("DefaultInstanceWarmup")
        return GroupState(
            min_size=int(group["MinSize"]),
            max_size=int(group["MaxSize"]),
            desired_capacity=int(group["DesiredCapacity"]),
            instances=tuple(instances),
            default_cooldown=float(group.get("DefaultCooldown", scaling.DEFAULT_COOLDOWN)),
            default_instance_warmup=None if warmup is None else float(warmup),
        )

    def evaluate_group(
        self, group: Mapping[str, Any], round_: Round, alarms: Sequence[Mapping[str, Any]], now: float
    ) -> scaling.Decision | None:
        """Evaluate one group's policies and scheduled actions and apply the decision; None when not evaluated."""
        asg = self.clients("autoscaling")
        name = group["AutoScalingGroupName"]
        suspended = {p.get("ProcessName") for p in group.get("SuspendedProcesses") or []}
        policies: list[dict[str, Any]] = []
        if "AlarmNotification" not in suspended:
            policies = paginate(asg, "describe_policies", "ScalingPolicies", AutoScalingGroupName=name)
        actions: list[dict[str, Any]] = []
        if "ScheduledActions" not in suspended:
            actions = paginate(
                asg, "describe_scheduled_actions", "ScheduledUpdateGroupActions", AutoScalingGroupName=name
            )
        arns = {
            p["PolicyARN"]
            for p in policies
            if p.get("PolicyType", "SimpleScaling") in ("StepScaling", "SimpleScaling") and p.get("PolicyARN")
        }
        alarm_names = {a.get("AlarmName") for p in policies for a in p.get("Alarms") or []}
        used = [a for a in alarms if a.get("AlarmName") in alarm_names or arns & set(a.get("AlarmActions") or [])]
        try:
            state = self.group_state(group, round_, now)
            decision = scaling.evaluate(
                state,
                now,
                policies=policies,
                scheduled_actions=actions,
                alarms=used,
                metrics=self.metrics_for(group, policies),
                state=self.states.get(name),
                time_scale=self.time_scale,
            )
        except ValueError as exc:
            self._warn(f"scaling: {name} not evaluated: {exc}")
            return None
        changes = (decision.desired_capacity, decision.min_size, decision.max_size) != (None, None, None)
        if changes and not self.apply(name, state, decision, now):
            return decision  # keep the former state: the next round decides again
        self.states[name] = decision.state
        return decision

    def apply(self, name: str, group: GroupState, decision: scaling.Decision, now: float) -> bool:
        """Apply a decision as the service does; False when the emulator refused it."""
        asg = self.clients("autoscaling")
        desired = group.desired_capacity if decision.desired_capacity is None else decision.desired_capacity
        min_size = group.min_size if decision.min_size is None else decision.min_size
        max_size = group.max_size if decision.max_size is None else decision.max_size
        try:
            if decision.min_size is not None or decision.max_size is not None:
                call = "UpdateAutoScalingGroup"
                update: dict[str, Any] = {"AutoScalingGroupName": name, "MinSize": min_size, "MaxSize": max_size}
                if decision.desired_capacity is not None:
                    update["DesiredCapacity"] = desired
                asg.update_auto_scaling_group(**update)
            else:
                call = "SetDesiredCapacity"
                asg.set_desired_capacity(AutoScalingGroupName=name, DesiredCapacity=desired, HonorCooldown=False)
        except ClientError as exc:
            self.log(f"scaling: {name} {group.desired_capacity} -> {desired} refused: {exc}")
            return False
        self.log(f"scaling: {name} {group.desired_capacity} -> {desired} ({decision.reason})")
        self.activities.append(
            ScalingActivity(
                at=now,
                group=name,
                call=call,
                old_desired=group.desired_capacity,
                new_desired=desired,
                old_min=group.min_size,
                new_min=min_size,
                old_max=group.max_size,
                new_max=max_size,
                reason=decision.reason,
                source=decision.source,
            )
        )
        return True
