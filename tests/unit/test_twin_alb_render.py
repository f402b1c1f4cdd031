"""The twin's HAProxy config (the ALB) sends traffic to healthy targets only, as an ALB does.

A target registered after the round's health checks ran (no verdict yet) is `initial` on AWS
and gets no traffic; only a target group the checker does not see at all lets traffic flow.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from gearlift.twin import layout as twin_layout
from gearlift.twin.dataplane.elbv2 import AlbReconciler, check_config
from gearlift.twin.errors import TwinError
from gearlift.twin.layout import Endpoints, TwinLayout

REGION = "us-east-1"


@pytest.fixture
def alb(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(key, "testing")
    with mock_aws():
        clients = {s: boto3.client(s, region_name=REGION) for s in ("ec2", "elbv2")}
        ec2, elbv2 = clients["ec2"], clients["elbv2"]
        vpc = ec2.describe_vpcs()["Vpcs"][0]["VpcId"]
        subnets = [s["SubnetId"] for s in ec2.describe_subnets()["Subnets"]][:2]
        image = ec2.describe_images()["Images"][0]["ImageId"]
        ids = [i["InstanceId"] for i in ec2.run_instances(ImageId=image, MinCount=2, MaxCount=2)["Instances"]]
        tg = elbv2.create_target_group(Name="app", Protocol="HTTP", Port=80, VpcId=vpc, HealthCheckPath="/health")
        arn = tg["TargetGroups"][0]["TargetGroupArn"]
        lb = elbv2.create_load_balancer(Name="shop", Subnets=subnets, Type="application")["LoadBalancers"][0]
        elbv2.create_listener(
            LoadBalancerArn=lb["LoadBalancerArn"],
            Protocol="HTTP",
            Port=80,
            DefaultActions=[{"Type": "forward", "TargetGroupArn": arn}],
        )
        elbv2.register_targets(TargetGroupArn=arn, Targets=[{"Id": i} for i in ids])
        layout = TwinLayout("gltest", tmp_path, "gltest", "10.89.78.0/24", "10.89.78.1", REGION)
        reconciler = AlbReconciler(layout, clients.__getitem__, print, tmp_path / "cert.pem", Endpoints())  # type: ignore[arg-type]
        reconciler.sources["shop"] = "10.89.78.254"  # given on the twin network's bridge by a real twin
        yield {
            "elbv2": elbv2,
            "layout": layout,
            "render": reconciler.render,
            "lb": lb,
            "arn": arn,
            "ids": ids,
            "addresses": {i: f"10.89.78.{n + 10}" for n, i in enumerate(ids)},
        }
        for sink in reconciler.sinks.values():  # each rendered load balancer's request log
            sink.stop()


def _weights(text: str) -> dict[str, int]:
    return {m[1]: int(m[2]) for m in re.finditer(r"^\s+server (\S+) \S+ weight (\d+)", text, re.M)}


def test_a_target_without_a_verdict_in_a_checked_group_gets_no_traffic(alb: dict[str, Any]) -> None:
    healthy, new = alb["ids"]
    text = alb["render"](alb["lb"], alb["addresses"], {alb["arn"]: {healthy: "healthy"}})
    assert _weights(text) == {healthy: 1, new: 0}


@pytest.mark.parametrize("state", ["initial", "unhealthy"])
def test_only_healthy_targets_get_traffic(alb: dict[str, Any], state: str) -> None:
    healthy, other = alb["ids"]
    text = alb["render"](alb["lb"], alb["addresses"], {alb["arn"]: {healthy: "healthy", other: state}})
    assert _weights(text) == {healthy: 1, other: 0}


def test_a_group_the_checker_does_not_see_sends_traffic_to_every_target(alb: dict[str, Any]) -> None:
    text = alb["render"](alb["lb"], alb["addresses"], {})
    assert _weights(text) == dict.fromkeys(alb["ids"], 1)


def test_traffic_and_checks_leave_from_the_load_balancers_own_address(alb: dict[str, Any]) -> None:
    """The app hosts' security groups admit the ALB's group: its connections carry its address."""
    text = alb["render"](alb["lb"], alb["addresses"], {})
    assert re.search(r"^\s+source 10\.89\.78\.254$", text, re.M), text


def test_the_stats_socket_stays_short_in_a_long_clone(tmp_path: Path) -> None:
    """A clone in a long directory: HAProxy's stats socket path has a 97-character limit."""
    deep = tmp_path / ("x" * 40) / "repo" / ".twin"
    layout = TwinLayout("gearlift-twin", deep, "gearlift-twin", "10.89.77.0/24", "10.89.77.1", REGION)
    reconciler = AlbReconciler(layout, lambda _: None, print, deep / "cert.pem", Endpoints())  # type: ignore[arg-type]
    cfg, pidfile, sock = reconciler._files("shop-rehearsal-alb-with-32-chars")
    # Whatever the state dir and the load balancer's name: the default root plus a short tail.
    assert len(str(sock)) - len(str(twin_layout.RUNTIME_ROOT)) <= 32, sock
    assert len("/run/gearlift") + 32 <= 97
    assert cfg.parent == deep  # the config stays with the twin's state
    assert sock.parent == pidfile.parent == layout.runtime_dir
    other = TwinLayout("gearlift-twin", tmp_path / "other", "gearlift-twin", "10.89.77.0/24", "10.89.77.1", REGION)
    assert other.runtime_dir != layout.runtime_dir  # two twins never share sockets


