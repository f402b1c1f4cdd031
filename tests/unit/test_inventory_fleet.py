"""End-to-end tests of the gearlift.platform.fleet inventory plugin.

A moto server plays the AWS account; the real ``ansible-inventory`` runs against it in a
subprocess whose only hint of the emulator is the standard ``AWS_ENDPOINT_URL``.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from moto.server import ThreadedMotoServer

REPO = Path(__file__).resolve().parents[2]
ANSIBLE_INVENTORY = REPO / ".venv" / "bin" / "ansible-inventory"
REGION = "eu-west-1"
OTHER_REGION = "us-east-1"
CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def moto_url():
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def _reset(url: str) -> None:
    request = urllib.request.Request(f"{url}/moto-api/reset", method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200


@pytest.fixture(autouse=True)
def clean_moto(moto_url):
    _reset(moto_url)
    yield
    _reset(moto_url)


def _client(url: str, service: str, region: str = REGION) -> Any:
    return boto3.client(service, region_name=region, endpoint_url=url, **CREDENTIALS)


@dataclass
class Fleet:
    name: str
    region: str
    instance_ids: list[str]
    template_id: str
    image_id: str


def make_fleet(url: str, name: str, env: str, role: str, size: int, region: str = REGION, az: str = "a") -> Fleet:
    """A VPC with a subnet in AZ ``<region><az>``, a launch template and an ASG of ``size``.

    (moto starts all of a group's instances in its first subnet, hence one AZ per fleet.)
    """
    ec2 = _client(url, "ec2", region)
    image_id = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    vpc_id = ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
    subnet_id = ec2.create_subnet(VpcId=vpc_id, CidrBlock="10.20.1.0/24", AvailabilityZone=f"{region}{az}")["Subnet"][
        "SubnetId"
    ]
    template_id = ec2.create_launch_template(
        LaunchTemplateName=f"{name}-lt",
        LaunchTemplateData={"ImageId": image_id, "InstanceType": "t3.micro"},
    )["LaunchTemplate"]["LaunchTemplateId"]
    autoscaling = _client(url, "autoscaling", region)
    autoscaling.create_auto_scaling_group(
        AutoScalingGroupName=name,
        LaunchTemplate={"LaunchTemplateId": template_id, "Version": "1"},
        MinSize=size,
        MaxSize=size,
        DesiredCapacity=size,
        VPCZoneIdentifier=subnet_id,
        Tags=[
            {"Key": "gearlift:environment", "Value": env, "PropagateAtLaunch": True},
            {"Key": "gearlift:role", "Value": role, "PropagateAtLaunch": True},
        ],
    )
    group = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[name])
    ids = sorted(i["InstanceId"] for i in group["AutoScalingGroups"][0]["Instances"])
    assert len(ids) == size
    return Fleet(name, region, ids, template_id, image_id)


def describe(url: str, instance_id: str, region: str = REGION) -> dict[str, Any]:
    reservations = _client(url, "ec2", region).describe_instances(InstanceIds=[instance_id])
    return reservations["Reservations"][0]["Instances"][0]


def _unwrap_unsafe(obj: dict[str, Any]) -> Any:
    return obj["__ansible_unsafe"] if set(obj) == {"__ansible_unsafe"} else obj


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str

    @property
    def raw(self) -> dict[str, Any]:
        assert self.returncode == 0, self.stderr
        return json.loads(self.stdout)

    @property
    def inventory(self) -> dict[str, Any]:
        """The inventory with ansible-inventory's ``{"__ansible_unsafe": value}`` unwrapped."""
        assert self.returncode == 0, self.stderr
        return json.loads(self.stdout, object_hook=_unwrap_unsafe)

    @property
    def hostvars(self) -> dict[str, dict[str, Any]]:
        return self.inventory.get("_meta", {}).get("hostvars", {})

    def hosts(self) -> set[str]:
        return set(self.hostvars)

    def group(self, name: str) -> set[str]:
        return set(self.inventory.get(name, {}).get("hosts", []))


@pytest.fixture
def run_inventory(tmp_path, moto_url):
    def run(config: dict[str, Any], *extra_args: str) -> Result:
        source = tmp_path / "x.fleet.aws.yml"
        source.write_text(yaml.safe_dump({"plugin": "gearlift.platform.fleet", **config}))
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "ANSIBLE_"))}
        env.update(
            AWS_ENDPOINT_URL=moto_url,
            AWS_ACCESS_KEY_ID="testing",
            AWS_SECRET_ACCESS_KEY="testing",
            AWS_CONFIG_FILE=str(tmp_path / "no-aws-config"),
            AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "no-aws-credentials"),
            ANSIBLE_INVENTORY_UNPARSED_FAILED="true",
            ANSIBLE_LOCAL_TEMP=str(tmp_path / "ansible-tmp"),
        )
        proc = subprocess.run(
            [str(ANSIBLE_INVENTORY), "-i", str(source), "--list", *extra_args],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
        )
        return Result(proc.returncode, proc.stdout, proc.stderr)

    return run


