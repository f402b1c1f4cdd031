"""The twin's data plane pieces that need no container: ELB health states, user data, the load loop."""

from __future__ import annotations

import base64
import http.server
import os
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from gearlift.twin import cloudinit
from gearlift.twin.healthcheck import CheckSpec, TargetHealthChecker, http_check
from gearlift.twin.loadloop import LoadLoop

SPEC = CheckSpec(
    path="/health",
    port="traffic-port",
    codes=frozenset({"200"}),
    interval=10.0,
    timeout=1.0,
    healthy_threshold=3,
    unhealthy_threshold=2,
)


class FakeTime:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _checker(answers: list[bool]) -> tuple[TargetHealthChecker, FakeTime, list[str]]:
    clock = FakeTime()
    calls: list[str] = []

    def check(
        address: str, port: int, path: str, timeout: float, codes: frozenset[str], source: str
    ) -> tuple[bool, str]:
        calls.append(f"{address}:{port}{path}")
        return answers.pop(0), "scripted"

    return TargetHealthChecker(lambda _: None, check=check, clock=clock), clock, calls


def test_health_states_follow_the_elb_thresholds_and_interval() -> None:
    checker, clock, calls = _checker([True, True, True, False, False, True, True, True])
    targets = {"tg": (SPEC, {"i-1": 8080})}
    seen = []
    for _ in range(8):
        seen.append(checker.run(targets, {"i-1": "10.0.0.5"})["tg"]["i-1"])
        checker.run(targets, {"i-1": "10.0.0.5"})  # not due yet: no second check
        clock.now += SPEC.interval
    assert seen == [
        "initial",
        "initial",
        "healthy",  # 3 passes
        "healthy",
        "unhealthy",  # 2 failures
        "unhealthy",
        "unhealthy",
        "healthy",  # 3 passes again
    ]
    assert calls == ["10.0.0.5:8080/health"] * 8


def test_initial_target_turns_unhealthy_and_a_reregistered_one_starts_over() -> None:
    checker, clock, _ = _checker([False, False, True, True, True, True])
    targets = {"tg": (SPEC, {"i-1": 80})}
    checker.run(targets, {"i-1": "10.0.0.5"})
    clock.now += 10
    assert checker.run(targets, {"i-1": "10.0.0.5"})["tg"]["i-1"] == "unhealthy"
    assert checker.states("unhealthy") == {"i-1"}
    assert checker.run({"tg": (SPEC, {})}, {}) == {"tg": {}}  # deregistered: forgotten
    clock.now += 10
    assert checker.run(targets, {"i-1": "10.0.0.5"})["tg"]["i-1"] == "initial"


def test_a_target_without_an_address_fails_its_checks() -> None:
    checker, clock, calls = _checker([])
    targets = {"tg": (SPEC, {"i-gone": 80})}
    checker.run(targets, {})
    clock.now += 10
    assert checker.run(targets, {})["tg"]["i-gone"] == "unhealthy" and calls == []


@pytest.fixture
def web() -> Iterator[int]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            status = 200 if self.path in ("/health", "/ok") else 404
            body = b'{"status":"ok","host":"web-1"}' if status == 200 else b"no"
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            return

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def test_http_check_uses_the_matcher(web: int) -> None:
    assert http_check("127.0.0.1", web, "/health", 2, frozenset({"200"})) == (True, "HTTP 200")
    assert http_check("127.0.0.1", web, "/missing", 2, frozenset({"200"})) == (False, "HTTP 404")
    assert http_check("127.0.0.1", web, "/missing", 2, frozenset({"200", "404"}))[0] is True
    passed, detail = http_check("127.0.0.1", 1, "/health", 1, frozenset({"200"}))
    assert not passed and "Connection" in detail


