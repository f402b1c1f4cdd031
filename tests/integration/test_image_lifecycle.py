"""The image lifecycle in the rehearsal, end to end, with the playbooks a real account runs.

One twin for the file, the steps in order (each test builds on the one before):
site.yml without the fleet, a bake from Canonical's image (promoted), the fleet
on it, a re-bake on top of the golden image, a deploy of it under a request
loop (every host replaced, no failed request), a bake whose boot test fails
(nothing promoted, nothing left), a deploy whose new hosts fail health (rolled
back), a patch run under a request loop (the group at min = desired = 2:
a surge keeps 2 in service, settled at the end), and a patch run whose first
batch fails (stops, the failed host replaced, the other batch untouched). The baked image is inspected for a
secret, SSH host keys and a machine-id.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gearlift.twin import podman
from gearlift.twin.dataplane.amis import LOCAL_IMAGE_TAG
from gearlift.twin.loadloop import LoadLoop, LoadResult
from gearlift.twin.runner import RunResult, run_playbook
from gearlift.twin.twin import Twin

from .conftest import REPO

# Its own lane (scripts/test lifecycle, ~30 min on 2 cores): with it the CI run would pass an hour.
pytestmark = pytest.mark.lifecycle
NAME = "shop-rehearsal"
PARAMETER = "/gearlift/shop/rehearsal/golden-ami-id"
# A failing new host is given up after the grace period: keep it short here.
EXTRA = {"gearlift_health_check_grace_period": 150}


class Lifecycle:
    def __init__(self, twin: Twin, tmp: Path) -> None:
        self.twin = twin
        self.tmp = tmp
        self.runs = 0
        self.facts: dict[str, Any] = {}

    def play(self, playbook: str, tags: str | None = None, **extra: Any) -> tuple[RunResult, list[str]]:
        self.runs += 1
        lines: list[str] = []
        result = run_playbook(
            REPO,
            playbook,
            ["inventories/rehearsal"],
            self.tmp / f"runner-{self.runs}",
            self.twin.aws_env,
            lines.append,
            extravars={**EXTRA, **extra},
            tags=tags,
        )
        return result, lines

    def ok(self, playbook: str, tags: str | None = None, **extra: Any) -> RunResult:
        result, lines = self.play(playbook, tags, **extra)
        assert result.ok, "\n".join(lines + result.failures)
        return result

    def c(self, service: str) -> Any:
        return self.twin.clients(service)

    def promoted(self) -> str:
        value: str = self.c("ssm").get_parameter(Name=PARAMETER)["Parameter"]["Value"]
        return value

    def group(self) -> dict[str, Any]:
        found = self.c("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[NAME])
        group: dict[str, Any] = found["AutoScalingGroups"][0]
        return group

    def members(self) -> dict[str, str]:
        return {i["InstanceId"]: i["LaunchTemplate"]["Version"] for i in self.group()["Instances"]}

    def target_group(self) -> str:
        arn: str = self.c("elbv2").describe_target_groups(Names=[f"{NAME}-app"])["TargetGroups"][0]["TargetGroupArn"]
        return arn

    def healthy(self) -> set[str]:
        found = self.c("elbv2").describe_target_health(TargetGroupArn=self.target_group())["TargetHealthDescriptions"]
        return {d["Target"]["Id"] for d in found if d["TargetHealth"]["State"] == "healthy"}

    def wait_serving(self, timeout: float = 600) -> None:
        self.twin.wait_for(
            lambda: bool(self.members()) and set(self.members()) <= self.healthy(), timeout, "every host healthy"
        )

    def load(self) -> LoadLoop:
        """A request loop through HAProxy's HTTPS listener on loopback (the ALB's 443)."""
        port = self.twin.endpoints.load_balancers[NAME]["443"]
        cafile = str(self.twin.layout.state_dir / "tls-alb" / "ca.crt")
        return LoadLoop(f"https://127.0.0.1:{port}/health", interval=0.05, cafile=cafile)

    def bake_run_instances(self) -> list[str]:
        found = self.c("ec2").describe_instances(
            Filters=[
                {"Name": "tag-key", "Values": ["gearlift:bake-run"]},
                {"Name": "instance-state-name", "Values": ["pending", "running", "stopping", "stopped"]},
            ]
        )["Reservations"]
        return [i["InstanceId"] for r in found for i in r["Instances"]]


@pytest.fixture(scope="module")
def life(twin: Twin, standin_jar: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lifecycle]:
    twin.start_loop()
    try:
        yield Lifecycle(twin, tmp_path_factory.mktemp("lifecycle"))
    finally:
        twin.stop_loop()


# HAProxy's httplog: "... frontend backend/server Tq/Tw/Tc/Tr/Ta status bytes cookie cookie TERM ..."
HTTPLOG = re.compile(
    r"\] \S+ \S+/\S+ (?P<timers>-?\d+/-?\d+/-?\d+/-?\d+/\+?-?\d+) (?P<status>-?\d+) \+?\d+ \S+ \S+ (?P<term>\S{4}) "
)


def _alb_anomalies(twin: Twin, limit: int = 40, slow_ms: int = 1000) -> list[str]:
    """The ALB stand-in's request-log lines of requests that did not end normally or were slow: a status
    that is not 2xx/3xx, a session state other than -- (the last two of the four flags are the stickiness
    cookie's), or a total time of at least ``slow_ms``: which target, and which timer, a failure had."""
    assert twin.alb is not None
    path = twin.alb.access_log(NAME)
    if not path.exists():
        return [f"(no request log at {path})"]
    odd = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        found = HTTPLOG.search(line)
        if found is None:
            continue
        total = int(found["timers"].rsplit("/", 1)[1].lstrip("+"))
        if found["term"][:2] != "--" or not found["status"].startswith(("2", "3")) or total >= slow_ms:
            odd.append(line)
    return odd[-limit:]


def _failed(result: LoadResult, twin: Twin | None = None) -> str:
    text = result.summary() + "\n" + "\n".join(result.failures)
    if twin is not None:
        text += "\nthe ALB's request log, requests that did not end normally:\n" + "\n".join(_alb_anomalies(twin))
    return text


def test_bake_boot_tests_and_promotes_an_encrypted_tagged_image(life: Lifecycle) -> None:
    life.ok("site.yml", tags="preflight,keys,network,security,data,storage,edge")
    started = time.monotonic()
    life.ok("playbooks/bake_ami.yml")
    life.facts["bake_seconds"] = time.monotonic() - started
    ami = life.promoted()
    image = life.c("ec2").describe_images(ImageIds=[ami])["Images"][0]
    tags = {t["Key"]: t["Value"] for t in image["Tags"]}
    assert image["State"] == "available" and image["Name"].startswith(f"{NAME}-golden-")
    assert image["BlockDeviceMappings"][0]["Ebs"]["Encrypted"] is True
    source = life.c("ec2").describe_images(ImageIds=[tags["gearlift:source-image"]])["Images"][0]
    assert source["OwnerId"] == "099720109477" and "ubuntu-noble-24.04-amd64-server" in source["Name"]
    assert tags["gearlift:git-revision"] not in ("", "unknown")
    assert all(f"{role}=" in tags["gearlift:role-versions"] for role in ("hardening", "apache", "java_app"))
    assert "fail=0" in tags["gearlift:audit"] and "gearlift:promoted" in tags
    assert life.bake_run_instances() == [], "the bake left a builder or test instance"
    life.facts["first"] = ami


def test_baked_image_has_no_secret_no_ssh_host_key_no_machine_id(life: Lifecycle) -> None:
    ami = life.facts["first"]
    image = life.c("ec2").describe_images(ImageIds=[ami])["Images"][0]
    local = {t["Key"]: t["Value"] for t in image["Tags"]}[LOCAL_IMAGE_TAG]
    secret = json.loads(life.c("secretsmanager").get_secret_value(SecretId=f"gearlift/{NAME}/app-db")["SecretString"])
    pw = life.tmp / "pw"
    pw.write_text(secret["password"], encoding="utf-8")
    pw.chmod(0o600)
    probe = podman.run(
        "run", "--rm", *podman.RUN_FIX_ARGS, "-v", f"{pw}:/probe/pw:ro", "--entrypoint", "/bin/bash", local, "-c",
        "set -u; echo machine-id=$(wc -c < /etc/machine-id); echo keys=$(ls /etc/ssh/ssh_host_* 2>/dev/null | wc -l); "
        "echo env=$(ls /run/gearlift/db.env /etc/gearlift/instance.env 2>/dev/null | wc -l); "
        "echo found=$(grep -rlsF -f /probe/pw --exclude-dir=proc --exclude-dir=sys --exclude-dir=dev "
        "--exclude-dir=probe / | wc -l); echo app=$(test -f /opt/gearlift/shop/shop.jar && echo yes)",
    )  # fmt: skip
    facts = dict(line.split("=", 1) for line in probe.stdout.split())
    assert facts == {"machine-id": "0", "keys": "0", "env": "0", "found": "0", "app": "yes"}, probe.stdout


def test_fleet_runs_the_promoted_image_and_a_rebake_is_promoted(life: Lifecycle) -> None:
    life.ok("playbooks/fleet.yml")
    life.wait_serving()
    template = life.group()["LaunchTemplate"]
    data = life.c("ec2").describe_launch_template_versions(
        LaunchTemplateId=template["LaunchTemplateId"], Versions=[template["Version"]]
    )["LaunchTemplateVersions"][0]["LaunchTemplateData"]
    assert data["ImageId"] == life.facts["first"]
    started = time.monotonic()
    life.ok("playbooks/bake_ami.yml", image_bake_source_image_id=life.facts["first"])
    life.facts["rebake_seconds"] = time.monotonic() - started
    assert life.promoted() != life.facts["first"]
    life.facts["second"] = life.promoted()


def test_a_bake_with_unchanged_inputs_reuses_the_promoted_image(life: Lifecycle) -> None:
    """An image pipeline rebuilds only when an input changes: same roles, settings and source image."""
    images_before = {i["ImageId"] for i in life.c("ec2").describe_images(Owners=["self"])["Images"]}
    result = life.ok("playbooks/bake_ami.yml", image_bake_source_image_id=life.facts["first"])
    assert life.promoted() == life.facts["second"]
    assert {i["ImageId"] for i in life.c("ec2").describe_images(Owners=["self"])["Images"]} == images_before
    launched = life.c("ec2").describe_instances(
        Filters=[{"Name": "tag:gearlift:bake-role", "Values": ["builder", "boot-test"]}]
    )["Reservations"]
    runs = {
        t["Value"]
        for r in launched
        for i in r["Instances"]
        for t in i.get("Tags", [])
        if t["Key"] == "gearlift:bake-run"
    }
    assert len(runs) == 2, f"a builder was launched for the reuse run: {sorted(runs)}"  # the first bake and the rebake
    assert result.totals().get("failures", 0) == 0


def test_deploy_replaces_every_host_without_a_failed_request(life: Lifecycle) -> None:
    before = life.members()
    with life.load() as load:
        started = time.monotonic()
        life.ok("playbooks/deploy.yml")
        life.facts["deploy_seconds"] = time.monotonic() - started
        time.sleep(3)
    after = life.members()
    assert not set(before) & set(after), f"hosts not replaced: {set(before) & set(after)}"
    assert len(after) == len(before) and len(set(after.values())) == 1
    images = {
        i["ImageId"]
        for r in life.c("ec2").describe_instances(InstanceIds=list(after))["Reservations"]
        for i in r["Instances"]
    }
    assert images == {life.facts["second"]}
    assert load.result.sent > 100 and load.result.failed == 0, _failed(load.result, life.twin)
    life.facts["deploy_load"] = load.result


def test_failed_boot_test_promotes_nothing_and_leaves_nothing(life: Lifecycle) -> None:
    images_before = {i["ImageId"] for i in life.c("ec2").describe_images(Owners=["self"])["Images"]}
    result, lines = life.play(
        "playbooks/bake_ami.yml",
        image_bake_source_image_id=life.facts["second"],
        java_app_jvm_opts=["-XX:+GearliftNoSuchOption"],  # the app cannot start: /health fails
        image_bake_health_timeout=90,
    )
    assert not result.ok
    text = "\n".join(lines + result.failures)
    assert "boot test" in text and "nothing was promoted" in text, text[-3000:]
    assert life.promoted() == life.facts["second"]
    assert life.bake_run_instances() == []
    images_after = {i["ImageId"] for i in life.c("ec2").describe_images(Owners=["self"])["Images"]}
    assert images_after <= images_before, f"the failed bake left images: {images_after - images_before}"


def test_deploy_whose_new_hosts_fail_health_rolls_back(life: Lifecycle) -> None:
    before = life.members()
    version_before = set(before.values())
    bad_image = life.twin.aws_env["GEARLIFT_AMI_ID"]  # the twin's first image serves nothing
    with life.load() as load:
        result, lines = life.play("playbooks/deploy.yml", gearlift_ami_id=bad_image)
    assert not result.ok
    text = "\n".join(lines + result.failures)
    assert "Rolled back" in text or "rolled back" in text, text[-3000:]
    life.wait_serving()
    assert set(life.members().values()) == version_before
    images = {
        i["ImageId"]
        for r in life.c("ec2").describe_instances(InstanceIds=list(life.members()))["Reservations"]
        for i in r["Instances"]
    }
    assert images == {life.facts["second"]}
    assert load.result.failed == 0, _failed(load.result, life.twin)


class Capacity:
    """DescribeAutoScalingGroups every 0.5 s in the background, bounded: InService count, desired, surge tag."""

    def __init__(self, life: Lifecycle) -> None:
        self.life = life
        self.samples: list[tuple[int, int, bool]] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.loop, daemon=True)

    def loop(self) -> None:
        deadline = time.monotonic() + 3600
        while not self.stop.is_set() and time.monotonic() < deadline:
            group = self.life.group()
            in_service = sum(1 for i in group["Instances"] if i["LifecycleState"] == "InService")
            surge = any(t["Key"] == "gearlift:surge" for t in group.get("Tags", []))
            self.samples.append((in_service, group["DesiredCapacity"], surge))
            self.stop.wait(0.5)

    def __enter__(self) -> Capacity:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=30)