SSM = {"ssm_bucket": "gearlift-ssm-transfer"}


def test_lists_healthy_in_service_hosts_of_selected_asgs(moto_url, run_inventory):
    web = make_fleet(moto_url, "gearlift-production-web", "production", "web", 3, az="a")
    worker = make_fleet(moto_url, "gearlift-production-worker", "production", "worker", 1, az="b")
    staging = make_fleet(moto_url, "gearlift-staging-web", "staging", "web", 2, az="a")
    production = set(web.instance_ids) | set(worker.instance_ids)

    result = run_inventory({"regions": [REGION], "asg_tags": {"gearlift:environment": "production"}, **SSM})

    assert result.hosts() == production
    assert result.hosts().isdisjoint(staging.instance_ids)
    assert result.group("asg_gearlift_production_web") == set(web.instance_ids)
    assert result.group("asg_gearlift_production_worker") == set(worker.instance_ids)
    assert "asg_gearlift_staging_web" not in result.inventory
    assert result.group("env_production") == production
    assert "env_staging" not in result.inventory
    assert result.group("role_web") == set(web.instance_ids)
    assert result.group("role_worker") == set(worker.instance_ids)
    assert result.group("region_eu_west_1") == production
    assert result.group("az_eu_west_1a") == set(web.instance_ids)
    assert result.group("az_eu_west_1b") == set(worker.instance_ids)

    for instance_id in web.instance_ids:
        instance = describe(moto_url, instance_id)
        az = instance["Placement"]["AvailabilityZone"]
        assert az == "eu-west-1a"
        hostvars = result.hostvars[instance_id]
        assert hostvars["ec2_instance_id"] == instance_id
        assert hostvars["ec2_private_ip"] == instance["PrivateIpAddress"]
        assert hostvars["ec2_availability_zone"] == az
        assert hostvars["ec2_region"] == REGION
        assert hostvars["ec2_image_id"] == web.image_id
        assert hostvars["ec2_launch_template_id"] == web.template_id
        assert hostvars["ec2_launch_template_version"] == "1"
        assert hostvars["ec2_tags"]["gearlift:role"] == "web"
        assert hostvars["ec2_tags"]["gearlift:environment"] == "production"
        assert hostvars["asg_name"] == web.name
        assert hostvars["asg_lifecycle_state"] == "InService"
        assert hostvars["asg_health_status"] == "Healthy"
        # SSM is the default connection.
        assert hostvars["ansible_connection"] == "community.aws.aws_ssm"
        assert hostvars["ansible_aws_ssm_instance_id"] == instance_id
        assert hostvars["ansible_aws_ssm_region"] == REGION
        assert hostvars["ansible_aws_ssm_bucket_name"] == "gearlift-ssm-transfer"
        assert "ansible_host" not in hostvars
        assert "ansible_aws_ssm_document" not in hostvars
    assert result.hostvars[worker.instance_ids[0]]["ec2_availability_zone"] == "eu-west-1b"
    # Values read from AWS reach ansible-inventory marked unsafe (never templated).
    raw_tags = result.raw["_meta"]["hostvars"][web.instance_ids[0]]["ec2_tags"]
    assert raw_tags["gearlift:role"] == {"__ansible_unsafe": "web"}


