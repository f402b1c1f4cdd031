#!/usr/bin/python
# Copyright: gearlift maintainers
# Apache License 2.0 (see galaxy.yml)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: rds_event_subscription
short_description: RDS event notification subscription to an SNS topic
version_added: 0.1.0
description:
  - Creates, updates or deletes an Amazon RDS event subscription, which no amazon.aws or
    community.aws module manages (Security Hub RDS.19 - RDS.22, PCI DSS 10.7.1).
  - Idempotent - the topic, source type, categories, sources and the enabled flag are compared
    with what RDS reports; only what differs is changed. Check mode makes read calls only; diff mode
    shows the subscription before and after.
author:
  - gearlift maintainers (!UNKNOWN)
options:
  name:
    description: Name of the subscription.
    type: str
    required: true
  state:
    description: Whether the subscription exists.
    type: str
    choices: [present, absent]
    default: present
  sns_topic_arn:
    description: Topic that receives the events. Required with O(state=present).
    type: str
  source_type:
    description: Kind of source.
    type: str
    choices:
      - db-instance
      - db-cluster
      - db-parameter-group
      - db-security-group
      - db-snapshot
      - db-cluster-snapshot
      - db-proxy
    default: db-instance
  event_categories:
    description: Event categories (for example C(failure), C(maintenance)); empty means all categories.
    type: list
    elements: str
    default: []
  source_ids:
    description: Identifiers of the sources; empty means every source of O(source_type).
    type: list
    elements: str
    default: []
  enabled:
    description: Whether notifications are sent.
    type: bool
    default: true
  tags:
    description: Tags set when the subscription is created.
    type: dict
    default: {}
notes:
  - An encrypted topic needs C(kms:GenerateDataKey*) and C(kms:Decrypt) for the
    C(events.rds.amazonaws.com) principal in its key's policy.
  - IAM permissions - C(rds:DescribeEventSubscriptions), C(rds:CreateEventSubscription),
    C(rds:ModifyEventSubscription), C(rds:AddSourceIdentifierToSubscription),
    C(rds:RemoveSourceIdentifierFromSubscription), C(rds:DeleteEventSubscription).
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: Database failures and maintenance to the alarm topic
  gearlift.platform.rds_event_subscription:
    name: shop-production-db-events
    sns_topic_arn: arn:aws:sns:eu-west-1:123456789012:shop-production-alarms
    source_type: db-instance
    event_categories: [failure, failover, maintenance, configuration change, low storage]
    source_ids: [shop-production]
"""

RETURN = r"""
subscription:
  description: The subscription after the run (empty when absent).
  returned: always
  type: dict
  sample:
    sns_topic_arn: arn:aws:sns:eu-west-1:123456789012:shop-production-alarms
    source_type: db-instance
    event_categories: [failure, maintenance]
    source_ids: [shop-production]
    enabled: true
"""

from typing import Any

try:
    import botocore
except ImportError:  # handled by AnsibleAWSModule
    pass

from ansible_collections.amazon.aws.plugins.module_utils.botocore import is_boto3_error_code
from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry
from ansible_collections.amazon.aws.plugins.module_utils.tagging import ansible_dict_to_boto3_tag_list


def summarize(found: dict[str, Any] | None) -> dict[str, Any]:
    if not found:
        return {}
    return {
        "sns_topic_arn": found.get("SnsTopicArn", ""),
        "source_type": found.get("SourceType", ""),
        "event_categories": sorted(found.get("EventCategoriesList") or []),
        "source_ids": sorted(found.get("SourceIdsList") or []),
        "enabled": bool(found.get("Enabled", False)),
    }


def main() -> None:
    module = AnsibleAWSModule(
        argument_spec=dict(
            name=dict(type="str", required=True),
            state=dict(type="str", choices=["present", "absent"], default="present"),
            sns_topic_arn=dict(type="str"),
            source_type=dict(
                type="str",
                default="db-instance",
                choices=[
                    "db-instance",
                    "db-cluster",
                    "db-parameter-group",
                    "db-security-group",
                    "db-snapshot",
                    "db-cluster-snapshot",
                    "db-proxy",
                ],
            ),
            event_categories=dict(type="list", elements="str", default=[]),
            source_ids=dict(type="list", elements="str", default=[]),
            enabled=dict(type="bool", default=True),
            tags=dict(type="dict", default={}),
        ),
        required_if=[("state", "present", ["sns_topic_arn"])],
        supports_check_mode=True,
    )
    p = module.params
    name = p["name"]
    if p["state"] == "present" and (not p["sns_topic_arn"].startswith("arn:") or ":sns:" not in p["sns_topic_arn"]):
        module.fail_json(
            msg=f"rds_event_subscription: sns_topic_arn must be an SNS topic ARN, got {p['sns_topic_arn']!r}"
        )
    client = module.client("rds", retry_decorator=AWSRetry.jittered_backoff())
    try:
        found = client.describe_event_subscriptions(aws_retry=True, SubscriptionName=name)["EventSubscriptionsList"]
    except is_boto3_error_code("SubscriptionNotFound"):
        found = []
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:  # pylint: disable=duplicate-except
        module.fail_json_aws(e, msg=f"Could not read the RDS event subscription {name}")
    before = summarize(found[0] if found else None)

    if p["state"] == "absent":
        changed = bool(before)
        if changed and not module.check_mode:
            try:
                client.delete_event_subscription(aws_retry=True, SubscriptionName=name)
            except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
                module.fail_json_aws(e, msg=f"Could not delete the RDS event subscription {name}")
        module.exit_json(changed=changed, subscription={}, diff={"before": before, "after": {}})

    after = {
        "sns_topic_arn": p["sns_topic_arn"],
        "source_type": p["source_type"],
        "event_categories": sorted(set(p["event_categories"])),
        "source_ids": sorted(set(p["source_ids"])),
        "enabled": p["enabled"],
    }
    changed = before != after
    if changed and not module.check_mode:
        try:
            if not before:
                request: dict[str, Any] = dict(
                    SubscriptionName=name,
                    SnsTopicArn=after["sns_topic_arn"],
                    SourceType=after["source_type"],
                    EventCategories=after["event_categories"],
                    Enabled=after["enabled"],
                )
                if after["source_ids"]:
                    request["SourceIds"] = after["source_ids"]
                if p["tags"]:
                    request["Tags"] = ansible_dict_to_boto3_tag_list(p["tags"])
                client.create_event_subscription(aws_retry=True, **request)
            else:
                keys = ("sns_topic_arn", "source_type", "event_categories", "enabled")
                if any(before[k] != after[k] for k in keys):
                    client.modify_event_subscription(
                        aws_retry=True,
                        SubscriptionName=name,
                        SnsTopicArn=after["sns_topic_arn"],
                        SourceType=after["source_type"],
                        EventCategories=after["event_categories"],
                        Enabled=after["enabled"],
                    )
                for source in sorted(set(after["source_ids"]) - set(before["source_ids"])):
                    client.add_source_identifier_to_subscription(
                        aws_retry=True, SubscriptionName=name, SourceIdentifier=source
                    )
                for source in sorted(set(before["source_ids"]) - set(after["source_ids"])):
                    client.remove_source_identifier_from_subscription(
                        aws_retry=True, SubscriptionName=name, SourceIdentifier=source
                    )
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
            module.fail_json_aws(e, msg=f"Could not write the RDS event subscription {name}")
    module.exit_json(changed=changed, subscription=after, diff={"before": before, "after": after})


if __name__ == "__main__":
    main()
