#!/usr/bin/python
# Copyright: gearlift contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Converge VPC flow logs to CloudWatch Logs (the collections have no module for it)."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: vpc_flow_logs
short_description: Ensure a VPC's flow logs go to a CloudWatch Logs group
version_added: 0.1.0
description:
  - Creates (or removes) one flow log for a VPC, delivered to CloudWatch Logs through an IAM role.
  - Idempotent; an existing flow log with the same destination and traffic type is left alone.
    One that differs is replaced (flow logs cannot be modified in place).
  - Supports check mode and diff mode.
options:
  vpc_id:
    description: The VPC whose traffic is logged.
    type: str
    required: true
  log_group_name:
    description: CloudWatch Logs group that receives the records.
    type: str
    required: true
  deliver_logs_permission_arn:
    description: ARN of the IAM role the flow-logs service assumes to write to the group.
    type: str
    required: true
  traffic_type:
    description: Which traffic to record.
    type: str
    choices: [ACCEPT, REJECT, ALL]
    default: ALL
  max_aggregation_interval:
    description: Seconds over which records are aggregated.
    type: int
    choices: [60, 600]
    default: 600
  tags:
    description: Tags for the flow log.
    type: dict
    default: {}
  state:
    description: Whether the flow log should exist.
    type: str
    choices: [present, absent]
    default: present
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
author:
  - gearlift contributors (!UNKNOWN)
"""

EXAMPLES = r"""
- name: Flow logs for the shop VPC
  gearlift.platform.vpc_flow_logs:
    vpc_id: "{{ vpc.vpc.id }}"
    log_group_name: /gearlift/shop/production/vpc-flow-logs
    deliver_logs_permission_arn: "{{ flow_logs_role.iam_role.arn }}"
"""

RETURN = r"""
flow_log_id:
  description: ID of the flow log (absent after state=absent).
  returned: when state is present
  type: str
  sample: fl-0123456789abcdef0
"""

from typing import Any

try:
    import botocore
except ImportError:  # handled by AnsibleAWSModule
    pass

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry
from ansible_collections.amazon.aws.plugins.module_utils.tagging import ansible_dict_to_boto3_tag_list


def _existing(client: Any, vpc_id: str) -> list[dict[str, Any]]:
    result = client.describe_flow_logs(aws_retry=True, Filters=[{"Name": "resource-id", "Values": [vpc_id]}])
    return [f for f in result.get("FlowLogs", []) if f.get("FlowLogStatus", "ACTIVE") == "ACTIVE"]


def _matches(flow: dict[str, Any], params: dict[str, Any]) -> bool:
    return (
        flow.get("LogGroupName") == params["log_group_name"]
        and flow.get("TrafficType") == params["traffic_type"]
        and flow.get("DeliverLogsPermissionArn") == params["deliver_logs_permission_arn"]
        and flow.get("LogDestinationType", "cloud-watch-logs") == "cloud-watch-logs"
    )


def main() -> None:
    argument_spec = dict(
        vpc_id=dict(type="str", required=True),
        log_group_name=dict(type="str", required=True),
        deliver_logs_permission_arn=dict(type="str", required=True),
        traffic_type=dict(type="str", choices=["ACCEPT", "REJECT", "ALL"], default="ALL"),
        max_aggregation_interval=dict(type="int", choices=[60, 600], default=600),
        tags=dict(type="dict", default={}),
        state=dict(type="str", choices=["present", "absent"], default="present"),
    )
    module = AnsibleAWSModule(argument_spec=argument_spec, supports_check_mode=True)
    params = module.params
    client = module.client("ec2", retry_decorator=AWSRetry.jittered_backoff())
    try:
        flows = _existing(client, params["vpc_id"])
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
        module.fail_json_aws(exc, msg="Could not describe flow logs")

    keep = [f for f in flows if _matches(f, params)] if params["state"] == "present" else []
    stale = [
        f for f in flows if f not in keep and f.get("LogDestinationType", "cloud-watch-logs") == "cloud-watch-logs"
    ]
    create = params["state"] == "present" and not keep
    changed = bool(stale) or create
    diff = {
        "before": {"flow_logs": [f.get("LogGroupName") for f in flows]},
        "after": {"flow_logs": [params["log_group_name"]] if params["state"] == "present" else []},
    }
    if module.check_mode or not changed:
        result: dict[str, Any] = {"changed": changed, "diff": diff}
        if keep:
            result["flow_log_id"] = keep[0]["FlowLogId"]
        module.exit_json(**result)

    try:
        if stale:
            client.delete_flow_logs(aws_retry=True, FlowLogIds=[f["FlowLogId"] for f in stale])
        flow_id = keep[0]["FlowLogId"] if keep else None
        if create:
            spec: dict[str, Any] = dict(
                ResourceIds=[params["vpc_id"]],
                ResourceType="VPC",
                TrafficType=params["traffic_type"],
                LogDestinationType="cloud-watch-logs",
                LogGroupName=params["log_group_name"],
                DeliverLogsPermissionArn=params["deliver_logs_permission_arn"],
                MaxAggregationInterval=params["max_aggregation_interval"],
            )
            if params["tags"]:
                spec["TagSpecifications"] = [
                    {"ResourceType": "vpc-flow-log", "Tags": ansible_dict_to_boto3_tag_list(params["tags"])}
                ]
            created = client.create_flow_logs(aws_retry=True, **spec)
            if created.get("Unsuccessful"):
                module.fail_json(msg="Flow log creation failed", unsuccessful=created["Unsuccessful"])
            flow_id = created["FlowLogIds"][0]
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
        module.fail_json_aws(exc, msg="Could not converge flow logs")
    module.exit_json(changed=True, diff=diff, flow_log_id=flow_id)


if __name__ == "__main__":
    main()
