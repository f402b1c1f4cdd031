"""gearlift.platform.elasticache_replication_group: its pure logic (module_utils/elasticache.py) and the
module against moto's ElastiCache, with the twin's fidelity patch (member clusters, ModifyReplicationGroup)."""

from __future__ import annotations

import json

import boto3
import pytest
from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.amazon.aws.plugins.module_utils.retries import RetryingBotoClientWrapper
from ansible_collections.gearlift.platform.plugins.module_utils import elasticache
from ansible_collections.gearlift.platform.plugins.modules import elasticache_replication_group as module
from moto import mock_aws

from gearlift.twin.emulator import fidelity

from .module_harness import REPO, CallLog, dummy_aws_env, role_defaults, run_main, task_args

REGION = "eu-west-1"
TOKEN = "Aa1!" * 16  # 64 characters, the shape playbooks/session_store.yml generates
KEY = "arn:aws:kms:eu-west-1:123456789012:key/k1"

# ------------------------------------------------------------------ pure logic


def spec(**overrides):
    values = dict(
        group_id="shop-production-sessions",
        description="sessions",
        engine="redis",
        engine_version="7.1",
        node_type="cache.t4g.small",
        replicas=1,
        port=6379,
        subnet_group="shop-production-cache",
        security_groups=("sg-1",),
        transit_encryption=True,
        at_rest_encryption=True,
        kms_key_arn=KEY,
        auth=True,
    )
    values.update(overrides)
    return elasticache.GroupSpec(**values)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"group_id": "Shop_Sessions"}, "lowercase letters"),
        ({"engine": "memcached"}, "not one of redis, valkey"),
        ({"node_type": "t4g.small"}, "not an ElastiCache node type"),
        ({"replicas": 6}, "outside 0..5"),
        ({"security_groups": ()}, "default group"),
        ({"transit_encryption": False}, "AUTH token needs transit_encryption"),
        ({"at_rest_encryption": False}, "kms_key_id needs at_rest_encryption"),
    ],
)
def test_spec_refuses_what_elasticache_refuses(overrides, message):
    with pytest.raises(elasticache.CacheSpecError, match=message):
        spec(**overrides)


def test_token_rules_never_echo_the_token():
    assert elasticache.token_problem(TOKEN) is None
    for bad in ("short", "a" * 129, "a" * 15 + "/", "a" * 15 + "@", "a" * 15 + '"', "a" * 15 + " "):
        problem = elasticache.token_problem(bad)
        assert problem is not None and bad not in problem


def test_create_params_are_secure_and_multi_az_with_a_replica():
    params = spec().create_params()
    assert params["TransitEncryptionEnabled"] is True and params["AtRestEncryptionEnabled"] is True
    assert params["KmsKeyId"] == KEY
    assert params["NumCacheClusters"] == 2 and params["MultiAZEnabled"] is True
    assert "AuthToken" not in params  # added by the module only, never part of what is logged or diffed
    single = spec(replicas=0).create_params()
    assert single["NumCacheClusters"] == 1 and single["AutomaticFailoverEnabled"] is False


def test_drift_modifies_what_can_change_and_names_what_cannot():
    wanted = spec()
    same = wanted.wanted_state()
    assert wanted.drift(same) == ({}, [])
    moved = {**same, "security_groups": ["sg-0"], "node_type": "cache.t4g.micro"}
    modify, fixed = wanted.drift(moved)
    assert modify == {"SecurityGroupIds": ["sg-1"], "CacheNodeType": "cache.t4g.small"}
    assert fixed == []
    clear = {**same, "transit_encryption": False, "auth": False, "nodes": 1}
    _, fixed = wanted.drift(clear)
    assert [f.split(" ")[0] for f in fixed] == ["transit_encryption", "auth", "nodes"]