def test_load_loop_counts_failures_and_stays_bounded(web: int) -> None:
    with LoadLoop(f"http://127.0.0.1:{web}/health", interval=0.01, max_requests=20) as loop:
        pass
    loop._thread.join(timeout=10)
    assert loop.result.sent <= 20 and loop.result.failed == 0 and loop.result.hosts
    with LoadLoop(f"http://127.0.0.1:{web}/nope", interval=0.0, max_requests=5, max_seconds=10) as bad:
        bad._thread.join(timeout=10)
    assert bad.result.sent == 5 and bad.result.failed == 5 and bad.result.statuses["404"] == 5


@pytest.mark.parametrize("url", ["http://10.0.0.1:80/health", "ftp://127.0.0.1:21/", "http://localhost:80/"])
def test_load_loop_refuses_anything_but_loopback(url: str) -> None:
    with pytest.raises(ValueError, match=r"only sends to http\(s\)://127\.0\.0\.1"):
        LoadLoop(url)


# ------------------------------------------------------------------ user data


def test_cloud_config_write_files_run_early_and_runcmd_late(tmp_path: Path) -> None:
    # Paths under tmp_path and the caller as owner: the rendered stage runs here for real.
    owner = f"{os.getuid()}:{os.getgid()}"
    blob = base64.b64encode(b"binary\x00ok").decode()
    config = {
        "write_files": [
            {"path": f"{tmp_path}/etc/gearlift/instance.env", "content": "A=1\nB='two'\n", "permissions": "0640"},
            {"path": f"{tmp_path}/etc/gearlift/blob", "content": blob, "encoding": "b64", "owner": owner},
            {"path": f"{tmp_path}/etc/gearlift/late", "content": "later", "defer": True, "owner": owner},
        ],
        "runcmd": ["echo one", ["echo", "two words"]],
    }
    config["write_files"][0]["owner"] = owner
    stages = cloudinit.render(("#cloud-config\n" + yaml.safe_dump(config)).encode())
    assert set(stages) == {"init.sh", "final.sh"}
    assert "instance.env" in stages["init.sh"] and "late" not in stages["init.sh"]
    assert "echo one" in stages["final.sh"] and "'two words'" in stages["final.sh"]
    subprocess.run(["sh", "-c", stages["init.sh"]], check=True)
    env = tmp_path / "etc/gearlift/instance.env"
    assert env.read_text() == "A=1\nB='two'\n" and oct(env.stat().st_mode & 0o777) == "0o640"
    assert (tmp_path / "etc/gearlift/blob").read_bytes() == b"binary\x00ok"
    assert not (tmp_path / "etc/gearlift/late").exists()
    subprocess.run(["sh", "-c", stages["final.sh"]], check=True, capture_output=True)
    assert (tmp_path / "etc/gearlift/late").read_text() == "later"


def test_scripts_run_in_the_final_stage_and_unsupported_user_data_is_named(tmp_path: Path) -> None:
    stages = cloudinit.render(b"#!/bin/sh\necho hi\n")
    assert stages["final.sh"].strip() == f"exec {cloudinit.INSTANCE_DIR}/user-script" and "init.sh" not in stages
    assert cloudinit.render(b"") == {}
    assert cloudinit.prepare(tmp_path / "i-1", "i-1", b"#!/bin/sh\ntrue\n")
    assert (tmp_path / "i-1" / "instance-id").read_text() == "i-1\n"
    assert (tmp_path / "i-1" / "user-script").stat().st_mode & 0o111
    with pytest.raises(cloudinit.UserDataError, match="packages"):
        cloudinit.render(b"#cloud-config\npackages: [nginx]\n")
    with pytest.raises(cloudinit.UserDataError, match="MIME"):
        cloudinit.render(b"Content-Type: multipart/mixed\n")