def test_selection_by_names_and_by_names_plus_tags(moto_url, run_inventory):
    web = make_fleet(moto_url, "gearlift-production-web", "production", "web", 2)
    worker = make_fleet(moto_url, "gearlift-staging-worker", "staging", "worker", 1)
    make_fleet(moto_url, "unrelated", "production", "batch", 1)

    both = run_inventory({"regions": [REGION], "auto_scaling_groups": [web.name, worker.name], **SSM})
    assert both.hosts() == set(web.instance_ids) | set(worker.instance_ids)
    assert both.group("env_production") == set(web.instance_ids)
    assert both.group("env_staging") == set(worker.instance_ids)
    assert both.group("role_worker") == set(worker.instance_ids)
    assert both.group("asg_gearlift_staging_worker") == set(worker.instance_ids)

    # Names and tags together: a group must match both.
    narrowed = run_inventory(
        {
            "regions": [REGION],
            "auto_scaling_groups": [web.name, worker.name],
            "asg_tags": {"gearlift:role": ["worker", "batch"]},
            **SSM,
        }
    )
    assert narrowed.hosts() == set(worker.instance_ids)

    missing = run_inventory({"regions": [REGION], "auto_scaling_groups": ["gearlift-nope"], **SSM})
    assert missing.hosts() == set()
    assert "gearlift-nope" in missing.stderr


def test_ssm_passthrough_options(moto_url, run_inventory):
    web = make_fleet(moto_url, "web", "production", "web", 1)
    result = run_inventory(
        {
            "regions": [REGION],
            "auto_scaling_groups": ["web"],
            "ssm_document": "gearlift-session",
            "ssm_plugin": "/opt/session-manager-plugin",
            **SSM,
        }
    )
    hostvars = result.hostvars[web.instance_ids[0]]
    assert hostvars["ansible_aws_ssm_document"] == "gearlift-session"
    assert hostvars["ansible_aws_ssm_plugin"] == "/opt/session-manager-plugin"


def test_podman_connection_for_the_rehearsal(moto_url, run_inventory):
    web = make_fleet(moto_url, "web", "rehearsal", "web", 2)
    # No ssm_bucket needed when the connection is not SSM.
    result = run_inventory(
        {
            "regions": [REGION],
            "asg_tags": {"gearlift:environment": "rehearsal"},
            "connection": "podman",
        }
    )
    assert result.hosts() == set(web.instance_ids)
    for instance_id in web.instance_ids:
        hostvars = result.hostvars[instance_id]
        assert hostvars["ansible_connection"] == "gearlift.platform.podman"
        assert hostvars["ansible_host"] == instance_id
        assert hostvars["ansible_python_interpreter"] == "/usr/bin/python3"
        assert not any(k.startswith("ansible_aws_ssm") for k in hostvars)


def test_ssh_connection_uses_private_ip(moto_url, run_inventory):
    web = make_fleet(moto_url, "web", "production", "web", 2)
    result = run_inventory({"regions": [REGION], "auto_scaling_groups": ["web"], "connection": "ssh"})
    for instance_id in web.instance_ids:
        hostvars = result.hostvars[instance_id]
        assert hostvars["ansible_host"] == describe(moto_url, instance_id)["PrivateIpAddress"]
        assert "ansible_connection" not in hostvars


def test_unhealthy_instance_excluded_unless_include_unhealthy(moto_url, run_inventory):
    web = make_fleet(moto_url, "web", "production", "web", 3)
    sick = web.instance_ids[0]
    _client(moto_url, "autoscaling").set_instance_health(InstanceId=sick, HealthStatus="Unhealthy")
    config = {"regions": [REGION], "auto_scaling_groups": ["web"], **SSM}

    default = run_inventory(config)
    assert default.hosts() == set(web.instance_ids) - {sick}

    widened = run_inventory({**config, "include_unhealthy": True})
    assert widened.hosts() == set(web.instance_ids)
    assert widened.hostvars[sick]["asg_health_status"] == "Unhealthy"


