"""The twin's scaling reconciler (gearlift.twin.dataplane.scaling) on moto in-process, with a fake metric source:
cgroup files in a temp dir, HAProxy ``show stat`` CSV text, a clock the test moves."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from gearlift.twin.dataplane import Round
from gearlift.twin.dataplane import scaling as plane
from gearlift.twin.dataplane.elbv2 import _backend_id
from gearlift.twin.dataplane.scaling import CpuSample, ScalingReconciler

REGION = "us-east-1"
GROUP = "shop"

# HAProxy 2.6's `show stat` header (captured from haproxy 2.6.12, the twin's version).
HEADER = (
    "# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,wredis,status,weight,"
    "act,bck,chkfail,chkdown,lastchg,downtime,qlimit,pid,iid,sid,throttle,lbtot,tracked,type,rate,rate_lim,rate_max,"
    "check_status,check_code,check_duration,hrsp_1xx,hrsp_2xx,hrsp_3xx,hrsp_4xx,hrsp_5xx,hrsp_other,hanafail,"
    "req_rate,req_rate_max,req_tot,cli_abrt,srv_abrt,comp_in,comp_out,comp_byp,comp_rsp,lastsess,last_chk,last_agt,"
    "qtime,ctime,rtime,ttime,agent_status,agent_code,agent_duration,check_desc,agent_desc,check_rise,check_fall,"
    "check_health,agent_rise,agent_fall,agent_health,addr,cookie,mode,algo,conn_rate,conn_rate_max,conn_tot,"
    "intercepted,dcon,dses,wrew,connect,reuse,cache_lookups,cache_hits,srv_icur,src_ilim,qtime_max,ctime_max,"
    "rtime_max,ttime_max,eint,idle_conn_cur,safe_conn_cur,used_conn_cur,need_conn_est,uweight,agg_server_status,"
    "agg_server_check_status,agg_check_status,-,ssl_sess,ssl_reused_sess,ssl_failed_handshake,h2_headers_rcvd,"
    "h2_data_rcvd,h2_settings_rcvd,h2_rst_stream_rcvd,h2_goaway_rcvd,h2_detected_conn_protocol_errors,"
    "h2_detected_strm_protocol_errors,h2_rst_stream_resp,h2_goaway_resp,h2_open_connections,h2_backend_open_streams,"
    "h2_total_connections,h2_backend_total_streams,h1_open_connections,h1_open_streams,h1_total_connections,"
    "h1_total_streams,h1_bytes_in,h1_bytes_out,h1_spliced_bytes_in,h1_spliced_bytes_out,"
)
COLUMNS = HEADER[2:].split(",")

# Rows as haproxy 2.6.12 printed them for a frontend, a DOWN server, a weight-0 server without checks
# and their backend (captured, only the counters changed).
CAPTURED = "\n".join(
    [
        HEADER,
        "l80,FRONTEND,,,0,0,9985,7,0,0,0,0,0,,,,,OPEN,,,,,,,,,1,2,0,,,,0,0,0,0,,,,0,0,0,0,0,0,,0,0,7,,,0,0,0,0,,,,,"
        ",,,,,,,,,,,,,,,,http,,0,0,0,0,0,0,0,,,0,0,,,,,,,0,,,,,,,,,-,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,",
        "tg_abc,i-0aaa,0,0,0,0,,5,0,0,,0,,0,0,0,0,DOWN,1,1,0,1,1,1,1,,1,3,1,,0,,2,0,,0,L4CON,,0,0,0,0,0,0,0,,,,5,0,0"
        ",,,,,-1,Connection refused,,0,0,42,0,,,,Layer4 connection problem,,2,3,0,,,,127.0.0.1:18082,,http,,,,,,,,0,"
        "0,0,,,0,,0,0,0,0,0,0,0,0,1,1,,,,-,0,0,0,,,,,,,,,,,,,,,,,,,,,,",
        "tg_abc,i-0bbb,0,0,0,0,,2,0,0,,0,,0,0,0,0,no check,0,1,0,,,1,,,1,3,2,,0,,2,0,,0,,,,0,0,0,0,0,0,,,,,0,0,,,,,-1"
        ",,,0,0,0,0,,,,,,,,,,,,127.0.0.1:18083,,http,,,,,,,,0,0,0,,,0,,0,0,0,0,0,0,0,0,0,0,,,,-,0,0,0,,,,,,,,,,,,,,,,"
        ",,,,,,",
        "tg_abc,BACKEND,0,0,0,0,999,7,0,0,0,0,,0,0,0,0,DOWN,0,0,0,,1,1,1,,1,3,0,,0,,1,0,,0,,,,0,0,0,0,0,0,,,,7,0,0,0,"
        "0,0,0,-1,,,0,0,0,0,,,,,,,,,,,,,,http,roundrobin,,,,,,,0,0,0,0,0,,,0,0,0,0,0,,,,,0,0,0,0,-,0,0,0,0,0,0,0,0,0,0"
        ",0,0,0,0,0,0,0,0,0,0,0,0,0,0,",
        "",
    ]
)


def stat_row(backend: str, server: str, **fields: Any) -> str:
    values = dict.fromkeys(COLUMNS, "")
    values.update(pxname=backend, svname=server)
    values.update({k: str(v) for k, v in fields.items()})
    return ",".join(values[c] for c in COLUMNS)


# ------------------------------------------------------------------ parsers


def test_cgroup_v2_cpu_stat_and_cpu_max(tmp_path: Path) -> None:
    assert plane.parse_cpu_stat("usage_usec 43693106205\nuser_usec 33425474018\nsystem_usec 1026\n") == 43693106205
    # cgroup v1's cpu.stat (the cpu controller's) counts throttling only
    assert plane.parse_cpu_stat("nr_periods 0\nnr_throttled 0\nthrottled_time 0\n") is None
    assert plane.parse_cpu_max("max 100000\n") is None
    assert plane.parse_cpu_max("200000 100000\n") == 2.0
    assert plane.parse_cpu_max("50000 100000") == 0.5
    cgroup = tmp_path / "machine.slice" / "libpod-abc.scope"
    cgroup.mkdir(parents=True)
    (cgroup / "cpu.stat").write_text("usage_usec 2500000\nuser_usec 2000000\nsystem_usec 500000\n")
    (cgroup / "cpu.max").write_text("150000 100000\n")
    assert plane.read_cgroup_cpu("/machine.slice/libpod-abc.scope", tmp_path) == CpuSample(2_500_000, 1.5)
    assert plane.read_cgroup_cpu("/machine.slice/libpod-gone.scope", tmp_path) is None


def test_cgroup_v1_hybrid_layout_as_on_the_test_hosts(tmp_path: Path) -> None:
    """runc with cgroupfs on a hybrid layout: podman's CgroupPath is /libpod_parent/libpod-<id>."""
    path = "/libpod_parent/libpod-6e81"
    cpu, cpuacct = tmp_path / "cpu" / path.strip("/"), tmp_path / "cpuacct" / path.strip("/")
    cpu.mkdir(parents=True)
    cpuacct.mkdir(parents=True)
    (cpu / "cpu.stat").write_text("nr_periods 0\nnr_throttled 0\nthrottled_time 0\n")
    (cpu / "cpu.cfs_quota_us").write_text("-1\n")
    (cpu / "cpu.cfs_period_us").write_text("100000\n")
    (cpuacct / "cpuacct.usage").write_text("27749655000\n")  # nanoseconds
    (tmp_path / "unified").mkdir()
    (tmp_path / "unified" / "cpu.stat").write_text("usage_usec 1\n")  # the root's: not the container's
    assert plane.read_cgroup_cpu(path, tmp_path) == CpuSample(27_749_655, None)
    (cpu / "cpu.cfs_quota_us").write_text("200000\n")
    assert plane.read_cgroup_cpu(path, tmp_path) == CpuSample(27_749_655, 2.0)


