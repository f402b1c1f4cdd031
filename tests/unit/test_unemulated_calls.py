"""What the emulator cannot answer, against botocore's Stubber with the real API shapes.

moto lists no WAF associations and keeps no backup selections, so the rehearsal sets
``gearlift_waf_associate: false`` and ``gearlift_backup_selection: false``. moto creates and lists
RDS event subscriptions but cannot modify one (``ModifyEventSubscription`` is not implemented), so
the rehearsal only ever creates the database's subscription; the update path of
``gearlift.platform.rds_event_subscription`` (data.yml) is covered here. These tests run the
collection modules the playbooks use for them (``community.aws.wafv2_resources``,
``amazon.aws.backup_selection``) in-process with the task arguments read from the playbooks
themselves (rendered with a small set of variables), against fully stubbed clients: every request
is validated against the service model, every call that was not expected fails the test.
"""

from __future__ import annotations

import datetime
from typing import Any

import boto3
import pytest
from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.amazon.aws.plugins.module_utils.retries import RetryingBotoClientWrapper
from ansible_collections.amazon.aws.plugins.modules import backup_selection
from ansible_collections.community.aws.plugins.modules import wafv2_resources
from ansible_collections.gearlift.platform.plugins.modules import rds_event_subscription
from botocore.stub import Stubber

from .module_harness import REPO, CallLog, Result, dummy_aws_env, run_main, task_args

REGION = "eu-west-1"
ACCOUNT = "111122223333"
NAME = "shop-production"
WHEN = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
VARS = {
    "gearlift_name": NAME,
    "gearlift_environment": "production",
    "gearlift_region": REGION,
    "gearlift_waf_associate": True,
    "gearlift_backup_selection": True,
}
ALB_ARN = f"arn:aws:elasticloadbalancing:{REGION}:{ACCOUNT}:loadbalancer/app/{NAME}/50dc6c495c0c9188"
ACL_ID = "a1b2c3d4-5678-90ab-cdef-EXAMPLE11111"
ACL_ARN = f"arn:aws:wafv2:{REGION}:{ACCOUNT}:regional/webacl/{NAME}/{ACL_ID}"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/{NAME}-backup"
PLAN_ID = "8a3e1f2b-0c4d-4e5f-9a6b-7c8d9e0f1a2b"
PLAN_ARN = f"arn:aws:backup:{REGION}:{ACCOUNT}:backup-plan:{PLAN_ID}"
SELECTION_ID = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"


def playbook_task(playbook: str, name_start: str, **extra: Any) -> tuple[str, dict[str, Any]]:
    """The module and its arguments of one task of a playbook, templated with VARS + extra."""
    return task_args(REPO / "playbooks" / playbook, name_start, {**VARS, **extra})


@pytest.fixture
def stubbed(monkeypatch):
    """One fully stubbed client per service; the modules get exactly these."""
    dummy_aws_env(monkeypatch, REGION)
    log = CallLog()
    made: dict[str, Any] = {}
    stubbers: dict[str, Stubber] = {}
    for service in ("wafv2", "backup", "rds"):
        made[service] = log.attach(boto3.client(service, region_name=REGION))
        stubbers[service] = Stubber(made[service])
        stubbers[service].activate()

    def client(self, service, retry_decorator=None, **kwargs):
        return RetryingBotoClientWrapper(made[service], retry_decorator) if retry_decorator else made[service]

    monkeypatch.setattr(AnsibleAWSModule, "client", client)
    yield stubbers, log
    for stubber in stubbers.values():
        stubber.assert_no_pending_responses()
        stubber.deactivate()


# ------------------------------------------------------------------ WAF association


def waf_args() -> dict[str, Any]:
    module, args = playbook_task(
        "edge.yml", "PCI 6.4.2 | WAF web ACL guards the ALB", edge_alb={"load_balancer_arn": ALB_ARN}
    )
    assert module == "community.aws.wafv2_resources"
    return args