def test_lifecycle_states_and_ec2_state(moto_url, run_inventory):
    web = make_fleet(moto_url, "web", "production", "web", 4)
    standby, stopped = web.instance_ids[0], web.instance_ids[1]
    _client(moto_url, "autoscaling").enter_standby(
        AutoScalingGroupName="web", InstanceIds=[standby], ShouldDecrementDesiredCapacity=True
    )
    _client(moto_url, "ec2").stop_instances(InstanceIds=[stopped])
    config = {"regions": [REGION], "auto_scaling_groups": ["web"], **SSM}

    default = run_inventory(config)
    assert default.hosts() == set(web.instance_ids) - {standby, stopped}

    widened = run_inventory({**config, "include_lifecycle_states": ["InService", "Standby"]})
    # Standby is now accepted; a stopped instance never is.
    assert widened.hosts() == set(web.instance_ids) - {stopped}
    assert widened.hostvars[standby]["asg_lifecycle_state"] == "Standby"


def test_only_configured_regions_are_queried(moto_url, run_inventory):
    home = make_fleet(moto_url, "web", "production", "web", 2, region=REGION)
    abroad = make_fleet(moto_url, "web", "production", "web", 2, region=OTHER_REGION)
    tags = {"gearlift:environment": "production"}

    only_home = run_inventory({"regions": [REGION], "asg_tags": tags, **SSM})
    assert only_home.hosts() == set(home.instance_ids)

    # Control: the other region's fleet is there and found once it is configured.
    both = run_inventory({"regions": [REGION, OTHER_REGION], "asg_tags": tags, **SSM})
    assert both.hosts() == set(home.instance_ids) | set(abroad.instance_ids)
    assert both.group("region_us_east_1") == set(abroad.instance_ids)
    for instance_id in abroad.instance_ids:
        assert both.hostvars[instance_id]["ansible_aws_ssm_region"] == OTHER_REGION


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"asg_tags": {"gearlift:environment": "production"}, **SSM}, "Required config 'regions'"),
        (
            {"regions": [], "asg_tags": {"gearlift:environment": "production"}, **SSM},
            "option 'regions' is required",
        ),
        (
            {"regions": [REGION], "asg_tags": {"gearlift:environment": "production"}},
            "option 'ssm_bucket' is required when connection is 'ssm'",
        ),
        ({"regions": [REGION], **SSM}, "set 'auto_scaling_groups' and/or 'asg_tags'"),
    ],
    ids=["regions-missing", "regions-empty", "ssm-without-bucket", "no-selection"],
)
def test_invalid_configuration_fails_clearly(moto_url, run_inventory, config, message):
    make_fleet(moto_url, "web", "production", "web", 1)
    result = run_inventory(config)
    assert result.returncode != 0
    assert message in " ".join(result.stderr.split())


def test_constructed_options_and_strict(moto_url, run_inventory):
    web = make_fleet(moto_url, "web", "production", "web", 2)
    base = {
        "regions": [REGION],
        "auto_scaling_groups": ["web"],
        "connection": "ssh",
        "compose": {"ansible_user": "'ec2-user'", "tier": "ec2_tags['gearlift:tier']"},
        "keyed_groups": [{"key": "ec2_tags['gearlift:role']", "prefix": "tier"}],
        "groups": {"in_zone_a": "ec2_availability_zone.endswith('a')"},
    }
    lenient = run_inventory(base)
    assert lenient.group("tier_web") == set(web.instance_ids)
    zone_a = {i for i in web.instance_ids if lenient.hostvars[i]["ec2_availability_zone"][-1] == "a"}
    assert lenient.group("in_zone_a") == zone_a
    for instance_id in web.instance_ids:
        assert lenient.hostvars[instance_id]["ansible_user"] == "ec2-user"
        # The undefined tag is skipped when strict is off.
        assert "tier" not in lenient.hostvars[instance_id]

    strict = run_inventory({**base, "strict": True})
    assert strict.returncode != 0
    assert "Could not set tier for host" in strict.stderr