def test_cpu_utilization_is_per_quota_or_one_cpu_within_0_and_100() -> None:
    assert plane.cpu_utilization(CpuSample(0), CpuSample(500_000), 1.0) == 50.0
    assert plane.cpu_utilization(CpuSample(0, 2.0), CpuSample(1_000_000, 2.0), 1.0) == 50.0
    assert plane.cpu_utilization(CpuSample(0), CpuSample(3_000_000), 2.0) == 100.0  # 1.5 CPUs of a 1-CPU instance
    assert plane.cpu_utilization(CpuSample(900), CpuSample(100), 1.0) is None  # restarted container
    assert plane.cpu_utilization(CpuSample(0), CpuSample(100), 0.0) is None


def test_haproxy_show_stat_csv_server_rows() -> None:
    stats = plane.parse_haproxy_stats(CAPTURED)
    assert [(s.backend, s.server, s.status, s.weight, s.requests) for s in stats] == [
        ("tg_abc", "i-0aaa", "DOWN", 1, 5),
        ("tg_abc", "i-0bbb", "no check", 0, 2),  # req_tot empty: stot
    ]
    assert (stats[0].response_ms, stats[1].response_ms) == (42.0, 0.0)
    assert plane.parse_haproxy_stats("") == []
    assert plane.parse_haproxy_stats("Unknown command\n") == []