@pytest.mark.skipif(shutil.which("haproxy") is None, reason="haproxy is not installed (./scripts/bootstrap)")
def test_an_invalid_config_reports_haproxys_reason(tmp_path: Path) -> None:
    cfg = tmp_path / "bad.cfg"
    cfg.write_text(
        "global\n    stats socket /nonexistent-dir/deeper/s.sock mode 600\nfrontend f\n    bind 127.0.0.1:notaport\n"
    )
    with pytest.raises(TwinError) as err:
        check_config("shop", cfg)
    message = str(err.value)
    assert "invalid:" in message
    reason = message.split("invalid:", 1)[1].strip()
    assert reason, "the checker's own message must follow the colon"
    assert "notaport" in reason or "bind" in reason.lower()


# --------------------------------------------------------------------------- stickiness (issue 15 item 3)


def _stick(alb: dict[str, Any], enabled: bool, seconds: int = 3600) -> None:
    alb["elbv2"].modify_target_group_attributes(
        TargetGroupArn=alb["arn"],
        Attributes=[
            {"Key": "stickiness.enabled", "Value": str(enabled).lower()},
            {"Key": "stickiness.type", "Value": "lb_cookie"},
            {"Key": "stickiness.lb_cookie.duration_seconds", "Value": str(seconds)},
        ],
    )


def _cookies(text: str) -> dict[str, str | None]:
    return {m[1]: (m[2] or None) for m in re.finditer(r"^\s+server (\S+) .*?weight \d+(?: cookie (\S+))?", text, re.M)}


def test_stickiness_follows_the_target_groups_lb_cookie_attributes(alb: dict[str, Any]) -> None:
    _stick(alb, True, 3600)
    text = alb["render"](alb["lb"], alb["addresses"], {})
    assert re.search(r'^\s+cookie AWSALB insert indirect nocache httponly attr "Max-Age=3600"$', text, re.M), text
    cookies = _cookies(text)
    assert set(cookies) == set(alb["ids"])
    values = list(cookies.values())
    assert all(values) and len(set(values)) == len(values)  # one opaque value per target
    assert not any(i in v for i in alb["ids"] for v in values if v)  # not the instance id in clear

    _stick(alb, True, 60)
    assert 'attr "Max-Age=60"' in alb["render"](alb["lb"], alb["addresses"], {})


def test_without_stickiness_no_cookie_is_set(alb: dict[str, Any]) -> None:
    _stick(alb, False)
    text = alb["render"](alb["lb"], alb["addresses"], {})
    assert "cookie" not in text
    assert set(_cookies(text).values()) == {None}


def test_a_sticky_client_of_a_target_that_is_not_healthy_goes_elsewhere(alb: dict[str, Any]) -> None:
    """HAProxy honours a cookie even for a weight-0 server; an ALB does not route to an unhealthy
    target: only healthy servers carry a cookie value, and option redispatch stays on."""
    _stick(alb, True)
    healthy, sick = alb["ids"]
    text = alb["render"](alb["lb"], alb["addresses"], {alb["arn"]: {healthy: "healthy", sick: "unhealthy"}})
    cookies = _cookies(text)
    assert cookies[healthy] and cookies[sick] is None
    assert "option redispatch" in text
    # the value is stable across renders (reloads keep customers on their host)
    again = _cookies(alb["render"](alb["lb"], alb["addresses"], {alb["arn"]: {healthy: "healthy"}}))
    assert again[healthy] == cookies[healthy]


@pytest.mark.skipif(shutil.which("haproxy") is None, reason="haproxy is not installed (./scripts/bootstrap)")
def test_the_sticky_config_is_valid_for_haproxy(alb: dict[str, Any], tmp_path: Path) -> None:
    _stick(alb, True)
    text = alb["render"](alb["lb"], alb["addresses"], {})
    cfg = tmp_path / "sticky.cfg"
    # the stats socket and source address of a real twin are not there: check the rest as HAProxy reads it
    cfg.write_text(
        "\n".join(
            line for line in text.splitlines() if "stats socket" not in line and not line.strip().startswith("source ")
        )
        + "\n"
    )
    check_config("shop", cfg)


def test_load_balancers_never_take_the_twins_resolver_address(
    alb: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The resolver (route53) holds the subnet's last host address; ALBs take the ones below it."""
    import subprocess

    from gearlift.twin.dataplane import elbv2 as elbv2_module

    added: list[list[str]] = []
    monkeypatch.setattr(elbv2_module.podman, "network_interface", lambda network: "br-test")
    monkeypatch.setattr(
        elbv2_module.subprocess,
        "run",
        lambda cmd, **kw: added.append(cmd) or subprocess.CompletedProcess(cmd, 0, "", ""),
    )
    layout = alb["layout"]
    assert layout.resolver == "10.89.78.254"
    reconciler = AlbReconciler(layout, lambda _: None, print, Path("/x"), Endpoints())  # type: ignore[arg-type]
    assert [reconciler.source_for("a"), reconciler.source_for("b")] == ["10.89.78.253", "10.89.78.252"]
    assert added[0][:4] == ["ip", "addr", "add", "10.89.78.253/32"]