def test_cache_serves_second_call_without_the_api(moto_url, run_inventory, tmp_path):
    web = make_fleet(moto_url, "web", "production", "web", 2)
    config = {
        "regions": [REGION],
        "auto_scaling_groups": ["web"],
        "cache": True,
        "cache_plugin": "ansible.builtin.jsonfile",
        "cache_connection": str(tmp_path / "inventory-cache"),
        "cache_timeout": 3600,
        **SSM,
    }
    first = run_inventory(config)
    assert first.hosts() == set(web.instance_ids)
    assert any((tmp_path / "inventory-cache").iterdir())

    _reset(moto_url)  # the account is now empty

    cached = run_inventory(config)
    assert cached.hosts() == set(web.instance_ids)
    assert cached.hostvars == first.hostvars
    # ...including the "unsafe" marking of values that came from AWS.
    assert cached.raw["_meta"]["hostvars"] == first.raw["_meta"]["hostvars"]
    assert cached.group("env_production") == set(web.instance_ids)

    # A different selection is a different cache entry, not a stale hit.
    assert run_inventory({**config, "include_unhealthy": True}).hosts() == set()
    # Controls: without the cache, or with the cache flushed, the empty account shows.
    assert run_inventory({**config, "cache": False}).hosts() == set()
    assert run_inventory(config, "--flush-cache").hosts() == set()
    assert run_inventory(config).hosts() == set()


# --- in-process: batching and retry of the API helpers (no server needed) ---------------


@pytest.fixture
def fleet_module(monkeypatch):
    monkeypatch.syspath_prepend(str(REPO / ".collections"))
    from ansible_collections.amazon.aws.plugins.module_utils import cloud
    from ansible_collections.gearlift.platform.plugins.inventory import fleet

    sleeps: list[float] = []
    monkeypatch.setattr(cloud.time, "sleep", sleeps.append)
    return fleet, sleeps


class _ThrottlingOnceEC2:
    """Answers describe_instances pages; the very first call is throttled."""

    def __init__(self) -> None:
        self.calls: list[list[dict[str, Any]]] = []
        self.throttled = False

    def get_paginator(self, operation: str) -> _ThrottlingOnceEC2:
        assert operation == "describe_instances"
        return self

    def paginate(self, Filters: list[dict[str, Any]]) -> _ThrottlingOnceEC2:
        self.calls.append(Filters)
        return self

    def build_full_result(self) -> dict[str, Any]:
        from botocore.exceptions import ClientError

        if not self.throttled:
            self.throttled = True
            raise ClientError({"Error": {"Code": "Throttling", "Message": "Rate exceeded"}}, "DescribeInstances")
        filters = {f["Name"]: f["Values"] for f in self.calls[-1]}
        return {
            "Reservations": [
                {"Instances": [{"InstanceId": i, "State": {"Name": "running"}} for i in filters["instance-id"]]}
            ]
        }


def test_instances_are_described_in_batches_with_retry_on_throttling(fleet_module):
    fleet, sleeps = fleet_module
    stub = _ThrottlingOnceEC2()
    plugin = fleet.InventoryModule()
    plugin.client = lambda service, **kwargs: stub
    ids = [f"i-{n:017x}" for n in range(250)]

    found = plugin._running_instances(REGION, ids)

    assert set(found) == set(ids)
    assert len(sleeps) == 1  # one throttled call, retried after a back-off
    id_batches = [next(f["Values"] for f in call if f["Name"] == "instance-id") for call in stub.calls]
    assert len(id_batches) == 4  # 1 throttled + 3 batches
    assert all(len(batch) <= 100 for batch in id_batches)
    assert sorted(i for batch in id_batches[1:] for i in batch) == sorted(ids)
    assert all({"Name": "instance-state-name", "Values": ["running"]} in call for call in stub.calls)