def test_counters_and_spread() -> None:
    assert plane.counter_increase(None, 50) == 0  # the first reading only sets the base
    assert plane.counter_increase(40, 50) == 10
    assert plane.counter_increase(400, 7) == 7  # HAProxy reloaded: a new process counts from 0
    points = plane.spread(100.0, 102.5, 1.0)
    assert points[-1] == 102.5 and len(points) == 3
    assert all(0 < b - a <= 1.0 for a, b in zip([100.0, *points], points, strict=False))
    assert plane.spread(100.0, 100.4, 1.0) == [100.4]
    assert plane.spread(5.0, 5.0, 1.0) == []
    assert plane.target_group_dimension(
        "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/shop/50dc6c495c0c9188"
    ) == ("targetgroup/shop/50dc6c495c0c9188")
    assert plane.load_balancer_dimension(
        "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/shop-alb/50dc6c495c0c9188"
    ) == ("app/shop-alb/50dc6c495c0c9188")


# ------------------------------------------------------------------ the reconciler on moto


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class FakeSource:
    """The hosts' cgroups under a temp dir (cgroup v2 layout) and each load balancer's `show stat` text."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.csv: dict[str, str] = {}

    def path(self, iid: str) -> str:
        return f"/machine.slice/libpod-{iid}.scope"

    def burn(self, iid: str, usec: int) -> None:
        cgroup = self.root / self.path(iid).strip("/")
        cgroup.mkdir(parents=True, exist_ok=True)
        stat = cgroup / "cpu.stat"
        used = plane.parse_cpu_stat(stat.read_text()) if stat.exists() else 0
        stat.write_text(f"usage_usec {(used or 0) + usec}\nuser_usec 0\nsystem_usec 0\n")
        (cgroup / "cpu.max").write_text("max 100000\n")

    def cpu(self, instance_id: str) -> CpuSample | None:
        return plane.read_cgroup_cpu(self.path(instance_id), self.root)

    def haproxy_stats(self, lb_name: str) -> str | None:
        return self.csv.get(lb_name)


@pytest.fixture
def twin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """A group of 2 behind an ALB on moto, the reconciler with a fake source and clock."""
    for var in ("AWS_PROFILE", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        cache: dict[str, Any] = {}

        def clients(service: str) -> Any:
            if service not in cache:
                cache[service] = boto3.client(service, region_name=REGION)
            return cache[service]

        ec2, elbv2, asg = clients("ec2"), clients("elbv2"), clients("autoscaling")
        vpc = ec2.create_vpc(CidrBlock="10.42.0.0/16")["Vpc"]["VpcId"]
        subnets = [
            ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.42.{i}.0/24", AvailabilityZone=f"us-east-1{z}")["Subnet"][
                "SubnetId"
            ]
            for i, z in ((1, "a"), (2, "b"))
        ]
        ami = ec2.describe_images()["Images"][0]["ImageId"]
        ec2.create_launch_template(
            LaunchTemplateName="shop-app", LaunchTemplateData={"ImageId": ami, "InstanceType": "t3.small"}
        )
        tg = elbv2.create_target_group(Name="shop", Protocol="HTTP", Port=8080, VpcId=vpc)["TargetGroups"][0]
        lb = elbv2.create_load_balancer(Name="shop-alb", Subnets=subnets, Type="application")["LoadBalancers"][0]
        elbv2.create_listener(
            LoadBalancerArn=lb["LoadBalancerArn"],
            Protocol="HTTP",
            Port=80,
            DefaultActions=[{"Type": "forward", "TargetGroupArn": tg["TargetGroupArn"]}],
        )
        asg.create_auto_scaling_group(
            AutoScalingGroupName=GROUP,
            LaunchTemplate={"LaunchTemplateName": "shop-app"},
            MinSize=1,
            MaxSize=10,
            DesiredCapacity=2,
            DefaultCooldown=60,
            VPCZoneIdentifier=",".join(subnets),
            TargetGroupARNs=[tg["TargetGroupArn"]],
        )
        lines: list[str] = []
        source = FakeSource(tmp_path / "cgroup")
        clock = Clock(float(int(time.time())))
        reconciler = ScalingReconciler(clients, lines.append, source, time_scale=60.0, clock=clock)
        yield {
            "clients": clients,
            "reconciler": reconciler,
            "source": source,
            "clock": clock,
            "log": lines,
            "tg": tg["TargetGroupArn"],
            "lb": lb,
            "requests": {},  # instance id -> req_tot so far
        }


def group(t: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = t["clients"]("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[GROUP])
    return found["AutoScalingGroups"][0]


def members(t: dict[str, Any]) -> list[str]:
    return sorted(m["InstanceId"] for m in group(t)["Instances"] if m["LifecycleState"] == "InService")


def drive(t: dict[str, Any], rounds: int, cpu: float, *, requests_per_second: float = 0.0, rtime_ms: int = 120) -> None:
    """``rounds`` rounds one clock second apart, every instance at ``cpu`` percent of one CPU and the
    load balancer spreading ``requests_per_second`` over the group's instances."""
    for _ in range(rounds):
        t["clock"].now += 1.0
        ids = members(t)
        rows = [HEADER, stat_row("l80", "FRONTEND", status="OPEN")]
        for iid in ids:
            t["source"].burn(iid, int(cpu / 100 * 1_000_000))
            t["requests"][iid] = t["requests"].get(iid, 0) + int(requests_per_second / len(ids))
            rows.append(
                stat_row(
                    _backend_id(t["tg"]),
                    iid,
                    status="UP",
                    weight=1,
                    stot=t["requests"][iid],
                    req_tot=t["requests"][iid],
                    rtime=rtime_ms,
                )
            )
        rows.append(stat_row(_backend_id(t["tg"]), "BACKEND", status="UP", req_tot=sum(t["requests"].values())))
        t["source"].csv["shop-alb"] = "\n".join(rows) + "\n"
        round_ = Round(
            addresses={iid: f"10.89.77.{10 + k}" for k, iid in enumerate(ids)},
            health={t["tg"]: dict.fromkeys(ids, "healthy")},
        )
        t["reconciler"].reconcile(round_)