def _surge_tag(life: Lifecycle) -> bool:
    return any(t["Key"] == "gearlift:surge" for t in life.group().get("Tags", []))


def _pid1_start(host: str) -> str:
    return podman.exec_(host, "cut", "-d", " ", "-f22", "/proc/1/stat").stdout.strip()


def test_patch_run_patches_every_host_without_a_failed_request(life: Lifecycle) -> None:
    hosts = sorted(life.members())
    boots = {h: _pid1_start(h) for h in hosts}
    group = life.group()
    assert group["MinSize"] == group["DesiredCapacity"] == 2, "the shipped inventory runs min = desired = 2"
    run = f"test-ok-{time.strftime('%Y%m%d-%H%M%S')}"
    with life.load() as load, Capacity(life) as capacity:
        started = time.monotonic()
        life.ok("playbooks/patch.yml", fleet_patch_reboot="always", fleet_patch_run=run)
        life.facts["patch_seconds"] = time.monotonic() - started
    report = json.loads((REPO / f"reports/patch/{run}.json").read_text(encoding="utf-8"))
    assert sorted(r["host"] for r in report["hosts"]) == hosts
    assert all(r["status"] == "patched" and r["rebooted"] for r in report["hosts"]), report
    assert all(_pid1_start(h) != boots[h] for h in hosts), "a host was not rebooted"
    assert set(life.members()) == set(hosts) and set(hosts) <= life.healthy()
    assert load.result.sent > 100 and load.result.failed == 0, _failed(load.result, life.twin)
    life.facts["patch_load"] = load.result
    # At its minimum the group got a surge of one host (unpatched, never in a batch), settled at the end:
    # never fewer than 2 in service, desired back at 2, the surge host gone, the record removed.
    surge = report["surge"]
    assert surge["count"] == 1 and surge["status"] == "settled" and surge["terminated"] == surge["instances"], surge
    assert not set(surge["instances"]) & set(hosts)
    assert len(capacity.samples) > 10 and min(c[0] for c in capacity.samples) >= 2, capacity.samples
    assert max(c[1] for c in capacity.samples) == 3 and any(c[2] for c in capacity.samples), capacity.samples
    assert life.group()["DesiredCapacity"] == 2 and not _surge_tag(life)
    life.facts["patch_capacity"] = min(c[0] for c in capacity.samples)


