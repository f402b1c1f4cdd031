"""Image lifecycle measurements in the rehearsal (scripts/bench-image-lifecycle), printed side by side.

* time-to-healthy of a new host: booted from the baked golden image vs a bare
  host (the same source image the bake starts from) converged at boot with the
  same roles, from RunInstances until the app answers through Apache;
* wall time of a rolling deploy of the fleet (instance refresh) and of a patch
  run (one Availability Zone per batch, every host rebooted);
* requests that failed through HAProxy during each, from a bounded request loop
  on loopback.

A measurement, not a test: nothing passes or fails on time. It needs the
shared heavy lock like any run that starts containers.
"""

from __future__ import annotations

import argparse
import http.client
import json
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gearlift.twin import podman
from gearlift.twin.loadloop import LoadLoop, LoadResult
from gearlift.twin.runner import run_playbook
from gearlift.twin.twin import REPO_ROOT, Twin, TwinConfig

NAME = "shop-rehearsal"
EXTRA = {"gearlift_health_check_grace_period": 150}
CONVERGE = """- name: Bench | a bare host converged at boot (the golden image's roles)
  hosts: bench_bare
  become: true
  gather_facts: true
  pre_tasks:
    - name: Bench | package lists and every pending update (as the bake starts)
      ansible.builtin.apt:
        update_cache: true
        upgrade: safe
  roles:
    - role: gearlift.platform.ssm_agent
    - role: gearlift.platform.hardening
    - role: gearlift.platform.apache
    - role: gearlift.platform.java_app
      vars:
        java_app_fetch_secret_now: true
    - role: gearlift.platform.cloudwatch_agent
  tasks:
    - name: Bench | the database CA bundle
      ansible.builtin.include_role:
        name: gearlift.platform.image_bake
        tasks_from: ca_bundle
"""


def _quiet(_: str) -> None:
    return None


