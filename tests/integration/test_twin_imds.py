"""An EC2 host of the twin calls AWS with its instance role's credentials from IMDS, as on EC2.

The role carries the inline policy playbooks/security.yml ships (its template rendered with
this twin's names); the instance is launched from a launch template that requires IMDSv2.
From inside the host: IMDSv1 is refused, IMDSv2 serves the role's credentials, and the AWS
CLI (the same botocore credential chain as the shop's boot-time secret fetcher) reads the
host's own secret and is denied another secret, another log group's retention and
terminating an instance. The host has no other credentials.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import jinja2
import pytest
import yaml

from gearlift.twin import images, podman
from gearlift.twin.dataplane.ec2 import LOCAL_IMAGE_TAG
from gearlift.twin.twin import Twin

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
NAME = "shop"
PREFIX = "/gearlift/shop/rehearsal"

IMDS_PROBE = r"""
import json, sys, urllib.error, urllib.request
base = "http://169.254.169.254/latest"
def call(path, method="GET", headers=None):
    req = urllib.request.Request(base + path, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, ""
out = {"v1": call("/meta-data/instance-id")[0]}
status, token = call("/api/token", "PUT", {"X-aws-ec2-metadata-token-ttl-seconds": "60"})
h = {"X-aws-ec2-metadata-token": token}
out["token"] = status
out["instance_id"] = call("/meta-data/instance-id", headers=h)[1]
out["region"] = call("/meta-data/placement/region", headers=h)[1]
out["role"] = call("/meta-data/iam/security-credentials/", headers=h)[1]
creds = json.loads(call("/meta-data/iam/security-credentials/" + out["role"], headers=h)[1] or "{}")
out["expiration"] = creds.get("Expiration", "")
out["has_keys"] = all(creds.get(k) for k in ("AccessKeyId", "SecretAccessKey", "Token"))
print(json.dumps(out))
"""


def _policy(twin: Twin, account: str, key_arn: str) -> str:
    """playbooks/templates/app-role-policy.json.j2, rendered as security.yml renders it."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(REPO / "playbooks" / "templates"), undefined=jinja2.StrictUndefined
    )
    env.filters["to_json"] = json.dumps
    text = env.get_template("app-role-policy.json.j2").render(
        security_partition="aws",
        security_account=account,
        gearlift_region=twin.config.region,
        gearlift_name=NAME,
        gearlift_project=NAME,
        gearlift_environment="rehearsal",
        gearlift_key_arns={"secrets": key_arn},
        gearlift_golden_ami_parameter=f"{PREFIX}/golden-ami",
        gearlift_log_group_prefix=PREFIX,
        naming_host_log_groups=["app", "apache"],
        naming_agent_metrics_namespace="Gearlift/shop",
        **yaml.safe_load((REPO / "playbooks" / "vars" / "aws_services.yml").read_text(encoding="utf-8")),
    )
    json.loads(text)
    return text


@pytest.fixture(scope="module")
def host(twin: Twin) -> dict[str, Any]:
    local = images.ensure_apphost_image()
    account = twin.clients("sts").get_caller_identity()["Account"]
    key = twin.clients("kms").create_key(Description="secrets")["KeyMetadata"]["Arn"]
    sm = twin.clients("secretsmanager")
    own = sm.create_secret(
        Name=f"gearlift/{NAME}/app-db",
        KmsKeyId=key,
        SecretString=json.dumps({"username": "app", "password": "pw", "host": "db", "dbname": "shop"}),
    )["ARN"]
    other = sm.create_secret(Name="rds!db-twin", SecretString=json.dumps({"username": "admin"}))["ARN"]
    logs = twin.clients("logs")
    logs.create_log_group(logGroupName=f"{PREFIX}/app")
    logs.create_log_group(logGroupName="/other/foreign")
    iam = twin.clients("iam")
    trust = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}],
    }
    iam.create_role(RoleName=f"{NAME}-app", AssumeRolePolicyDocument=json.dumps(trust))
    iam.put_role_policy(
        RoleName=f"{NAME}-app", PolicyName="least-privilege", PolicyDocument=_policy(twin, account, key)
    )
    iam.create_instance_profile(InstanceProfileName=f"{NAME}-app")
    iam.add_role_to_instance_profile(InstanceProfileName=f"{NAME}-app", RoleName=f"{NAME}-app")
    ec2 = twin.clients("ec2")
    ami = ec2.register_image(Name="imds-apphost", RootDeviceName="/dev/sda1", Architecture="x86_64")["ImageId"]
    ec2.create_tags(Resources=[ami], Tags=[{"Key": LOCAL_IMAGE_TAG, "Value": local}])
    ec2.create_launch_template(
        LaunchTemplateName="imds-app",
        LaunchTemplateData={
            "ImageId": ami,
            "InstanceType": "t3.micro",
            "IamInstanceProfile": {"Name": f"{NAME}-app"},
            "MetadataOptions": {"HttpTokens": "required", "HttpPutResponseHopLimit": 1, "HttpEndpoint": "enabled"},
        },
    )
    iid = ec2.run_instances(LaunchTemplate={"LaunchTemplateName": "imds-app"}, MinCount=1, MaxCount=1)["Instances"][0][
        "InstanceId"
    ]

    def running() -> bool:
        return any(
            c.labels.get("gearlift.instance-id") == iid and c.state == "running"
            for c in podman.list_containers(twin.layout.label)
        )

    twin.wait_for(running, 120, f"the container of {iid}")
    twin.wait_for(lambda: _imds(iid).get("has_keys") is True, 60, f"IMDS serving {iid} its role's credentials")
    return {"iid": iid, "own": own, "other": other, "endpoint": twin.endpoints.moto_internal}