def test_failed_patch_batch_stops_the_run_and_leaves_the_other_batches(life: Lifecycle) -> None:
    zones = {
        i["InstanceId"]: i["AvailabilityZone"] for i in life.group()["Instances"] if i["LifecycleState"] == "InService"
    }
    first_zone = sorted(set(zones.values()))[0]
    broken = sorted(h for h, z in zones.items() if z == first_zone)
    others = sorted(h for h, z in zones.items() if z != first_zone)
    assert broken and others
    for host in broken:  # after its reboot the app does not come back
        podman.exec_(
            host, "sh", "-c",
            "mkdir -p /etc/systemd/system/shop.service.d && printf '[Service]\\nExecStartPre=/bin/false\\n' "
            "> /etc/systemd/system/shop.service.d/99-test-broken.conf && systemctl daemon-reload",
        )  # fmt: skip
    boots = {h: _pid1_start(h) for h in others}
    run = f"test-stop-{time.strftime('%Y%m%d-%H%M%S')}"
    with Capacity(life) as capacity:
        result, _lines = life.play(
            "playbooks/patch.yml", fleet_patch_reboot="always", fleet_patch_run=run, fleet_patch_health_timeout=60
        )
    assert not result.ok
    report = json.loads((REPO / f"reports/patch/{run}.json").read_text(encoding="utf-8"))
    statuses = {r["host"]: r["status"] for r in report["hosts"]}
    assert statuses == dict.fromkeys(broken, "failed"), report
    assert all(h not in statuses for h in others)
    assert {h: _pid1_start(h) for h in others} == boots, "a host of a later batch was touched"
    # The failed host does not answer: terminated, the group replaced it (not left in Standby); recorded.
    actions = {r["host"]: r["action"] for r in report["hosts"]}
    assert all("the group replaces it" in actions[h] for h in broken), actions
    group = life.group()
    states = {i["InstanceId"]: i["LifecycleState"] for i in group["Instances"]}
    assert all(states.get(h) in (None, "Terminating", "Terminated") for h in broken), states
    assert all(states[h] == "InService" for h in others)
    replacements = [h for h, state in states.items() if state == "InService" and h not in others]
    assert len(replacements) == len(broken) and not set(replacements) & set(report["surge"]["instances"]), states
    # The surge was settled once the replacement was healthy: capacity never below 2, desired back at 2.
    assert report["surge"]["status"] == "settled", report["surge"]
    assert min(c[0] for c in capacity.samples) >= 2, capacity.samples
    assert group["DesiredCapacity"] == 2 and not _surge_tag(life)
    assert "not touched" in (REPO / f"reports/patch/{run}.md").read_text(encoding="utf-8")