def cpu_policy(t: dict[str, Any], *, target: float = 50.0, disable_scale_in: bool = False) -> None:
    t["clients"]("autoscaling").put_scaling_policy(
        AutoScalingGroupName=GROUP,
        PolicyName="shop-cpu",
        PolicyType="TargetTrackingScaling",
        EstimatedInstanceWarmup=60,
        TargetTrackingConfiguration={
            "PredefinedMetricSpecification": {"PredefinedMetricType": "ASGAverageCPUUtilization"},
            "TargetValue": target,
            "DisableScaleIn": disable_scale_in,
        },
    )


def test_metrics_land_in_cloudwatch_with_aws_names_and_dimensions(twin: dict[str, Any]) -> None:
    drive(twin, 3, 30.0, requests_per_second=40, rtime_ms=120)
    cloudwatch = twin["clients"]("cloudwatch")
    ec2_metrics = cloudwatch.list_metrics(Namespace="AWS/EC2")["Metrics"]
    dims = {(m["MetricName"], tuple((d["Name"], d["Value"]) for d in m["Dimensions"])) for m in ec2_metrics}
    ids = members(twin)
    assert dims == {("CPUUtilization", (("InstanceId", i),)) for i in ids} | {
        ("CPUUtilization", (("AutoScalingGroupName", GROUP),))
    }
    elb_metrics = cloudwatch.list_metrics(Namespace="AWS/ApplicationELB")["Metrics"]
    tg_dim = twin["tg"].split(":")[-1]
    lb_dim = twin["lb"]["LoadBalancerArn"].split(":loadbalancer/")[-1]
    assert tg_dim.startswith("targetgroup/shop/") and lb_dim.startswith("app/shop-alb/")
    dims = {(m["MetricName"], tuple((d["Name"], d["Value"]) for d in m["Dimensions"])) for m in elb_metrics}
    assert dims == {
        ("RequestCountPerTarget", (("TargetGroup", tg_dim),)),
        ("RequestCountPerTarget", (("LoadBalancer", lb_dim), ("TargetGroup", tg_dim))),
        ("TargetResponseTime", (("LoadBalancer", lb_dim),)),
    }

    def stats(namespace: str, name: str, dimension: tuple[str, str], statistic: str = "Average") -> dict[str, Any]:
        now = datetime.fromtimestamp(twin["clock"].now, UTC)
        answer: dict[str, Any] = cloudwatch.get_metric_statistics(
            Namespace=namespace,
            MetricName=name,
            Dimensions=[{"Name": dimension[0], "Value": dimension[1]}],
            StartTime=datetime.fromtimestamp(twin["clock"].now - 600, UTC),
            EndTime=now,
            Period=3600,
            Statistics=[statistic],
        )
        return answer

    [cpu] = stats("AWS/EC2", "CPUUtilization", ("InstanceId", ids[0]))["Datapoints"]
    assert cpu["Average"] == pytest.approx(30.0) and cpu["Unit"] == "Percent"
    [group_cpu] = stats("AWS/EC2", "CPUUtilization", ("AutoScalingGroupName", GROUP))["Datapoints"]
    assert group_cpu["Average"] == pytest.approx(30.0)
    # 40 requests a second over 2 healthy targets: 20 per target per (compressed) minute
    [per_target] = stats("AWS/ApplicationELB", "RequestCountPerTarget", ("TargetGroup", tg_dim))["Datapoints"]
    assert per_target["Average"] == pytest.approx(20.0) and per_target["Unit"] == "Count"
    [latency] = stats("AWS/ApplicationELB", "TargetResponseTime", ("LoadBalancer", lb_dim))["Datapoints"]
    assert latency["Average"] == pytest.approx(0.12) and latency["Unit"] == "Seconds"