def test_generator_wires_the_stages_into_the_boot(tmp_path: Path) -> None:
    generator = cloudinit.write_generator(tmp_path / "gen")
    text = generator.read_text()
    assert text.startswith("#!/bin/sh") and generator.stat().st_mode & 0o111
    assert "Before=sysinit.target network-pre.target network-online.target" in text
    assert "After=multi-user.target network-online.target" in text
    assert "ConditionPathExists=!$sem/gearlift-twin-$stage" in text
    # Run it against a fake instance dir: it writes both units and their wants links.
    instance = tmp_path / "instance"
    cloudinit.prepare(instance, "i-9", b"#cloud-config\nwrite_files: [{path: /etc/x, content: y}]\nruncmd: [true]\n")
    out = tmp_path / "units"
    out.mkdir()
    script = text.replace(cloudinit.INSTANCE_DIR, str(instance))
    subprocess.run(["sh", "-c", script, "gen", str(out)], check=True)
    assert (out / "gearlift-twin-cloud-init.service").exists()
    assert (out / "sysinit.target.wants" / "gearlift-twin-cloud-init.service").is_symlink()
    assert (out / "multi-user.target.wants" / "gearlift-twin-cloud-final.service").is_symlink()
    assert "/var/lib/cloud/instances/i-9/sem" in (out / "gearlift-twin-cloud-final.service").read_text()


# ------------------------------------------------------ the Auto Scaling loop


class _FakeAutoScaling:
    def __init__(self, members: list[str]) -> None:
        self.members = members
        self.terminated: list[str] = []

    def get_paginator(self, op: str) -> _FakeAutoScaling:
        return self

    def paginate(self, **_: object) -> list[dict[str, object]]:
        return [{"AutoScalingGroups": self.describe_auto_scaling_groups()["AutoScalingGroups"]}]

    def describe_auto_scaling_groups(self, **_: object) -> dict[str, list[dict[str, object]]]:
        instances = [{"InstanceId": i, "LifecycleState": "InService"} for i in self.members]
        group = {"AutoScalingGroupName": "web", "Instances": instances, "HealthCheckType": "ELB", "TargetGroupARNs": []}
        return {"AutoScalingGroups": [group]}

    def set_instance_health(self, **_: object) -> None:
        return None

    def terminate_instance_in_auto_scaling_group(self, InstanceId: str, **_: object) -> None:
        self.terminated.append(InstanceId)


def test_the_asg_loop_leaves_instances_launched_after_its_ec2_listing_alone() -> None:
    from gearlift.twin.dataplane.autoscaling import AsgController

    asg = _FakeAutoScaling(["i-old", "i-gone", "i-new"])
    controller = AsgController(lambda service: asg, lambda _: None)  # type: ignore[arg-type] - a stub client
    listing = {"i-old": {"State": {"Name": "running"}}, "i-gone": {"State": {"Name": "terminated"}}}
    controller.replace_and_register(listing, unhealthy_targets=set(), launched_at={})
    # i-new is in the group but not in the EC2 listing of this round: not judged, not replaced.
    assert asg.terminated == ["i-gone"]


