"""gearlift.platform.vpc_endpoint_route_tables: its pure logic (module_utils/vpc_endpoints.py), the module
against moto in-process (idempotence, check mode, diff, refusals before any change), and playbooks/network.yml's
S3 gateway endpoint tasks run in order against moto: a VPC made before the bake subnet existed keeps its one
endpoint and gains the bake route table; a new VPC gets one endpoint on every table; a second run changes
nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import boto3
import pytest
from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.amazon.aws.plugins.module_utils.retries import RetryingBotoClientWrapper
from ansible_collections.amazon.aws.plugins.modules import ec2_vpc_endpoint, ec2_vpc_endpoint_info
from ansible_collections.gearlift.platform.plugins.module_utils import vpc_endpoints as ve
from ansible_collections.gearlift.platform.plugins.modules import vpc_endpoint_route_tables
from moto import mock_aws

from .module_harness import REPO, CallLog, Result, condition, dummy_aws_env, find_task, registered, run_main, task_args

REGION = "us-east-1"
S3 = f"com.amazonaws.{REGION}.s3"
NAME = "shop-rehearsal"
NETWORK = REPO / "playbooks" / "network.yml"
TAGS = {"gearlift:project": "shop", "gearlift:environment": "rehearsal"}
A1, A2, BAKE, OTHER = "rtb-0a1a1a1a1a1a1a1a1", "rtb-0a2a2a2a2a2a2a2a2", "rtb-0bbbbbbbbbbbbbbbb", "rtb-0cccccccc"


# ------------------------------------------------------------------ pure logic


def test_route_table_ids_are_checked_and_named_once_in_order() -> None:
    assert ve.route_table_ids([A2, A1, A2, f" {BAKE} "]) == [A2, A1, BAKE]
    assert ve.route_table_ids([]) == []
    for bad in ("vpce-0123456789abcdef0", "rtb-XYZ", "rtb-", "", None):
        with pytest.raises(ve.EndpointError, match="not a route table id"):
            ve.route_table_ids([A1, bad])


def test_the_plan_adds_what_is_missing_and_leaves_other_tables_unless_purged() -> None:
    legacy = ve.plan([A1, A2], [A1, A2, BAKE], purge=False)
    assert (legacy.add, legacy.remove, legacy.changed) == ((BAKE,), (), True)
    assert legacy.after == tuple(sorted([A1, A2, BAKE]))
    same = ve.plan([A2, A1, BAKE], [A1, A2, BAKE], purge=True)
    assert not same.changed and same.after == tuple(sorted([A1, A2, BAKE]))
    kept = ve.plan([A1, OTHER], [A1, BAKE], purge=False)  # someone else's table stays
    assert (kept.add, kept.remove) == ((BAKE,), ()) and OTHER in kept.after
    purged = ve.plan([A1, OTHER], [A1, BAKE], purge=True)
    assert (purged.add, purged.remove, purged.after) == ((BAKE,), (OTHER,), tuple(sorted([A1, BAKE])))
    emptied = ve.plan([A1], [], purge=True)
    assert (emptied.remove, emptied.after) == ((A1,), ())
    assert not ve.plan([A1], [], purge=False).changed


def test_only_a_gateway_endpoint_that_is_not_gone_takes_route_tables() -> None:
    ve.check_gateway({"VpcEndpointId": "vpce-1", "VpcEndpointType": "Gateway", "State": "available"})
    ve.check_gateway({"VpcEndpointId": "vpce-1", "State": "pending"})  # moto leaves the type out
    with pytest.raises(ve.EndpointError, match="Interface endpoint"):
        ve.check_gateway({"VpcEndpointId": "vpce-1", "VpcEndpointType": "Interface", "State": "available"})
    for state in ("deleting", "deleted", "Failed", "rejected", "expired"):
        with pytest.raises(ve.EndpointError, match="takes no route tables"):
            ve.check_gateway({"VpcEndpointId": "vpce-1", "VpcEndpointType": "Gateway", "State": state})


def test_tables_held_by_another_endpoint_of_the_service_are_named() -> None:
    endpoints = [
        {"VpcEndpointId": "vpce-ours", "State": "available", "RouteTableIds": [A1]},
        {"VpcEndpointId": "vpce-theirs", "State": "available", "RouteTableIds": [BAKE, OTHER]},
        {"VpcEndpointId": "vpce-gone", "State": "deleted", "RouteTableIds": [A2]},
    ]
    assert ve.held_elsewhere("vpce-ours", endpoints, [A1, A2, BAKE]) == {BAKE: "vpce-theirs"}
    assert ve.held_elsewhere("vpce-ours", endpoints, [A2]) == {}


def test_tables_missing_or_of_another_vpc_are_named() -> None:
    found = [{"RouteTableId": A1, "VpcId": "vpc-1"}, {"RouteTableId": BAKE, "VpcId": "vpc-2"}]
    assert ve.not_in_vpc("vpc-1", [A1, BAKE, A2], found) == [BAKE, A2]
    assert ve.not_in_vpc("vpc-1", [A1], found) == []


# ------------------------------------------------------------------ the module against moto


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Any:
    dummy_aws_env(monkeypatch, REGION)
    with mock_aws():
        log = CallLog()
        made: dict[str, Any] = {}

        def make(self: Any, service: str, retry_decorator: Any = None, **kwargs: Any) -> Any:
            if service not in made:
                made[service] = log.attach(boto3.client(service, region_name=REGION))
            client = made[service]
            return RetryingBotoClientWrapper(client, retry_decorator) if retry_decorator else client

        monkeypatch.setattr(AnsibleAWSModule, "client", make)
        ec2 = boto3.client("ec2", region_name=REGION)
        vpc = ec2.create_vpc(CidrBlock="10.40.0.0/16")["Vpc"]["VpcId"]
        tables = {t: ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"] for t in ("a1", "a2", "bake")}
        yield {"log": log, "ec2": ec2, "vpc": vpc, **tables}


def _endpoint(aws: Any, tables: list[str], name: str = f"{NAME}-s3", vpc: str | None = None) -> str:
    tags = [
        {"ResourceType": "vpc-endpoint", "Tags": [{"Key": k, "Value": v} for k, v in {**TAGS, "Name": name}.items()]}
    ]
    made = aws["ec2"].create_vpc_endpoint(
        VpcId=vpc or aws["vpc"], ServiceName=S3, VpcEndpointType="Gateway", RouteTableIds=tables, TagSpecifications=tags
    )
    endpoint_id: str = made["VpcEndpoint"]["VpcEndpointId"]
    return endpoint_id


def _tables_of(aws: Any, endpoint_id: str) -> list[str]:
    [endpoint] = aws["ec2"].describe_vpc_endpoints(VpcEndpointIds=[endpoint_id])["VpcEndpoints"]
    return sorted(endpoint["RouteTableIds"])


def _run(args: dict[str, Any], **mode: bool) -> Result:
    return run_main(vpc_endpoint_route_tables.main, {"region": REGION, **args}, **mode)


def test_the_bake_table_joins_the_endpoint_of_a_vpc_made_before_it_once(aws: Any) -> None:
    endpoint = _endpoint(aws, [aws["a1"], aws["a2"]])
    args = {"vpc_endpoint_id": endpoint, "route_table_ids": [aws["a1"], aws["a2"], aws["bake"]]}
    everything = sorted([aws["a1"], aws["a2"], aws["bake"]])

    checked = _run(args, check_mode=True)
    assert not checked.failed, checked.data
    assert checked["changed"] is True and checked["added"] == [aws["bake"]] and checked["route_table_ids"] == everything
    assert checked["diff"] == {
        "before": {"route_table_ids": sorted([aws["a1"], aws["a2"]])},
        "after": {"route_table_ids": everything},
    }
    assert "ModifyVpcEndpoint" not in aws["log"].names and _tables_of(aws, endpoint) == sorted([aws["a1"], aws["a2"]])

    aws["log"].calls.clear()
    first = _run(args, diff=True)
    assert first["changed"] is True and first["removed"] == []
    assert first["diff"]["after"]["route_table_ids"] == everything
    assert aws["log"].params("ModifyVpcEndpoint") == [{"VpcEndpointId": endpoint, "AddRouteTableIds": [aws["bake"]]}]
    assert _tables_of(aws, endpoint) == everything
    [only] = aws["ec2"].describe_vpc_endpoints(Filters=[{"Name": "vpc-id", "Values": [aws["vpc"]]}])["VpcEndpoints"]
    assert only["VpcEndpointId"] == endpoint  # the same endpoint, no second one

    aws["log"].calls.clear()
    second = _run(args)
    assert second["changed"] is False and second["added"] == [] and "diff" not in second.data
    assert aws["log"].names == ["DescribeVpcEndpoints"]


def test_a_table_someone_else_added_stays_unless_purged(aws: Any) -> None:
    endpoint = _endpoint(aws, [aws["a1"], aws["a2"]])
    kept = _run({"vpc_endpoint_id": endpoint, "route_table_ids": [aws["a1"], aws["bake"]]})
    assert kept["changed"] is True and kept["removed"] == []
    assert _tables_of(aws, endpoint) == sorted([aws["a1"], aws["a2"], aws["bake"]])
    args = {"vpc_endpoint_id": endpoint, "route_table_ids": [aws["a1"], aws["bake"]], "purge_route_table_ids": True}
    checked = _run(args, check_mode=True)
    assert checked["removed"] == [aws["a2"]]
    assert _tables_of(aws, endpoint) == sorted([aws["a1"], aws["a2"], aws["bake"]])
    aws["log"].calls.clear()
    purged = _run(args)
    assert purged["changed"] is True and purged["removed"] == [aws["a2"]]
    assert aws["log"].params("ModifyVpcEndpoint") == [{"VpcEndpointId": endpoint, "RemoveRouteTableIds": [aws["a2"]]}]
    assert _tables_of(aws, endpoint) == sorted([aws["a1"], aws["bake"]])
    assert _run(args)["changed"] is False


def test_refusals_come_before_any_change(aws: Any) -> None:
    endpoint = _endpoint(aws, [aws["a1"]])
    bad = _run({"vpc_endpoint_id": endpoint, "route_table_ids": ["subnet-0123456789abcdef0"]})
    assert bad.failed and "not a route table id" in bad["msg"] and aws["log"].names == []

    unknown = _run({"vpc_endpoint_id": "vpce-0123456789abcdef0", "route_table_ids": [aws["a1"]]})
    assert unknown.failed and "no VPC endpoint vpce-0123456789abcdef0" in unknown["msg"]

    # a table of another VPC, and one that does not exist (moto would accept both; AWS refuses)
    other_vpc = aws["ec2"].create_vpc(CidrBlock="10.50.0.0/16")["Vpc"]["VpcId"]
    foreign = aws["ec2"].create_route_table(VpcId=other_vpc)["RouteTable"]["RouteTableId"]
    aws["log"].calls.clear()
    outside = _run({"vpc_endpoint_id": endpoint, "route_table_ids": [aws["a1"], foreign, "rtb-0123456789abcdef0"]})
    assert outside.failed and f"{foreign}, rtb-0123456789abcdef0 not route table(s) of {aws['vpc']}" in outside["msg"]
    assert "ModifyVpcEndpoint" not in aws["log"].names

    # the bake table already on another S3 endpoint of the VPC (AWS: RouteAlreadyExists)
    theirs = _endpoint(aws, [aws["bake"]], name="someone-elses")
    aws["log"].calls.clear()
    held = _run({"vpc_endpoint_id": endpoint, "route_table_ids": [aws["a1"], aws["bake"]]})
    assert held.failed and f"{aws['bake']} ({theirs})" in held["msg"] and "remove it there first" in held["msg"]
    assert "ModifyVpcEndpoint" not in aws["log"].names and _tables_of(aws, endpoint) == [aws["a1"]]

    subnet = aws["ec2"].create_subnet(VpcId=aws["vpc"], CidrBlock="10.40.1.0/24")["Subnet"]["SubnetId"]
    interface = aws["ec2"].create_vpc_endpoint(
        VpcId=aws["vpc"], ServiceName=f"com.amazonaws.{REGION}.ssm", VpcEndpointType="Interface", SubnetIds=[subnet]
    )["VpcEndpoint"]["VpcEndpointId"]
    wrong = _run({"vpc_endpoint_id": interface, "route_table_ids": [aws["a1"]]})
    assert wrong.failed and "only gateway endpoints have route tables" in wrong["msg"]


# ------------------------------------------------------------------ playbooks/network.yml's tasks against moto

FIND = "Network | the S3 gateway endpoint made before"
AT_MOST_ONE = "Network | at most one S3 gateway endpoint"
ENDPOINT = "Network | S3 gateway endpoint (created"
ROUTE_TABLES = "PCI 1.3.2 | the app and bake route tables reach S3"
MODULES = {
    "amazon.aws.ec2_vpc_endpoint_info": ec2_vpc_endpoint_info.main,
    "amazon.aws.ec2_vpc_endpoint": ec2_vpc_endpoint.main,
    "gearlift.platform.vpc_endpoint_route_tables": vpc_endpoint_route_tables.main,
}


def _play_vars(path: Path) -> dict[str, Any]:
    from ansible.parsing.dataloader import DataLoader

    [play] = DataLoader().load_from_file(str(path), trusted_as_template=True)
    return dict(play["vars"])


def _network_tasks(aws: Any, check_mode: bool = False) -> dict[str, Any]:
    """The S3 gateway endpoint's tasks of playbooks/network.yml in order, each with the registered results of
    the ones before; returns them by task."""
    variables: dict[str, Any] = {
        **_play_vars(NETWORK),
        "gearlift_name": NAME,
        "gearlift_region": REGION,
        "gearlift_tags": TAGS,
        "network_vpc": {"vpc": {"id": aws["vpc"]}},
        "network_app_routes": {"results": [{"route_table": {"id": aws["a1"]}}, {"route_table": {"id": aws["a2"]}}]},
        "network_bake_routes": {"route_table": {"id": aws["bake"]}},
    }
    done: dict[str, Any] = {}
    for name in (FIND, AT_MOST_ONE, ENDPOINT, ROUTE_TABLES):
        task = find_task(NETWORK, name)
        if "ansible.builtin.assert" in task:
            assert condition(task["ansible.builtin.assert"]["that"], variables), name
            continue
        if "when" in task and not condition(task["when"], variables):
            done[name] = {"skipped": True, "changed": False}
            continue
        module, args = task_args(NETWORK, name, variables)
        result = run_main(MODULES[module], args, check_mode=check_mode)
        assert not result.failed, (name, result.data)
        done[name] = registered(result)
        if "register" in task:
            variables[task["register"]] = done[name]
    return done


def _s3_endpoints(aws: Any) -> list[dict[str, Any]]:
    filters = [{"Name": "vpc-id", "Values": [aws["vpc"]]}, {"Name": "service-name", "Values": [S3]}]
    endpoints: list[dict[str, Any]] = aws["ec2"].describe_vpc_endpoints(Filters=filters)["VpcEndpoints"]
    return endpoints


def test_network_yml_keeps_the_endpoint_of_a_vpc_made_before_the_bake_subnet_and_adds_the_bake_table(aws: Any) -> None:
    before = _endpoint(aws, [aws["a1"], aws["a2"]])  # what the playbook built before the bake subnet had the endpoint
    everything = sorted([aws["a1"], aws["a2"], aws["bake"]])

    checked = _network_tasks(aws, check_mode=True)
    assert checked[ENDPOINT]["changed"] is False and checked[ROUTE_TABLES]["changed"] is True
    assert checked[ROUTE_TABLES]["added"] == [aws["bake"]] and _tables_of(aws, before) == sorted([aws["a1"], aws["a2"]])

    first = _network_tasks(aws)
    assert first[ENDPOINT]["result"]["vpc_endpoint_id"] == before and first[ENDPOINT]["changed"] is False
    assert first[ROUTE_TABLES]["changed"] is True and first[ROUTE_TABLES]["added"] == [aws["bake"]]
    assert [e["VpcEndpointId"] for e in _s3_endpoints(aws)] == [before] and _tables_of(aws, before) == everything

    second = _network_tasks(aws)
    assert [second[name]["changed"] for name in (FIND, ENDPOINT, ROUTE_TABLES)] == [False, False, False]
    assert second[ENDPOINT]["result"]["vpc_endpoint_id"] == before
    assert [e["VpcEndpointId"] for e in _s3_endpoints(aws)] == [before]


def test_network_yml_makes_one_endpoint_on_every_table_of_a_new_vpc(aws: Any) -> None:
    checked = _network_tasks(aws, check_mode=True)
    assert checked[ENDPOINT]["changed"] is True and checked[ROUTE_TABLES].get("skipped")  # nothing to read yet
    assert _s3_endpoints(aws) == []

    first = _network_tasks(aws)
    [made] = _s3_endpoints(aws)
    assert first[ENDPOINT]["changed"] is True and first[ENDPOINT]["result"]["vpc_endpoint_id"] == made["VpcEndpointId"]
    assert sorted(made["RouteTableIds"]) == sorted([aws["a1"], aws["a2"], aws["bake"]])
    assert {t["Key"]: t["Value"] for t in made["Tags"]}["Name"] == f"{NAME}-s3"
    assert first[ROUTE_TABLES]["changed"] is False

    second = _network_tasks(aws)
    assert [second[name]["changed"] for name in (FIND, ENDPOINT, ROUTE_TABLES)] == [False, False, False]
    assert [e["VpcEndpointId"] for e in _s3_endpoints(aws)] == [made["VpcEndpointId"]]


def test_network_yml_refuses_two_endpoints_with_its_name(aws: Any) -> None:
    _endpoint(aws, [aws["a1"], aws["a2"]])
    _endpoint(aws, [aws["bake"]])
    with pytest.raises(AssertionError, match=AT_MOST_ONE.replace("|", r"\|")):
        _network_tasks(aws)