def _imds(iid: str) -> dict[str, Any]:
    probe = podman.exec_(iid, "python3", "-c", IMDS_PROBE, check=False, timeout=60)
    if probe.returncode != 0:
        return {}
    answer: dict[str, Any] = json.loads(probe.stdout)
    return answer


def _aws(iid: str, endpoint: str, *args: str) -> subprocess.CompletedProcess[str]:
    # bookworm's AWS CLI predates endpoint_url in the config file: the endpoint on the command line,
    # as the java_app role's --endpoint-url; the region from /root/.aws/config; no credentials anywhere.
    return podman.exec_(iid, "aws", "--endpoint-url", endpoint, *args, check=False, timeout=120)


def test_imds_v2_serves_the_instance_and_its_role_and_v1_is_refused(twin: Twin, host: dict[str, Any]) -> None:
    seen = _imds(host["iid"])
    assert seen["v1"] == 401, "HttpTokens required: an IMDSv1 GET must be refused"
    assert seen["token"] == 200
    assert seen["instance_id"] == host["iid"]
    assert seen["region"] == twin.config.region
    assert seen["role"] == f"{NAME}-app"
    assert seen["expiration"].endswith("Z") and seen["has_keys"]
    assert podman.exec_(host["iid"], "test", "!", "-e", "/root/.aws/credentials", check=False).returncode == 0


def test_the_host_reads_its_own_secret_with_its_role(host: dict[str, Any]) -> None:
    whoami = _aws(host["iid"], host["endpoint"], "sts", "get-caller-identity", "--query", "Arn", "--output", "text")
    assert whoami.returncode == 0, whoami.stderr
    assert whoami.stdout.strip().endswith(f":assumed-role/{NAME}-app/{host['iid']}")
    read = _aws(
        host["iid"],
        host["endpoint"],
        "secretsmanager",
        "get-secret-value",
        "--secret-id",
        f"gearlift/{NAME}/app-db",
        "--query",
        "ARN",
    )
    assert read.returncode == 0, read.stderr
    assert host["own"] in read.stdout


def test_the_host_is_denied_what_its_role_lacks(host: dict[str, Any]) -> None:
    other = _aws(host["iid"], host["endpoint"], "secretsmanager", "get-secret-value", "--secret-id", host["other"])
    assert other.returncode != 0 and "AccessDeniedException" in other.stderr, other.stderr
    retention = _aws(
        host["iid"],
        host["endpoint"],
        "logs",
        "put-retention-policy",
        "--log-group-name",
        "/other/foreign",
        "--retention-in-days",
        "1",
    )
    assert retention.returncode != 0 and "AccessDeniedException" in retention.stderr, retention.stderr
    terminate = _aws(host["iid"], host["endpoint"], "ec2", "terminate-instances", "--instance-ids", host["iid"])
    assert terminate.returncode != 0 and "UnauthorizedOperation" in terminate.stderr, terminate.stderr


def test_the_controller_keeps_its_own_credentials(twin: Twin, host: dict[str, Any]) -> None:
    assert twin.clients("secretsmanager").get_secret_value(SecretId=host["other"])["ARN"] == host["other"]