def queue_acl_lookup(waf: Stubber, associated: list[str]) -> None:
    waf.add_response(
        "list_web_acls",
        {
            "WebACLs": [
                {"Name": "other", "Id": "0" * 36, "ARN": ACL_ARN.replace(NAME, "other"), "LockToken": "t0"},
                {"Name": NAME, "Id": ACL_ID, "ARN": ACL_ARN, "LockToken": "t1"},
            ]
        },
        {"Scope": "REGIONAL", "Limit": 100},
    )
    waf.add_response(
        "get_web_acl",
        {
            "WebACL": {
                "Name": NAME,
                "Id": ACL_ID,
                "ARN": ACL_ARN,
                "DefaultAction": {"Allow": {}},
                "VisibilityConfig": {
                    "SampledRequestsEnabled": True,
                    "CloudWatchMetricsEnabled": True,
                    "MetricName": "shopproductionacl",
                },
            },
            "LockToken": "t1",
        },
        {"Name": NAME, "Scope": "REGIONAL", "Id": ACL_ID},
    )
    waf.add_response("list_resources_for_web_acl", {"ResourceArns": associated}, {"WebACLArn": ACL_ARN})


def test_waf_acl_is_associated_with_the_alb_once(stubbed):
    stubbers, log = stubbed
    waf = stubbers["wafv2"]
    queue_acl_lookup(waf, associated=[])
    waf.add_response("associate_web_acl", {}, {"WebACLArn": ACL_ARN, "ResourceArn": ALB_ARN})
    first = run_main(wafv2_resources.main, waf_args())
    assert not first.failed, first.data
    assert first["changed"] is True

    log.calls.clear()
    queue_acl_lookup(waf, associated=[ALB_ARN])
    second = run_main(wafv2_resources.main, waf_args())
    assert not second.failed, second.data
    assert second["changed"] is False
    assert log.names == ["ListWebACLs", "GetWebACL", "ListResourcesForWebACL"]


def test_waf_association_check_mode_writes_nothing(stubbed):
    stubbers, log = stubbed
    queue_acl_lookup(stubbers["wafv2"], associated=[])
    result = run_main(wafv2_resources.main, waf_args(), check_mode=True)
    assert not result.failed, result.data
    assert result["changed"] is True
    assert "AssociateWebACL" not in log.names


# ------------------------------------------------------------------ backup selection


def selection_args() -> dict[str, Any]:
    module, args = playbook_task(
        "data.yml",
        "PCI 12.10.1 | backup selection",
        data_backup_role={"iam_role": {"arn": ROLE_ARN}},
    )
    assert module == "amazon.aws.backup_selection"
    return args


STORED_CONDITIONS = {
    "StringEquals": [
        {"ConditionKey": "aws:ResourceTag/gearlift:backup", "ConditionValue": "true"},
        {"ConditionKey": "aws:ResourceTag/gearlift:environment", "ConditionValue": "production"},
    ],
    "StringLike": [],
    "StringNotEquals": [],
    "StringNotLike": [],
}


def queue_plan_lookup(backup: Stubber) -> None:
    backup.add_response(
        "list_backup_plans",
        {
            "BackupPlansList": [
                {
                    "BackupPlanArn": PLAN_ARN,
                    "BackupPlanId": PLAN_ID,
                    "BackupPlanName": NAME,
                    "CreationDate": WHEN,
                    "VersionId": "v1",
                }
            ]
        },
        {},
    )
    backup.add_response(
        "get_backup_plan",
        {
            "BackupPlan": {
                "BackupPlanName": NAME,
                "Rules": [
                    {
                        "RuleName": "daily",
                        "TargetBackupVaultName": NAME,
                        "ScheduleExpression": "cron(0 3 * * ? *)",
                        "Lifecycle": {"DeleteAfterDays": 35},
                    }
                ],
            },
            "BackupPlanArn": PLAN_ARN,
            "BackupPlanId": PLAN_ID,
            "VersionId": "v1",
        },
        {"BackupPlanId": PLAN_ID},
    )
    backup.add_response("list_tags", {"Tags": {"gearlift:environment": "production"}}, {"ResourceArn": PLAN_ARN})