@dataclass
class Bench:
    twin: Twin
    work: Path
    runs: int = 0
    rows: dict[str, str] = field(default_factory=dict)

    def say(self, line: str) -> None:
        print(f"bench: {line}", flush=True)

    def play(self, playbook: str, inventory: list[str] | None = None, tags: str | None = None, **extra: Any) -> float:
        self.runs += 1
        lines: list[str] = []
        started = time.monotonic()
        result = run_playbook(
            REPO_ROOT,
            playbook,
            inventory or ["inventories/rehearsal"],
            self.work / f"runner-{self.runs}",
            self.twin.aws_env,
            lines.append,
            extravars={**EXTRA, **extra},
            tags=tags,
        )
        seconds = time.monotonic() - started
        if not result.ok:
            raise SystemExit(f"bench: {playbook} failed:\n" + "\n".join(lines[-20:] + result.failures))
        self.say(f"{playbook} {tags or ''} ok in {seconds:.0f} s")
        return seconds

    def c(self, service: str) -> Any:
        assert self.twin.clients is not None, "the twin is not up"
        return self.twin.clients(service)

    def promoted(self) -> str:
        value: str = self.c("ssm").get_parameter(Name="/gearlift/shop/rehearsal/golden-ami-id")["Parameter"]["Value"]
        return value

    def user_data(self) -> str:
        template = self.c("ec2").describe_launch_template_versions(LaunchTemplateName=NAME, Versions=["$Default"])
        data: str = template["LaunchTemplateVersions"][0]["LaunchTemplateData"]["UserData"]
        return data

    def launch(self, image: str) -> str:
        subnet = self.c("ec2").describe_subnets(Filters=[{"Name": "tag:gearlift:tier", "Values": ["app"]}])["Subnets"]
        iid: str = self.c("ec2").run_instances(
            ImageId=image,
            MinCount=1,
            MaxCount=1,
            InstanceType="t3.small",
            SubnetId=subnet[0]["SubnetId"],
            UserData=self.user_data_plain(),
        )["Instances"][0]["InstanceId"]
        return iid

    def user_data_plain(self) -> str:
        import base64

        return base64.b64decode(self.user_data()).decode()

    def healthy(self, iid: str) -> bool:
        if not podman.container_exists(iid):
            return False
        address = podman.container_ip(iid, self.twin.layout.network)
        if not address:
            return False
        conn = http.client.HTTPConnection(address, 80, timeout=3)
        try:
            conn.request("GET", "/health")
            return conn.getresponse().status == 200
        except (OSError, http.client.HTTPException):
            return False
        finally:
            conn.close()

    def time_to_healthy(self, iid: str, started: float, timeout: float) -> float:
        self.twin.wait_for(lambda: self.healthy(iid), timeout, f"{iid} healthy through Apache")
        return time.monotonic() - started

    def baked_host(self) -> float:
        started = time.monotonic()
        iid = self.launch(self.promoted())
        seconds = self.time_to_healthy(iid, started, 600)
        self.c("ec2").terminate_instances(InstanceIds=[iid])
        return seconds

    def bare_host(self) -> float:
        source = self.c("ec2").describe_images(
            Owners=["099720109477"],
            Filters=[{"Name": "name", "Values": ["ubuntu/images/*ubuntu-noble-24.04-amd64-server-*"]}],
        )["Images"]
        image = max(source, key=lambda i: i["CreationDate"])["ImageId"]
        started = time.monotonic()
        iid = self.launch(image)
        self.twin.wait_for(lambda: podman.container_exists(iid), 120, f"{iid} booted")
        inventory = self.work / "bare.yml"
        inventory.write_text(
            json.dumps({"all": {"children": {"golden_image": {"children": {"bench_bare": {"hosts": {iid: None}}}}}}}),
            encoding="utf-8",
        )
        converge = REPO_ROOT / "playbooks" / ".bench-converge.yml"
        converge.write_text(CONVERGE, encoding="utf-8")
        try:
            self.play(str(converge.relative_to(REPO_ROOT)), inventory=["inventories/rehearsal", str(inventory)])
        finally:
            converge.unlink(missing_ok=True)
        seconds = self.time_to_healthy(iid, started, 600)
        self.c("ec2").terminate_instances(InstanceIds=[iid])
        return seconds

    def under_load(self, playbook: str, **extra: Any) -> tuple[float, LoadResult]:
        port = self.twin.endpoints.load_balancers[NAME]["443"]
        cafile = str(self.twin.layout.state_dir / "tls-alb" / "ca.crt")
        with LoadLoop(f"https://127.0.0.1:{port}/health", interval=0.05, cafile=cafile) as load:
            seconds = self.play(playbook, **extra)
        return seconds, load.result

    def serving(self) -> None:
        def ready() -> bool:
            group = self.c("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[NAME])
            members = {i["InstanceId"] for i in group["AutoScalingGroups"][0]["Instances"]}
            tg = self.c("elbv2").describe_target_groups(Names=[f"{NAME}-app"])["TargetGroups"][0]["TargetGroupArn"]
            health = self.c("elbv2").describe_target_health(TargetGroupArn=tg)["TargetHealthDescriptions"]
            return bool(members) and members <= {
                d["Target"]["Id"] for d in health if d["TargetHealth"]["State"] == "healthy"
            }

        self.twin.wait_for(ready, 900, "the fleet serving")


def run(args: argparse.Namespace) -> int:
    subprocess.run([str(REPO_ROOT / "app" / "shop-standin" / "build.sh")], check=True, capture_output=True)
    work = Path(tempfile.mkdtemp(prefix="gearlift-bench-"))
    config = TwinConfig(prefix="glbench", subnet="10.89.81.0/24", state_dir=work / "twin", interval=1.0)
    twin = Twin(config, log=_quiet if args.quiet else None)
    twin.up()
    twin.start_loop()
    bench = Bench(twin, work)
    try:
        bench.play("site.yml", tags="preflight,keys,network,security,data,edge")
        bake = bench.play("playbooks/bake_ami.yml")
        golden = bench.promoted()
        bench.play("playbooks/fleet.yml")
        bench.serving()
        baked = bench.baked_host()
        bare = bench.bare_host()
        rebake = bench.play("playbooks/bake_ami.yml", image_bake_source_image_id=golden)
        deploy, deploy_load = bench.under_load("playbooks/deploy.yml")
        bench.serving()
        patch, patch_load = bench.under_load("playbooks/patch.yml", fleet_patch_reboot="always")
    finally:
        twin.down()
    print()
    print("== image lifecycle in the rehearsal (2 hosts, one twin; seconds) ==")
    print(f"{'':44} {'seconds':>9} {'requests':>9} {'failed':>7}")
    print(f"{'bake from Canonical image (incl. boot test)':44} {bake:9.1f}")
    print(f"{'re-bake on the golden image':44} {rebake:9.1f}")
    print(f"{'new host healthy: baked golden image':44} {baked:9.1f}")
    print(f"{'new host healthy: bare host converged at boot':44} {bare:9.1f}")
    print(f"{'  baked / bare':44} {baked / bare * 100:8.0f}%   (goal <= 20 %)")
    print(f"{'rolling deploy (instance refresh)':44} {deploy:9.1f} {deploy_load.sent:9d} {deploy_load.failed:7d}")
    print(f"{'patch run (per AZ, every host rebooted)':44} {patch:9.1f} {patch_load.sent:9d} {patch_load.failed:7d}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quiet", action="store_true", help="no twin log lines")
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