def test_no_requests_no_load_balancer_datapoints(twin: dict[str, Any]) -> None:
    drive(twin, 3, 10.0, requests_per_second=0)
    assert twin["clients"]("cloudwatch").list_metrics(Namespace="AWS/ApplicationELB")["Metrics"] == []


def test_target_tracking_on_cpu_at_twice_the_target_scales_out(twin: dict[str, Any]) -> None:
    cpu_policy(twin, target=50.0)
    drive(twin, 2, 100.0)
    assert group(twin)["DesiredCapacity"] == 2  # 1 datapoint: the high alarm needs 3
    drive(twin, 2, 100.0)
    assert group(twin)["DesiredCapacity"] == 4  # ceil(2 x 100 / 50)
    [activity] = twin["reconciler"].activities
    assert (activity.group, activity.call, activity.old_desired, activity.new_desired) == (
        GROUP,
        "SetDesiredCapacity",
        2,
        4,
    )
    assert activity.source == "shop-cpu" and activity.at == twin["clock"].now
    [line] = [x for x in twin["log"] if x.startswith("scaling:")]
    assert re.fullmatch(r"scaling: shop 2 -> 4 \(target tracking shop-cpu: CPUUtilization 100 > target 50 .*\)", line)
    assert twin["reconciler"].activities_since(twin["clock"].now + 1) == []