def queue_selection_lookup(backup: Stubber, exists: bool) -> None:
    queue_plan_lookup(backup)
    listed = [
        {
            "SelectionId": SELECTION_ID,
            "SelectionName": f"{NAME}-tagged",
            "BackupPlanId": PLAN_ID,
            "CreationDate": WHEN,
            "IamRoleArn": ROLE_ARN,
        }
    ]
    backup.add_response(
        "list_backup_selections", {"BackupSelectionsList": listed if exists else []}, {"BackupPlanId": PLAN_ID}
    )
    if exists:
        backup.add_response(
            "get_backup_selection",
            {
                "BackupSelection": {
                    "SelectionName": f"{NAME}-tagged",
                    "IamRoleArn": ROLE_ARN,
                    "Resources": ["*"],
                    "ListOfTags": [],
                    "NotResources": [],
                    "Conditions": STORED_CONDITIONS,
                },
                "SelectionId": SELECTION_ID,
                "BackupPlanId": PLAN_ID,
                "CreationDate": WHEN,
            },
            {"BackupPlanId": PLAN_ID, "SelectionId": SELECTION_ID},
        )


def test_backup_selection_assigns_the_tagged_resources_then_stays(stubbed):
    stubbers, log = stubbed
    backup = stubbers["backup"]
    queue_selection_lookup(backup, exists=False)
    queue_plan_lookup(backup)
    backup.add_response(
        "create_backup_selection",
        {"SelectionId": SELECTION_ID, "BackupPlanId": PLAN_ID, "CreationDate": WHEN},
        {
            "BackupPlanId": PLAN_ID,
            "BackupSelection": {
                "SelectionName": f"{NAME}-tagged",
                "IamRoleArn": ROLE_ARN,
                "Resources": ["*"],
                "Conditions": STORED_CONDITIONS,
            },
        },
    )
    queue_selection_lookup(backup, exists=True)
    first = run_main(backup_selection.main, selection_args())
    assert not first.failed, first.data
    assert first["changed"] is True
    assert first["backup_selection"]["selection_id"] == SELECTION_ID

    log.calls.clear()
    queue_selection_lookup(backup, exists=True)
    queue_selection_lookup(backup, exists=True)
    second = run_main(backup_selection.main, selection_args())
    assert not second.failed, second.data
    assert second["changed"] is False
    assert "CreateBackupSelection" not in log.names and "DeleteBackupSelection" not in log.names


def test_backup_selection_check_mode_writes_nothing(stubbed):
    stubbers, log = stubbed
    backup = stubbers["backup"]
    queue_selection_lookup(backup, exists=False)
    queue_plan_lookup(backup)
    result = run_main(backup_selection.main, selection_args(), check_mode=True)
    assert not result.failed, result.data
    assert result["changed"] is True
    assert [n for n in log.names if not n.startswith(("List", "Get"))] == []


def test_playbook_tasks_are_the_ones_tested():
    """The rendered arguments are what a production inventory sends (no silent template holes)."""
    args = selection_args()
    assert args["selection_name"] == f"{NAME}-tagged"
    assert args["iam_role_arn"] == ROLE_ARN
    assert args["conditions"]["string_equals"][1]["condition_value"] == "production"
    waf = waf_args()
    assert (waf["name"], waf["scope"], waf["state"], waf["arn"]) == (NAME, "REGIONAL", "present", ALB_ARN)


def test_the_canonical_selection_option_name_would_send_no_selection_name(monkeypatch):
    """Why data.yml spells the option selection_name: with backup_selection_name the module
    asks for SelectionName=None, which botocore's parameter validation refuses - the request
    never leaves (its stubbed answer stays queued)."""
    dummy_aws_env(monkeypatch, REGION)
    log = CallLog()
    client = log.attach(boto3.client("backup", region_name=REGION))
    monkeypatch.setattr(
        AnsibleAWSModule,
        "client",
        lambda self, service, retry_decorator=None, **kw: RetryingBotoClientWrapper(client, retry_decorator),
    )
    with Stubber(client) as backup:
        queue_selection_lookup(backup, exists=False)
        queue_plan_lookup(backup)
        backup.add_response("create_backup_selection", {"SelectionId": SELECTION_ID, "BackupPlanId": PLAN_ID})
        args = selection_args()
        args["backup_selection_name"] = args.pop("selection_name")
        result = run_main(backup_selection.main, args)
        assert result.failed
        assert "Failed to create selection" in result["msg"]
        assert "SelectionName" in result["msg"]
        [asked] = log.params("CreateBackupSelection")
        assert asked["BackupSelection"]["SelectionName"] is None
        with pytest.raises(AssertionError, match="1 responses remaining"):
            backup.assert_no_pending_responses()