def test_current_state_reads_groups_and_subnet_group_from_the_members():
    group = {
        "Engine": "redis",
        "CacheNodeType": "cache.t4g.small",
        "MemberClusters": ["a-001", "a-002"],
        "MultiAZ": "enabled",
        "AutomaticFailover": "enabled",
        "NodeGroups": [{"PrimaryEndpoint": {"Address": "master.a.x.cache.amazonaws.com", "Port": 6379}}],
        "TransitEncryptionEnabled": True,
        "AtRestEncryptionEnabled": True,
        "KmsKeyId": KEY,
        "AuthTokenEnabled": True,
        "Description": "sessions",
    }
    members = [
        {"SecurityGroups": [{"SecurityGroupId": "sg-1"}], "CacheSubnetGroupName": "shop-production-cache"},
        {"SecurityGroups": [{"SecurityGroupId": "sg-1"}], "CacheSubnetGroupName": "shop-production-cache"},
    ]
    assert elasticache.current_state(group, members) == spec().wanted_state()
    assert elasticache.primary_endpoint(group) == ("master.a.x.cache.amazonaws.com", 6379)
    assert elasticache.primary_endpoint({}) == ("", 0)


# ------------------------------------------------------------------ the module against moto


@pytest.fixture
def account(monkeypatch):
    dummy_aws_env(monkeypatch, REGION)
    fidelity._elasticache_replication_groups()
    with mock_aws():
        log = CallLog()
        clients = {name: log.attach(boto3.client(name, region_name=REGION)) for name in ("elasticache", "kms")}

        def make(self, service, retry_decorator=None, **kwargs):
            client = clients[service]
            return RetryingBotoClientWrapper(client, retry_decorator) if retry_decorator else client

        monkeypatch.setattr(AnsibleAWSModule, "client", make)
        monkeypatch.setattr(module, "_POLL_SECONDS", 0)
        ec2 = boto3.client("ec2", region_name=REGION)
        vpc = ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
        subnets = [
            ec2.create_subnet(VpcId=vpc, CidrBlock=cidr, AvailabilityZone=az)["Subnet"]["SubnetId"]
            for cidr, az in (("10.20.192.0/20", "eu-west-1a"), ("10.20.208.0/20", "eu-west-1b"))
        ]
        sgs = [
            ec2.create_security_group(GroupName=name, Description=name, VpcId=vpc)["GroupId"]
            for name in ("shop-cache", "shop-other")
        ]
        boto3.client("elasticache", region_name=REGION).create_cache_subnet_group(
            CacheSubnetGroupName="shop-cache", CacheSubnetGroupDescription="db subnets", SubnetIds=subnets
        )
        kms = boto3.client("kms", region_name=REGION)
        key = kms.create_key()["KeyMetadata"]
        kms.create_alias(AliasName="alias/shop-data", TargetKeyId=key["KeyId"])
        yield {"log": log, "sgs": sgs, "key_arn": key["Arn"]}


def args(account, **overrides):
    values = {
        "replication_group_id": "shop-rehearsal-sessions",
        "description": "gearlift shop-rehearsal: the shop's sessions",
        "subnet_group_name": "shop-cache",
        "security_group_ids": [account["sgs"][0]],
        "kms_key_id": "alias/shop-data",
        "auth_token": TOKEN,
        "tags": {"gearlift:project": "shop"},
        "region": REGION,
    }
    values.update(overrides)
    return values


def test_module_creates_the_group_then_changes_nothing(account):
    first = run_main(module.main, args(account), diff=True)
    assert not first.failed, first.data
    assert first["changed"] is True
    assert first["primary_endpoint"].startswith("master.shop-rehearsal-sessions.")
    assert first["port"] == 6379
    client = boto3.client("elasticache", region_name=REGION)
    [group] = client.describe_replication_groups(ReplicationGroupId="shop-rehearsal-sessions")["ReplicationGroups"]
    assert group["TransitEncryptionEnabled"] and group["AtRestEncryptionEnabled"] and group["AuthTokenEnabled"]
    assert group["KmsKeyId"] == account["key_arn"]
    assert group["MultiAZ"] == "enabled" and len(group["MemberClusters"]) == 2
    [create] = account["log"].params("CreateReplicationGroup")
    assert create["AuthToken"] == TOKEN
    assert TOKEN not in json.dumps(first.data)  # neither in the result nor in the diff

    account["log"].calls.clear()
    second = run_main(module.main, args(account), diff=True)
    assert not second.failed, second.data
    assert second["changed"] is False
    assert second["diff"]["before"] == second["diff"]["after"]
    writes = [n for n in account["log"].names if not n.startswith(("Describe", "List"))]
    assert writes == []