@pytest.mark.parametrize("disable_scale_in", [True, False])
def test_disable_scale_in_is_respected(twin: dict[str, Any], disable_scale_in: bool) -> None:
    cpu_policy(twin, target=50.0, disable_scale_in=disable_scale_in)
    drive(twin, 20, 5.0)  # 15 low datapoints and more, well below 90 % of the target
    if disable_scale_in:
        assert group(twin)["DesiredCapacity"] == 2
        assert twin["reconciler"].activities == []
    else:
        assert group(twin)["DesiredCapacity"] == 1  # ceil(2 x 5 / 50), the group's min
        assert [(a.old_desired, a.new_desired) for a in twin["reconciler"].activities] == [(2, 1)]


def test_requests_per_target_tracking_reads_the_target_group_of_its_resource_label(twin: dict[str, Any]) -> None:
    label = twin["lb"]["LoadBalancerArn"].split(":loadbalancer/")[-1] + "/" + twin["tg"].split(":")[-1]
    twin["clients"]("autoscaling").put_scaling_policy(
        AutoScalingGroupName=GROUP,
        PolicyName="shop-requests-per-target",
        PolicyType="TargetTrackingScaling",
        EstimatedInstanceWarmup=60,
        TargetTrackingConfiguration={
            "PredefinedMetricSpecification": {
                "PredefinedMetricType": "ALBRequestCountPerTarget",
                "ResourceLabel": label,
            },
            "TargetValue": 10.0,
        },
    )
    drive(twin, 4, 10.0, requests_per_second=40)  # 20 per target per minute
    assert group(twin)["DesiredCapacity"] == 4  # ceil(2 x 20 / 10)


def test_a_step_policy_scales_on_the_alarm_that_invokes_it(twin: dict[str, Any]) -> None:
    asg, cloudwatch = twin["clients"]("autoscaling"), twin["clients"]("cloudwatch")
    asg.put_scaling_policy(
        AutoScalingGroupName=GROUP,
        PolicyName="shop-cpu-step",
        PolicyType="StepScaling",
        AdjustmentType="ChangeInCapacity",
        EstimatedInstanceWarmup=60,
        StepAdjustments=[{"MetricIntervalLowerBound": 0, "ScalingAdjustment": 1}],
    )
    # moto's PutScalingPolicy answer lacks PolicyARN: DescribePolicies has it
    [policy] = asg.describe_policies(AutoScalingGroupName=GROUP, PolicyNames=["shop-cpu-step"])["ScalingPolicies"]
    cloudwatch.put_metric_alarm(
        AlarmName="shop-cpu-high",
        Namespace="AWS/EC2",
        MetricName="CPUUtilization",
        Dimensions=[{"Name": "AutoScalingGroupName", "Value": GROUP}],
        Statistic="Average",
        Period=60,
        EvaluationPeriods=2,
        Threshold=70.0,
        ComparisonOperator="GreaterThanThreshold",
        AlarmActions=[policy["PolicyARN"]],
    )
    [alarm] = cloudwatch.describe_alarms(AlarmNames=["shop-cpu-high"])["MetricAlarms"]
    assert alarm["AlarmActions"] == [policy["PolicyARN"]]
    drive(twin, 3, 90.0)
    assert group(twin)["DesiredCapacity"] == 3
    assert twin["reconciler"].activities[0].source == "shop-cpu-step"