def test_a_missing_web_acl_is_a_silent_no_op_in_the_collection_module(stubbed):
    """Why edge.yml creates the ACL in the task right before: wafv2_resources reports no change
    (and associates nothing) when the named web ACL does not exist."""
    stubbers, log = stubbed
    stubbers["wafv2"].add_response("list_web_acls", {"WebACLs": []}, {"Scope": "REGIONAL", "Limit": 100})
    result: Result = run_main(wafv2_resources.main, waf_args())
    assert not result.failed
    assert result["changed"] is False
    assert log.names == ["ListWebACLs"]


# ------------------------------------------------------------------ RDS event subscription update

TOPIC_ARN = f"arn:aws:sns:{REGION}:{ACCOUNT}:{NAME}-alarms"
OLD_TOPIC_ARN = f"arn:aws:sns:{REGION}:{ACCOUNT}:old-alarms"


def rds_events_args() -> dict[str, Any]:
    module, args = playbook_task(
        "data.yml",
        "PCI 10.7.1 | RDS events of the database",
        alarm_topic={"sns_arn": TOPIC_ARN},
        gearlift_tags={"gearlift:project": "shop"},
    )
    assert module == "gearlift.platform.rds_event_subscription"
    return args


def stored_subscription(topic: str, categories: list[str], sources: list[str]) -> dict[str, Any]:
    return {
        "EventSubscriptionsList": [
            {
                "CustomerAwsId": ACCOUNT,
                "CustSubscriptionId": f"{NAME}-db-events",
                "SnsTopicArn": topic,
                "Status": "active",
                "SourceType": "db-instance",
                "SourceIdsList": sources,
                "EventCategoriesList": categories,
                "Enabled": True,
            }
        ]
    }


def test_rds_event_subscription_drift_is_modified_in_place(stubbed):
    """A subscription changed by hand (other topic, fewer categories, another source) is put back
    with ModifyEventSubscription and the source id calls; nothing is deleted or recreated."""
    stubbers, log = stubbed
    rds = stubbers["rds"]
    args = rds_events_args()
    wanted = sorted(args["event_categories"])
    assert {"failure", "failover", "maintenance", "low storage"} <= set(wanted)
    rds.add_response(
        "describe_event_subscriptions",
        stored_subscription(OLD_TOPIC_ARN, ["failure"], ["someone-elses-db"]),
        {"SubscriptionName": f"{NAME}-db-events"},
    )
    rds.add_response(
        "modify_event_subscription",
        {},
        {
            "SubscriptionName": f"{NAME}-db-events",
            "SnsTopicArn": TOPIC_ARN,
            "SourceType": "db-instance",
            "EventCategories": wanted,
            "Enabled": True,
        },
    )
    rds.add_response(
        "add_source_identifier_to_subscription",
        {},
        {"SubscriptionName": f"{NAME}-db-events", "SourceIdentifier": NAME},
    )
    rds.add_response(
        "remove_source_identifier_from_subscription",
        {},
        {"SubscriptionName": f"{NAME}-db-events", "SourceIdentifier": "someone-elses-db"},
    )
    result = run_main(rds_event_subscription.main, args, diff=True)
    assert not result.failed, result.data
    assert result["changed"] is True
    assert result["diff"]["before"]["sns_topic_arn"] == OLD_TOPIC_ARN
    assert result["subscription"]["source_ids"] == [NAME]
    assert "CreateEventSubscription" not in log.names and "DeleteEventSubscription" not in log.names

    log.calls.clear()
    rds.add_response(
        "describe_event_subscriptions",
        stored_subscription(TOPIC_ARN, list(reversed(wanted)), [NAME]),
        {"SubscriptionName": f"{NAME}-db-events"},
    )
    again = run_main(rds_event_subscription.main, args)
    assert again["changed"] is False
    assert log.names == ["DescribeEventSubscriptions"]


def test_rds_event_subscription_drift_in_check_mode_writes_nothing(stubbed):
    stubbers, log = stubbed
    stubbers["rds"].add_response(
        "describe_event_subscriptions",
        stored_subscription(TOPIC_ARN, ["failure"], [NAME]),
        {"SubscriptionName": f"{NAME}-db-events"},
    )
    result = run_main(rds_event_subscription.main, rds_events_args(), check_mode=True)
    assert not result.failed, result.data
    assert result["changed"] is True
    assert log.names == ["DescribeEventSubscriptions"]