def test_check_mode_reads_only(account):
    result = run_main(module.main, args(account), check_mode=True, diff=True)
    assert not result.failed, result.data
    assert result["changed"] is True and result["primary_endpoint"] == ""
    assert result["diff"]["after"]["transit_encryption"] is True
    assert all(n.startswith(("Describe", "List")) for n in account["log"].names)
    assert boto3.client("elasticache", region_name=REGION).describe_replication_groups()["ReplicationGroups"] == []


def test_module_modifies_groups_and_tags_and_refuses_fixed_settings(account):
    assert not run_main(module.main, args(account)).failed
    moved = run_main(module.main, args(account, security_group_ids=[account["sgs"][1]], tags={}))
    assert not moved.failed, moved.data
    assert moved["changed"] is True
    client = boto3.client("elasticache", region_name=REGION)
    members = client.describe_cache_clusters()["CacheClusters"]
    assert {g["SecurityGroupId"] for m in members for g in m["SecurityGroups"]} == {account["sgs"][1]}
    assert client.list_tags_for_resource(ResourceName=moved["arn"])["TagList"] == []

    account["log"].calls.clear()
    refused = run_main(module.main, args(account, transit_encryption=False, auth_token=None, allow_no_auth=True))
    assert refused.failed
    assert "cannot change these in place: transit_encryption is True, wanted False" in refused["msg"]
    assert "Modify" not in " ".join(account["log"].names)


def test_bad_input_is_refused_before_any_call(account):
    short = run_main(module.main, args(account, auth_token="short"))
    assert short.failed and "16-128 printable" in short["msg"] and "short" not in short["msg"].split(":")[-1]
    no_auth = run_main(module.main, args(account, auth_token=None))
    assert no_auth.failed and "allow_no_auth" in no_auth["msg"]
    no_tls = run_main(module.main, args(account, transit_encryption=False))
    assert no_tls.failed and "needs transit_encryption" in no_tls["msg"]
    assert account["log"].names == []


def test_absent_deletes_and_then_changes_nothing(account):
    assert not run_main(module.main, args(account)).failed
    gone = run_main(
        module.main, {"replication_group_id": "shop-rehearsal-sessions", "state": "absent", "region": REGION}
    )
    assert not gone.failed and gone["changed"] is True
    again = run_main(
        module.main, {"replication_group_id": "shop-rehearsal-sessions", "state": "absent", "region": REGION}
    )
    assert not again.failed and again["changed"] is False


def test_the_session_store_playbook_task_creates_the_group_it_promises(account):
    """playbooks/session_store.yml's task, templated with the guards' defaults and redis, against moto."""
    variables = {
        **role_defaults("guards"),
        "gearlift_session_store": "redis",
        "gearlift_project": "shop",
        "gearlift_environment": "rehearsal",
        "gearlift_name": "shop-rehearsal",
        "gearlift_region": REGION,
        "gearlift_tags": {"gearlift:project": "shop"},
        "gearlift_key_arns": {"data": account["key_arn"]},
        "naming_session_store": "shop-rehearsal-sessions",
        "naming_cache_subnet_group": "shop-cache",
        "session_cache_sg": {"group_id": account["sgs"][0]},
        "session_secret": {"auth_token": TOKEN},
        "ansible_check_mode": False,
    }
    name, task = task_args(REPO / "playbooks" / "session_store.yml", "PCI 4.2.1 | the session store", variables)
    assert name == "gearlift.platform.elasticache_replication_group"
    assert task["auth_token"] == TOKEN and task["allow_no_auth"] is False
    result = run_main(module.main, task)
    assert not result.failed, result.data
    [group] = boto3.client("elasticache", region_name=REGION).describe_replication_groups()["ReplicationGroups"]
    assert group["TransitEncryptionEnabled"] and group["AuthTokenEnabled"] and group["AtRestEncryptionEnabled"]
    assert group["MultiAZ"] == "enabled" and len(group["MemberClusters"]) == 2
    assert group["KmsKeyId"] == account["key_arn"]