def test_a_suspended_alarm_notification_process_runs_no_policy(twin: dict[str, Any]) -> None:
    cpu_policy(twin, target=50.0)
    twin["clients"]("autoscaling").suspend_processes(AutoScalingGroupName=GROUP, ScalingProcesses=["AlarmNotification"])
    drive(twin, 5, 100.0)
    assert group(twin)["DesiredCapacity"] == 2


def test_a_scheduled_action_raises_min_and_desired_at_its_time(twin: dict[str, Any]) -> None:
    at = datetime.fromtimestamp(twin["clock"].now + 5, UTC)
    asg = twin["clients"]("autoscaling")
    asg.put_scheduled_update_group_action(
        AutoScalingGroupName=GROUP, ScheduledActionName="peak", StartTime=at, MinSize=3, DesiredCapacity=3
    )
    [action] = asg.describe_scheduled_actions(AutoScalingGroupName=GROUP)["ScheduledUpdateGroupActions"]
    assert action["StartTime"].timestamp() == at.timestamp()
    drive(twin, 4, 10.0)
    assert (group(twin)["MinSize"], group(twin)["DesiredCapacity"]) == (1, 2)
    drive(twin, 1, 10.0)
    assert (group(twin)["MinSize"], group(twin)["MaxSize"], group(twin)["DesiredCapacity"]) == (3, 10, 3)
    [activity] = twin["reconciler"].activities
    assert (activity.call, activity.source, activity.old_min, activity.new_min) == (
        "UpdateAutoScalingGroup",
        "peak",
        1,
        3,
    )
    assert any(line.startswith("scaling: shop 2 -> 3 (scheduled action peak at ") for line in twin["log"])
    drive(twin, 3, 10.0)
    assert len(twin["reconciler"].activities) == 1  # a one-off action runs once


def test_a_recurring_scheduled_action_follows_its_time_zone(twin: dict[str, Any]) -> None:
    asg = twin["clients"]("autoscaling")
    asg.put_scheduled_update_group_action(
        AutoScalingGroupName=GROUP,
        ScheduledActionName="evening-peak",
        Recurrence="0 19 * * *",
        TimeZone="Europe/Paris",
        MinSize=2,
        MaxSize=8,
        DesiredCapacity=5,
    )
    twin["source"].csv.clear()
    # 17:59:58 UTC on a winter day is 18:59:58 in Paris: the action runs two seconds later.
    twin["clock"].now = datetime(2026, 1, 14, 17, 59, 58, tzinfo=UTC).timestamp()
    twin["reconciler"].reconcile(Round())
    assert group(twin)["DesiredCapacity"] == 2
    twin["clock"].now += 3
    twin["reconciler"].reconcile(Round())
    assert (group(twin)["MinSize"], group(twin)["MaxSize"], group(twin)["DesiredCapacity"]) == (2, 8, 5)


def test_the_twins_constructor_reads_cgroups_through_podman_inspect(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Alb:
        def stats_csv(self, lb_name: str) -> str | None:
            return CAPTURED if lb_name == "shop-alb" else None

    inspected: list[str] = []

    def inspect(name: str) -> dict[str, Any]:
        inspected.append(name)
        return {"State": {"CgroupPath": "/libpod_parent/libpod-6e81"}}

    monkeypatch.setattr(plane.podman, "inspect", inspect)
    reconciler = ScalingReconciler.for_twin(lambda service: None, lambda line: None, Alb())
    source = reconciler.source
    assert isinstance(source, plane.ContainerMetricSource)
    assert reconciler.time_scale == plane.TIME_SCALE == 60.0
    source.root = tmp_path
    (tmp_path / "cpuacct" / "libpod_parent" / "libpod-6e81").mkdir(parents=True)
    (tmp_path / "cpuacct" / "libpod_parent" / "libpod-6e81" / "cpuacct.usage").write_text("5000000\n")
    assert source.cpu("i-1") == CpuSample(5000, None)
    assert source.cpu("i-1") == CpuSample(5000, None)
    assert inspected == ["i-1"]  # the path is kept
    assert source.haproxy_stats("shop-alb") == CAPTURED