def test_a_twin_refused_at_preflight_leaves_the_running_twin_of_that_name_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two clones rehearsing with the same prefix: the second is refused and must not tear down the first."""
    from gearlift.twin import podman
    from gearlift.twin import twin as twin_module
    from gearlift.twin.errors import TwinError

    class Running:
        name = "gearlift-twin-anchor"

    monkeypatch.setattr(podman, "check_runtime_config", lambda: None)
    monkeypatch.setattr(podman, "list_containers", lambda label: [Running()])
    cleaned: list[str] = []
    monkeypatch.setattr(twin_module, "clean", lambda config, log=None: cleaned.append(config.prefix) or [])
    other = twin_module.Twin(twin_module.TwinConfig(state_dir=tmp_path), log=lambda _line: None)
    with pytest.raises(TwinError, match="earlier twin 'gearlift-twin' are still there"):
        other.up()
    other.down()
    assert cleaned == []


def test_hosts_see_the_aws_apis_on_one_fixed_port_whatever_the_loopback_port() -> None:
    """A golden image baked in one rehearsal keeps reaching the APIs in the next (as AWS's endpoints are fixed)."""
    from gearlift.twin.controlplane import MotoControlPlane
    from gearlift.twin.emulator.server import listen_address

    assert listen_address("10.89.77.1:4566", 40000) == ("10.89.77.1", 4566)
    assert listen_address("127.0.0.1", 40000) == ("127.0.0.1", 40000)
    plane = MotoControlPlane(Path("/nonexistent"), ["127.0.0.1", "10.89.77.1"], 40000, 4566)
    assert plane.url == "http://127.0.0.1:40000"
    assert plane.url_for("10.89.77.1") == "http://10.89.77.1:4566"
    assert MotoControlPlane(Path("/x"), ["127.0.0.1", "10.1.1.1"], 40001).url_for("10.1.1.1") == "http://10.1.1.1:40001"


def test_the_bridge_mac_is_a_fixed_locally_administered_unicast_address_per_network() -> None:
    from gearlift.twin import podman

    mac = podman.bridge_mac("gearlift-twin")
    octets = [int(part, 16) for part in mac.split(":")]
    assert len(octets) == 6
    assert octets[0] & 0x01 == 0, "unicast"
    assert octets[0] & 0x02 == 0x02, "locally administered: no vendor's address"
    assert podman.bridge_mac("gearlift-twin") == mac, "the same network, the same MAC, run after run"
    assert podman.bridge_mac("gltest") != mac, "twins side by side on different bridges differ"


def test_the_network_helpers_read_one_inspect_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    from gearlift.twin import podman
    from gearlift.twin.errors import TwinError

    answers = {
        "gltest": (
            0,
            '[{"name": "gltest", "network_interface": "podman3", "subnets": [{"subnet": '
            '"10.89.78.0/24", "gateway": "10.89.78.1"}]}]',
        ),
        "absent": (125, ""),
    }

    def fake_run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        assert args[:2] == ("network", "inspect")
        code, out = answers[args[2]]
        if check and code:
            raise TwinError(f"podman {' '.join(args)} failed")
        return subprocess.CompletedProcess(list(args), code, out, "")

    monkeypatch.setattr(podman, "run", fake_run)
    assert podman.network_interface("gltest") == "podman3"
    assert podman.network_gateway("gltest") == "10.89.78.1"
    assert podman.network_gateway("absent") == "", "an absent network has no gateway: nothing to look for"
    with pytest.raises(TwinError):
        podman.network_interface("absent")


def test_clean_finds_an_orphaned_emulator_by_the_gateway_it_serves_on(tmp_path: Path) -> None:
    from gearlift.twin.twin import emulators_bound_to

    def proc(pid: int, *args: str) -> None:
        (tmp_path / str(pid)).mkdir()
        (tmp_path / str(pid) / "cmdline").write_bytes(b"\0".join(a.encode() for a in args) + b"\0")

    server = ("/venv/bin/python3", "-m", "gearlift.twin.emulator.server", "--port", "39739")
    proc(101, *server, "--host", "127.0.0.1:39739", "--host", "10.89.78.1:4566")  # the test twin's
    proc(102, *server, "--host", "127.0.0.1:40001", "--host", "10.89.77.1:4566")  # the story twin's
    proc(103, "/usr/bin/python3", "-c", "print('--host 10.89.78.1:4566')")  # not an emulator
    proc(104, "sleep", "--host", "10.89.78.1:4566")
    (tmp_path / "self").mkdir()
    assert emulators_bound_to("10.89.78.1", tmp_path) == [101]
    assert emulators_bound_to("10.89.77.1", tmp_path) == [102]
    assert emulators_bound_to("10.89.78.10", tmp_path) == [], "an address, not a prefix of one"
    assert emulators_bound_to("", tmp_path) == [], "no network of this prefix: nothing to match"
