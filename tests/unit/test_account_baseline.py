"""Unit tests of the gearlift.platform.account_baseline module.

The module runs in-process (``patch_module_args`` + exit/fail patched to raise).

* moto (``mock_aws``) plays what it implements: GuardDuty detectors, Inspector2
  ``enable``/``batch_get_account_status``, Security Hub ``enable_security_hub``/``describe_hub``
  (no standards API, hence ``standards: []`` there).  Outcomes are read back from moto.
* botocore's ``Stubber`` (validating requests and responses against the real API shapes)
  plays what moto lacks: Security Hub standards and AWS Config conformance packs, plus
  check mode, unmanaged services and errors.  Every stubbed client is fully stubbed, so any
  call that was not expected fails the test, and the ordered call log is asserted.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.amazon.aws.plugins.module_utils.retries import RetryingBotoClientWrapper
from ansible_collections.gearlift.platform.plugins.modules import account_baseline
from botocore.stub import Stubber
from moto import mock_aws

from .module_harness import CallLog, Result, dummy_aws_env, run_main

REGION = "us-east-1"
ACCOUNT = "123456789012"
PCI = f"arn:aws:securityhub:{REGION}::standards/pci-dss/v/4.0.1"
FSBP = f"arn:aws:securityhub:{REGION}::standards/aws-foundational-security-best-practices/v/1.0.0"
CIS = f"arn:aws:securityhub:{REGION}::standards/cis-aws-foundations-benchmark/v/3.0.0"
HUB_ARN = f"arn:aws:securityhub:{REGION}:{ACCOUNT}:hub/default"
PACK = "pci-dss-v4"
PACK_ARN = f"arn:aws:config:{REGION}:{ACCOUNT}:conformance-pack/{PACK}/conformance-pack-abcd1234"
TEMPLATE_V1 = "s3://acme-config-templates/Operational-Best-Practices-for-PCI-DSS-v4.0.yaml"
TEMPLATE_V2 = "s3://acme-config-templates/2026-02/Operational-Best-Practices-for-PCI-DSS-v4.0.yaml"
DELIVERY = "awsconfigconforms-acme"
GUARDDUTY_ROLE = (
    f"arn:aws:iam::{ACCOUNT}:role/aws-service-role/guardduty.amazonaws.com/AWSServiceRoleForAmazonGuardDuty"
)
WHEN = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)

READ_OPS = frozenset(
    {
        "ListDetectors",
        "GetDetector",
        "DescribeHub",
        "GetEnabledStandards",
        "GetCallerIdentity",
        "BatchGetAccountStatus",
        "DescribeConformancePacks",
        "DescribeConformancePackStatus",
        "ListTagsForResource",
    }
)
OFF = {"enabled": False}


# --------------------------------------------------------------------------- harness


def run_module(args: dict[str, Any], check_mode: bool = False, diff: bool = False) -> Result:
    return run_main(account_baseline.main, {"region": REGION, **args}, check_mode=check_mode, diff=diff)


def only(**services: Any) -> dict[str, Any]:
    """Module args with every service unmanaged except the ones given."""
    args: dict[str, Any] = {"guardduty": OFF, "security_hub": OFF, "inspector": OFF}
    args.update(services)
    return args


@pytest.fixture(autouse=True)
def aws_env(monkeypatch):
    dummy_aws_env(monkeypatch, REGION)


@dataclass
class Clients:
    """What AnsibleAWSModule.client() hands out, and which services the module asked for."""

    log: CallLog = field(default_factory=CallLog)
    made: dict[str, Any] = field(default_factory=dict)
    requested: list[str] = field(default_factory=list)


def use_clients(monkeypatch, clients: Clients) -> None:
    def client(self, service, retry_decorator=None, **kwargs):
        clients.requested.append(service)
        made = clients.made[service]
        return RetryingBotoClientWrapper(made, retry_decorator) if retry_decorator else made

    monkeypatch.setattr(AnsibleAWSModule, "client", client)


# ----------------------------------------------------------------- moto fixtures


@pytest.fixture
def moto_clients(monkeypatch):
    """Real boto3 clients against moto, logged; the module gets these same clients."""
    with mock_aws():
        clients = Clients()
        for service in ("guardduty", "securityhub", "inspector2", "sts", "config"):
            clients.made[service] = clients.log.attach(boto3.client(service, region_name=REGION))
        use_clients(monkeypatch, clients)
        yield clients


def detector(clients: Clients) -> tuple[list[str], dict[str, Any] | None]:
    gd = boto3.client("guardduty", region_name=REGION)
    ids = gd.list_detectors()["DetectorIds"]
    return ids, (gd.get_detector(DetectorId=ids[0]) if ids else None)


def inspector_state(account: str = ACCOUNT) -> dict[str, str]:
    accounts = boto3.client("inspector2", region_name=REGION).batch_get_account_status(accountIds=[account])["accounts"]
    if not accounts:
        return {}
    return {key: value["status"] for key, value in accounts[0]["resourceState"].items()}


def hub_enabled() -> bool:
    sh = boto3.client("securityhub", region_name=REGION)
    try:
        sh.describe_hub()
    except sh.exceptions.InvalidAccessException:
        return False
    return True


# ------------------------------------------------------------------- moto: GuardDuty


def test_guardduty_creates_an_enabled_detector_then_changes_nothing(moto_clients):
    first = run_module(only(guardduty={"finding_publishing_frequency": "ONE_HOUR"}))
    assert not first.failed, first.data
    assert first["changed"] is True

    ids, found = detector(moto_clients)
    assert len(ids) == 1
    assert found["Status"] == "ENABLED"
    assert found["FindingPublishingFrequency"] == "ONE_HOUR"
    assert first["status"]["guardduty"]["detector_id"] == ids[0]
    assert first["status"]["guardduty"]["actions"] == ["CreateDetector"]
    assert moto_clients.log.params("CreateDetector") == [{"Enable": True, "FindingPublishingFrequency": "ONE_HOUR"}]

    moto_clients.log.calls.clear()
    second = run_module(only(guardduty={"finding_publishing_frequency": "ONE_HOUR"}))
    assert not second.failed, second.data
    assert second["changed"] is False
    assert second["status"]["guardduty"]["actions"] == []
    assert second["status"]["guardduty"]["detector_id"] == ids[0]
    assert moto_clients.log.names == ["ListDetectors", "GetDetector"]
    assert detector(moto_clients)[0] == ids


def test_guardduty_enables_a_disabled_detector_and_sets_the_frequency(moto_clients):
    gd = boto3.client("guardduty", region_name=REGION)
    existing = gd.create_detector(Enable=False, FindingPublishingFrequency="SIX_HOURS")["DetectorId"]
    assert gd.get_detector(DetectorId=existing)["Status"] == "DISABLED"

    result = run_module(only(guardduty={}), diff=True)
    assert not result.failed, result.data
    assert result["changed"] is True
    assert result["status"]["guardduty"]["actions"] == ["UpdateDetector"]
    assert result["diff"]["before"]["guardduty"]["detector_status"] == "DISABLED"
    assert result["diff"]["after"]["guardduty"]["finding_publishing_frequency"] == "FIFTEEN_MINUTES"

    ids, found = detector(moto_clients)
    assert ids == [existing]  # updated in place, no second detector
    assert found["Status"] == "ENABLED"
    assert found["FindingPublishingFrequency"] == "FIFTEEN_MINUTES"

    again = run_module(only(guardduty={}))
    assert again["changed"] is False


# ------------------------------------------------------------------- moto: Inspector


def test_inspector_enables_missing_resource_types_then_changes_nothing(moto_clients):
    assert inspector_state() == {}  # never enabled

    first = run_module(only(inspector={"resource_types": ["EC2", "ECR"]}))
    assert not first.failed, first.data
    assert first["changed"] is True
    assert first["status"]["inspector"]["account_id"] == ACCOUNT
    assert first["status"]["inspector"]["resource_types_added"] == ["EC2", "ECR"]
    assert moto_clients.log.params("Enable") == [{"accountIds": [ACCOUNT], "resourceTypes": ["EC2", "ECR"]}]
    state = inspector_state()
    assert state["ec2"] == "ENABLED"
    assert state["ecr"] == "ENABLED"
    assert state["lambda"] == "DISABLED"

    moto_clients.log.calls.clear()
    second = run_module(only(inspector={"resource_types": ["EC2", "ECR"]}))
    assert not second.failed, second.data
    assert second["changed"] is False
    assert moto_clients.log.names == ["GetCallerIdentity", "BatchGetAccountStatus"]


def test_inspector_adds_only_the_type_that_is_missing(moto_clients):
    boto3.client("inspector2", region_name=REGION).enable(accountIds=[ACCOUNT], resourceTypes=["EC2"])

    result = run_module(only(inspector={"resource_types": ["EC2", "LAMBDA"]}))
    assert not result.failed, result.data
    assert result["changed"] is True
    assert moto_clients.log.params("Enable") == [{"accountIds": [ACCOUNT], "resourceTypes": ["LAMBDA"]}]
    assert inspector_state()["lambda"] == "ENABLED"
    assert result["status"]["inspector"]["resource_types"] == ["EC2", "LAMBDA"]


# ---------------------------------------------------------------- moto: Security Hub


def test_security_hub_is_enabled_without_default_standards_then_changes_nothing(moto_clients):
    assert not hub_enabled()

    first = run_module(only(security_hub={"standards": []}))
    assert not first.failed, first.data
    assert first["changed"] is True
    assert hub_enabled()
    assert moto_clients.log.params("EnableSecurityHub") == [
        {"EnableDefaultStandards": False, "ControlFindingGenerator": "SECURITY_CONTROL"}
    ]
    assert first["status"]["security_hub"]["hub_arn"] == HUB_ARN
    assert first["status"]["security_hub"]["standards"] == []

    moto_clients.log.calls.clear()
    second = run_module(only(security_hub={"standards": []}))
    assert not second.failed, second.data
    assert second["changed"] is False
    assert moto_clients.log.names == ["DescribeHub"]  # standards API not needed, not called


def test_check_mode_against_moto_leaves_everything_off(moto_clients):
    args = {"security_hub": {"standards": []}, "inspector": {"resource_types": ["EC2"]}}
    planned = run_module(args, check_mode=True)
    assert not planned.failed, planned.data
    assert planned["changed"] is True
    assert planned["status"]["guardduty"]["actions"] == ["CreateDetector"]
    assert planned["status"]["guardduty"]["detector_id"] is None
    assert planned["status"]["security_hub"]["actions"] == ["EnableSecurityHub"]
    assert planned["status"]["inspector"]["actions"] == ["Enable"]
    assert set(moto_clients.log.names) <= READ_OPS
    assert detector(moto_clients)[0] == []
    assert not hub_enabled()
    assert inspector_state() == {}

    applied = run_module(args)
    assert applied["changed"] is True
    assert detector(moto_clients)[0] != []
    assert hub_enabled()
    assert inspector_state()["ec2"] == "ENABLED"
    assert run_module(args)["changed"] is False


# ------------------------------------------------------------------ stubbed clients


@dataclass
class Stubs:
    clients: Clients
    stubbers: dict[str, Stubber]

    def __getitem__(self, service: str) -> Stubber:
        return self.stubbers[service]

    @property
    def names(self) -> list[str]:
        return self.clients.log.names


@pytest.fixture
def stubs(monkeypatch):
    """Fully stubbed clients: only queued responses are answered, anything else fails."""
    clients = Clients()
    stubbers = {}
    for service in ("guardduty", "securityhub", "inspector2", "sts", "config"):
        made = clients.log.attach(boto3.client(service, region_name=REGION))
        clients.made[service] = made
        stubbers[service] = Stubber(made)
        stubbers[service].activate()
    use_clients(monkeypatch, clients)
    yield Stubs(clients, stubbers)
    for stubber in stubbers.values():
        stubber.deactivate()


def assert_all_consumed(stubs: Stubs) -> None:
    for stubber in stubs.stubbers.values():
        stubber.assert_no_pending_responses()


def subscription(standards_arn: str, status: str = "READY") -> dict[str, Any]:
    path = standards_arn.split("::", 1)[1].replace("standards/", "subscription/", 1)
    return {
        "StandardsSubscriptionArn": f"arn:aws:securityhub:{REGION}:{ACCOUNT}:{path}",
        "StandardsArn": standards_arn,
        "StandardsInput": {},
        "StandardsStatus": status,
    }


def hub_exists(stubs: Stubs) -> None:
    stubs["securityhub"].add_response(
        "describe_hub",
        {
            "HubArn": HUB_ARN,
            "SubscribedAt": "2026-01-01T00:00:00.000Z",
            "AutoEnableControls": True,
            "ControlFindingGenerator": "SECURITY_CONTROL",
        },
        {},
    )


def enabled_standards(stubs: Stubs, *subscriptions: dict[str, Any]) -> None:
    stubs["securityhub"].add_response("get_enabled_standards", {"StandardsSubscriptions": list(subscriptions)}, {})


def no_hub(stubs: Stubs) -> None:
    stubs["securityhub"].add_client_error(
        "describe_hub",
        service_error_code="InvalidAccessException",
        service_message=f"Account {ACCOUNT} is not subscribed to AWS Security Hub",
        http_status_code=401,
    )


def caller(stubs: Stubs) -> None:
    stubs["sts"].add_response(
        "get_caller_identity",
        {"UserId": "AIDAEXAMPLE", "Account": ACCOUNT, "Arn": f"arn:aws:iam::{ACCOUNT}:user/ops"},
        {},
    )


def inspector_disabled(stubs: Stubs) -> None:
    off = {
        "status": "DISABLED",
        "errorCode": "RESOURCE_NOT_FOUND",
        "errorMessage": "Amazon Inspector is not enabled for this account",
    }
    stubs["inspector2"].add_response(
        "batch_get_account_status",
        {
            "accounts": [
                {
                    "accountId": ACCOUNT,
                    "state": off,
                    "resourceState": {"ec2": off, "ecr": off, "lambda": off, "lambdaCode": off},
                }
            ],
            "failedAccounts": [],
        },
        {"accountIds": [ACCOUNT]},
    )


def pack_detail(delivery: str | None = DELIVERY, parameters: list[dict[str, str]] | None = None) -> dict[str, Any]:
    detail: dict[str, Any] = {
        "ConformancePackName": PACK,
        "ConformancePackArn": PACK_ARN,
        "ConformancePackId": "conformance-pack-abcd1234",
        "LastUpdateRequestedTime": WHEN,
        "CreatedBy": ACCOUNT,
    }
    if delivery:
        detail["DeliveryS3Bucket"] = delivery
    if parameters:
        detail["ConformancePackInputParameters"] = parameters
    return detail


def pack_exists(stubs: Stubs, template_tag: str | None, state: str = "CREATE_COMPLETE", **detail: Any) -> None:
    cfg = stubs["config"]
    cfg.add_response(
        "describe_conformance_packs",
        {"ConformancePackDetails": [pack_detail(**detail)]},
        {"ConformancePackNames": [PACK]},
    )
    tags = [{"Key": "owner", "Value": "security"}]
    if template_tag is not None:
        tags.append({"Key": "gearlift:template-s3-uri", "Value": template_tag})
    cfg.add_response("list_tags_for_resource", {"Tags": tags}, {"ResourceArn": PACK_ARN})
    cfg.add_response(
        "describe_conformance_pack_status",
        {
            "ConformancePackStatusDetails": [
                {
                    "ConformancePackName": PACK,
                    "ConformancePackId": "conformance-pack-abcd1234",
                    "ConformancePackArn": PACK_ARN,
                    "ConformancePackState": state,
                    "LastUpdateRequestedTime": WHEN,
                }
            ]
        },
        {"ConformancePackNames": [PACK]},
    )


def pack_missing(stubs: Stubs) -> None:
    stubs["config"].add_client_error(
        "describe_conformance_packs",
        service_error_code="NoSuchConformancePackException",
        service_message=f"Conformance pack {PACK} does not exist",
        http_status_code=400,
        expected_params={"ConformancePackNames": [PACK]},
    )


def expect_put(stubs: Stubs, request: dict[str, Any], tag: str) -> None:
    stubs["config"].add_response("put_conformance_pack", {"ConformancePackArn": PACK_ARN}, request)
    stubs["config"].add_response(
        "tag_resource", {}, {"ResourceArn": PACK_ARN, "Tags": [{"Key": "gearlift:template-s3-uri", "Value": tag}]}
    )


def pack_args(uri: str = TEMPLATE_V1, **extra: Any) -> dict[str, Any]:
    return only(config_conformance_pack={"name": PACK, "template_s3_uri": uri, **extra})


# ------------------------------------------------------- stubs: Security Hub standards


def test_standards_only_the_missing_one_is_enabled(stubs):
    hub_exists(stubs)
    enabled_standards(stubs, subscription(FSBP))
    stubs["securityhub"].add_response(
        "batch_enable_standards",
        {"StandardsSubscriptions": [subscription(PCI, "PENDING")]},
        {"StandardsSubscriptionRequests": [{"StandardsArn": PCI}]},
    )

    result = run_module(only(security_hub={}))
    assert not result.failed, result.data
    assert_all_consumed(stubs)
    assert stubs.names == ["DescribeHub", "GetEnabledStandards", "BatchEnableStandards"]
    hub = result["status"]["security_hub"]
    assert result["changed"] is True
    assert hub["standards_added"] == [PCI]
    assert hub["standards"] == sorted([FSBP, PCI])
    assert {s["standards_arn"]: s["status"] for s in hub["subscriptions"]} == {FSBP: "READY", PCI: "PENDING"}


def test_standards_already_enabled_means_no_write_and_others_are_left_alone(stubs):
    hub_exists(stubs)
    enabled_standards(stubs, subscription(PCI), subscription(FSBP, "INCOMPLETE"), subscription(CIS))

    result = run_module(only(security_hub={}))
    assert not result.failed, result.data
    assert_all_consumed(stubs)
    assert stubs.names == ["DescribeHub", "GetEnabledStandards"]
    assert result["changed"] is False
    assert result["status"]["security_hub"]["standards"] == sorted([PCI, FSBP, CIS])


def test_a_failed_subscription_is_requested_again(stubs):
    hub_exists(stubs)
    enabled_standards(stubs, subscription(PCI, "FAILED"), subscription(FSBP))
    stubs["securityhub"].add_response(
        "batch_enable_standards",
        {"StandardsSubscriptions": [subscription(PCI, "PENDING")]},
        {"StandardsSubscriptionRequests": [{"StandardsArn": PCI}]},
    )
    result = run_module(only(security_hub={}))
    assert not result.failed, result.data
    assert_all_consumed(stubs)
    assert result["status"]["security_hub"]["standards_added"] == [PCI]


def test_purge_standards_disables_only_the_unrequested_ones(stubs):
    hub_exists(stubs)
    enabled_standards(stubs, subscription(PCI), subscription(CIS), subscription(FSBP, "DELETING"))
    cis_subscription = subscription(CIS)["StandardsSubscriptionArn"]
    stubs["securityhub"].add_response(
        "batch_disable_standards",
        {"StandardsSubscriptions": [subscription(CIS, "DELETING")]},
        {"StandardsSubscriptionArns": [cis_subscription]},
    )

    result = run_module(only(security_hub={"standards": ["pci-dss-v4.0.1"], "purge_standards": True}))
    assert not result.failed, result.data
    assert_all_consumed(stubs)
    assert stubs.names == ["DescribeHub", "GetEnabledStandards", "BatchDisableStandards"]
    assert result["status"]["security_hub"]["standards_removed"] == [CIS]
    assert result["status"]["security_hub"]["standards"] == [PCI]


def test_new_hub_gets_its_standards_without_listing_them_first(stubs):
    no_hub(stubs)
    stubs["securityhub"].add_response(
        "enable_security_hub", {}, {"EnableDefaultStandards": False, "ControlFindingGenerator": "SECURITY_CONTROL"}
    )
    hub_exists(stubs)
    stubs["securityhub"].add_response(
        "batch_enable_standards",
        {"StandardsSubscriptions": [subscription(PCI, "PENDING"), subscription(FSBP, "PENDING")]},
        {"StandardsSubscriptionRequests": [{"StandardsArn": PCI}, {"StandardsArn": FSBP}]},
    )
    result = run_module(only(security_hub={}))
    assert not result.failed, result.data
    assert_all_consumed(stubs)
    assert stubs.names == ["DescribeHub", "EnableSecurityHub", "DescribeHub", "BatchEnableStandards"]
    assert result["status"]["security_hub"]["actions"] == ["EnableSecurityHub", "BatchEnableStandards"]


# ------------------------------------------------------------ stubs: conformance pack


def test_missing_conformance_pack_is_put_and_tagged(stubs):
    pack_missing(stubs)
    expect_put(
        stubs,
        {"ConformancePackName": PACK, "TemplateS3Uri": TEMPLATE_V1, "DeliveryS3Bucket": DELIVERY},
        TEMPLATE_V1,
    )
    result = run_module(pack_args(delivery_s3_bucket=DELIVERY))
    assert not result.failed, result.data
    assert_all_consumed(stubs)
    assert stubs.names == ["DescribeConformancePacks", "PutConformancePack", "TagResource"]
    pack = result["status"]["config_conformance_pack"]
    assert result["changed"] is True
    assert pack["arn"] == PACK_ARN
    assert pack["reasons"] == ["missing"]


def test_same_conformance_pack_means_no_write(stubs):
    pack_exists(stubs, template_tag=TEMPLATE_V1)
    result = run_module(pack_args(delivery_s3_bucket=DELIVERY))
    assert not result.failed, result.data
    assert_all_consumed(stubs)
    assert stubs.names == ["DescribeConformancePacks", "ListTagsForResource", "DescribeConformancePackStatus"]
    assert result["changed"] is False
    assert result["status"]["config_conformance_pack"]["state"] == "CREATE_COMPLETE"


def test_different_template_is_put_keeping_delivery_and_parameters(stubs):
    parameters = [{"ParameterName": "AccessKeysRotatedParamMaxAccessKeyAge", "ParameterValue": "90"}]
    pack_exists(stubs, template_tag=TEMPLATE_V1, parameters=parameters)
    expect_put(
        stubs,
        {
            "ConformancePackName": PACK,
            "TemplateS3Uri": TEMPLATE_V2,
            "DeliveryS3Bucket": DELIVERY,
            "ConformancePackInputParameters": parameters,
        },
        TEMPLATE_V2,
    )
    result = run_module(pack_args(TEMPLATE_V2), diff=True)
    assert not result.failed, result.data
    assert_all_consumed(stubs)
    assert stubs.names[-2:] == ["PutConformancePack", "TagResource"]
    assert result["status"]["config_conformance_pack"]["reasons"] == ["template differs"]
    assert result["diff"]["before"]["config_conformance_pack"]["template_s3_uri"] == TEMPLATE_V1
    assert result["diff"]["after"]["config_conformance_pack"]["template_s3_uri"] == TEMPLATE_V2


@pytest.mark.parametrize(
    ("tag", "state", "reason"),
    [
        (None, "CREATE_COMPLETE", "no gearlift:template-s3-uri tag: template unknown"),
        (TEMPLATE_V1, "CREATE_FAILED", "last deployment CREATE_FAILED"),
    ],
)
def test_untagged_or_failed_pack_is_deployed_again(stubs, tag, state, reason):
    pack_exists(stubs, template_tag=tag, state=state)
    expect_put(
        stubs, {"ConformancePackName": PACK, "TemplateS3Uri": TEMPLATE_V1, "DeliveryS3Bucket": DELIVERY}, TEMPLATE_V1
    )
    result = run_module(pack_args())
    assert not result.failed, result.data
    assert_all_consumed(stubs)
    assert result["status"]["config_conformance_pack"]["reasons"] == [reason]


def test_long_template_uri_is_recorded_as_a_hash():
    long_uri = "s3://acme-config-templates/" + "deep/" * 60 + "pci.yaml"
    value = account_baseline.template_tag_value(long_uri)
    assert value.startswith("sha256:")
    assert len(value) <= 256
    assert account_baseline.template_tag_value(TEMPLATE_V1) == TEMPLATE_V1


# ------------------------------------------------------------- stubs: check mode


def test_check_mode_makes_only_read_calls(stubs):
    stubs["guardduty"].add_response("list_detectors", {"DetectorIds": []}, {})
    hub_exists(stubs)
    enabled_standards(stubs, subscription(FSBP))
    caller(stubs)
    inspector_disabled(stubs)
    pack_exists(stubs, template_tag=TEMPLATE_V1)

    result = run_module(
        {
            "guardduty": {},
            "security_hub": {},
            "inspector": {"resource_types": ["EC2"]},
            "config_conformance_pack": {"name": PACK, "template_s3_uri": TEMPLATE_V2},
        },
        check_mode=True,
    )
    assert not result.failed, result.data
    assert_all_consumed(stubs)
    assert stubs.names, "nothing was read"
    assert set(stubs.names) <= READ_OPS, stubs.names
    assert result["changed"] is True
    status = result["status"]
    assert status["guardduty"]["actions"] == ["CreateDetector"]
    assert status["security_hub"]["actions"] == ["BatchEnableStandards"]
    assert status["security_hub"]["standards_added"] == [PCI]
    assert status["inspector"]["actions"] == ["Enable"]
    assert status["inspector"]["resource_types_added"] == ["EC2"]
    assert status["config_conformance_pack"]["actions"] == ["PutConformancePack", "TagResource"]
    assert result["diff"]["before"]["security_hub"]["standards"] == [FSBP]
    assert result["diff"]["after"]["security_hub"]["standards"] == sorted([FSBP, PCI])


def test_check_mode_with_no_hub_does_not_list_standards(stubs):
    no_hub(stubs)
    result = run_module(only(security_hub={}), check_mode=True)
    assert not result.failed, result.data
    assert_all_consumed(stubs)
    assert stubs.names == ["DescribeHub"]
    assert result["status"]["security_hub"]["standards_added"] == [PCI, FSBP]


# ------------------------------------------------------- stubs: unmanaged services


def test_services_set_enabled_false_are_never_called(stubs):
    stubs["guardduty"].add_response("list_detectors", {"DetectorIds": ["d1"]}, {})
    stubs["guardduty"].add_response(
        "get_detector",
        {
            "Status": "ENABLED",
            "FindingPublishingFrequency": "FIFTEEN_MINUTES",
            "ServiceRole": GUARDDUTY_ROLE,
        },
        {"DetectorId": "d1"},
    )
    result = run_module(
        {
            "guardduty": {},
            "security_hub": OFF,
            "inspector": OFF,
            "config_conformance_pack": OFF,  # no name/template needed when off
        }
    )
    assert not result.failed, result.data
    assert_all_consumed(stubs)
    assert stubs.clients.requested == ["guardduty"]
    assert stubs.names == ["ListDetectors", "GetDetector"]
    assert result["changed"] is False
    for key in ("security_hub", "inspector", "config_conformance_pack"):
        assert result["status"][key] == {"managed": False}


def test_everything_off_makes_no_call_at_all(stubs):
    result = run_module(only())
    assert not result.failed, result.data
    assert stubs.clients.requested == []
    assert stubs.names == []
    assert result["changed"] is False


# ------------------------------------------------------------------ stubs: errors


def test_access_denied_on_inspector_enable_names_the_service(stubs):
    caller(stubs)
    inspector_disabled(stubs)
    stubs["inspector2"].add_client_error(
        "enable",
        service_error_code="AccessDeniedException",
        service_message="User is not authorized to perform: inspector2:Enable",
        http_status_code=403,
        expected_params={"accountIds": [ACCOUNT], "resourceTypes": ["EC2"]},
    )
    result = run_module(only(inspector={}))
    assert result.failed
    assert_all_consumed(stubs)
    assert result["msg"].startswith("Inspector: inspector2:Enable failed")
    assert "not authorized" in result["msg"]
    assert result["error"]["code"] == "AccessDeniedException"
    assert stubs.names.count("Enable") == 1  # AccessDenied is not retried


def test_access_denied_on_enable_security_hub_names_the_service_and_keeps_progress(stubs):
    stubs["guardduty"].add_response("list_detectors", {"DetectorIds": []}, {})
    stubs["guardduty"].add_response(
        "create_detector", {"DetectorId": "d2"}, {"Enable": True, "FindingPublishingFrequency": "FIFTEEN_MINUTES"}
    )
    no_hub(stubs)
    stubs["securityhub"].add_client_error(
        "enable_security_hub",
        service_error_code="AccessDeniedException",
        service_message="User is not authorized to perform: securityhub:EnableSecurityHub",
        http_status_code=403,
    )
    result = run_module({"guardduty": {}, "security_hub": {}, "inspector": OFF})
    assert result.failed
    assert_all_consumed(stubs)
    assert result["msg"].startswith("Security Hub: securityhub:EnableSecurityHub failed")
    assert result["changed"] is True  # the detector was created before the failure
    assert result["status"]["guardduty"]["detector_id"] == "d2"


def test_inspector_failed_account_is_reported(stubs):
    caller(stubs)
    inspector_disabled(stubs)
    stubs["inspector2"].add_response(
        "enable",
        {
            "accounts": [],
            "failedAccounts": [
                {
                    "accountId": ACCOUNT,
                    "errorCode": "BLOCKED_BY_ORGANIZATION_POLICY",
                    "errorMessage": "Blocked by an SCP",
                }
            ],
        },
        {"accountIds": [ACCOUNT], "resourceTypes": ["EC2"]},
    )
    result = run_module(only(inspector={}))
    assert result.failed
    assert "inspector2:Enable failed for account" in result["msg"]
    assert "BLOCKED_BY_ORGANIZATION_POLICY" in result["msg"]


# -------------------------------------------------------------- argument checks


@pytest.mark.parametrize(
    ("pack", "message"),
    [
        ({"name": PACK}, "all of the following are missing: template_s3_uri"),
        ({"name": PACK, "template_s3_uri": "https://bucket/key.yaml"}, "must look like s3://bucket/key"),
        (
            {"name": PACK, "template_s3_uri": TEMPLATE_V1, "delivery_s3_bucket": "s3://awsconfigconforms-x"},
            "is a bucket name, not a URI",
        ),
    ],
)
def test_bad_conformance_pack_arguments_fail_before_any_call(stubs, pack, message):
    result = run_module(only(config_conformance_pack=pack))
    assert result.failed
    assert message in result["msg"]
    assert stubs.clients.requested == []


def test_unknown_standard_is_refused(stubs):
    result = run_module(only(security_hub={"standards": ["pci-dss-v3.2.1"]}))
    assert result.failed
    assert "pci-dss-v3.2.1" in result["msg"]
    assert stubs.clients.requested == []


# ------------------------------------------------------------- moto: AWS Config recording

CONFIG_ROLE = f"arn:aws:iam::{ACCOUNT}:role/shop-rehearsal-config"
CONFIG_BUCKET = "shop-rehearsal-config-123456789012"
CONFIG_KEY = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
RECORDER = {"role_arn": CONFIG_ROLE, "delivery_s3_bucket": CONFIG_BUCKET, "delivery_kms_key_arn": CONFIG_KEY}


def config_state() -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    cfg = boto3.client("config", region_name=REGION)
    return (
        cfg.describe_configuration_recorders()["ConfigurationRecorders"],
        cfg.describe_delivery_channels()["DeliveryChannels"],
        cfg.describe_configuration_recorder_status()["ConfigurationRecordersStatus"],
    )


def test_config_recording_is_set_up_and_started_then_changes_nothing(moto_clients):
    first = run_module(only(config_recorder=RECORDER))
    assert not first.failed, first.data
    assert first["changed"] is True
    assert first["status"]["config_recorder"]["actions"] == [
        "PutConfigurationRecorder",
        "PutDeliveryChannel",
        "StartConfigurationRecorder",
    ]
    recorders, channels, statuses = config_state()
    assert [r["name"] for r in recorders] == ["default"]
    assert recorders[0]["roleARN"] == CONFIG_ROLE
    assert recorders[0]["recordingGroup"]["allSupported"] is True
    assert recorders[0]["recordingGroup"]["includeGlobalResourceTypes"] is True
    assert channels[0]["s3BucketName"] == CONFIG_BUCKET
    assert channels[0]["s3KmsKeyArn"] == CONFIG_KEY
    assert channels[0]["configSnapshotDeliveryProperties"]["deliveryFrequency"] == "TwentyFour_Hours"
    assert statuses[0]["recording"] is True

    moto_clients.log.calls.clear()
    second = run_module(only(config_recorder=RECORDER))
    assert not second.failed, second.data
    assert second["changed"] is False
    assert second["status"]["config_recorder"]["actions"] == []
    assert moto_clients.log.names == [
        "DescribeConfigurationRecorders",
        "DescribeDeliveryChannels",
        "DescribeConfigurationRecorderStatus",
    ]


def test_config_changed_frequency_rewrites_only_the_channel_and_a_stopped_recorder_is_started(moto_clients):
    assert not run_module(only(config_recorder=RECORDER)).failed
    boto3.client("config", region_name=REGION).stop_configuration_recorder(ConfigurationRecorderName="default")
    moto_clients.log.calls.clear()

    result = run_module(only(config_recorder={**RECORDER, "delivery_frequency": "Six_Hours"}), diff=True)
    assert not result.failed, result.data
    assert result["status"]["config_recorder"]["actions"] == ["PutDeliveryChannel", "StartConfigurationRecorder"]
    assert result["diff"]["before"]["config_recorder"]["delivery_channel"]["deliveryFrequency"] == "TwentyFour_Hours"
    assert result["diff"]["after"]["config_recorder"]["delivery_channel"]["deliveryFrequency"] == "Six_Hours"
    _, channels, statuses = config_state()
    assert channels[0]["configSnapshotDeliveryProperties"]["deliveryFrequency"] == "Six_Hours"
    assert statuses[0]["recording"] is True


def test_config_check_mode_reads_only_and_reports_the_writes(moto_clients):
    result = run_module(only(config_recorder=RECORDER), check_mode=True)
    assert not result.failed, result.data
    assert result["changed"] is True
    assert result["status"]["config_recorder"]["actions"] == [
        "PutConfigurationRecorder",
        "PutDeliveryChannel",
        "StartConfigurationRecorder",
    ]
    assert moto_clients.log.names == ["DescribeConfigurationRecorders", "DescribeDeliveryChannels"]
    assert config_state() == ([], [], [])


def test_config_recorder_of_another_name_is_named_not_replaced(moto_clients):
    cfg = boto3.client("config", region_name=REGION)
    cfg.put_configuration_recorder(
        ConfigurationRecorder={"name": "org-recorder", "roleARN": CONFIG_ROLE, "recordingGroup": {"allSupported": True}}
    )
    moto_clients.log.calls.clear()
    result = run_module(only(config_recorder=RECORDER))
    assert result.failed
    assert "configuration recorder 'org-recorder'" in result["msg"]
    assert "set config_recorder.name to 'org-recorder'" in result["msg"]
    assert [name for name in moto_clients.log.names if not name.startswith("Describe")] == []


@pytest.mark.parametrize(
    ("recorder", "message"),
    [
        ({"delivery_s3_bucket": CONFIG_BUCKET}, "all of the following are missing: role_arn"),
        ({**RECORDER, "role_arn": "shop-config"}, "config_recorder.role_arn must be an IAM role ARN"),
        ({**RECORDER, "delivery_s3_bucket": "s3://bucket/prefix"}, "is a bucket name, not a URI"),
        ({**RECORDER, "all_supported": False}, "include_global_types=true needs config_recorder.all_supported=true"),
    ],
)
def test_bad_config_recorder_arguments_fail_before_any_call(stubs, recorder, message):
    result = run_module(only(config_recorder=recorder))
    assert result.failed
    assert message in result["msg"]
    assert stubs.clients.requested == []
