#!/usr/bin/python
# Copyright: gearlift maintainers
# Apache License 2.0 (see galaxy.yml)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: wafv2_logging
short_description: Log a WAFv2 web ACL's traffic, with sensitive headers redacted
version_added: 0.1.0
description:
  - Puts or deletes the logging configuration of an AWS WAFv2 web ACL (C(PutLoggingConfiguration)),
    which the bundled collections have no module for.
  - The destination is a CloudWatch Logs log group whose name starts with C(aws-waf-logs-), a
    Firehose stream or an S3 bucket, given by ARN. Create the log group first (KMS key, retention).
  - Header values that carry credentials are redacted before they reach the log - by default
    C(authorization) and C(cookie), which hold the shop's session and would otherwise sit in a log
    kept for a year (PCI DSS 3.3 / 10.3).
  - Idempotent - the configuration is written only when its destinations, redacted headers or
    filter differ. Check mode makes read calls only; diff mode shows the configuration before and after.
author:
  - gearlift maintainers (!UNKNOWN)
options:
  web_acl_arn:
    description: ARN of the web ACL.
    type: str
    required: true
  state:
    description: V(present) logs the web ACL's traffic; V(absent) stops logging it.
    type: str
    choices: [present, absent]
    default: present
  destinations:
    description:
      - ARNs the logs are delivered to (WAF accepts one). For CloudWatch Logs the ARN of the log group
        without the trailing C(:*). Required when O(state=present).
    type: list
    elements: str
  redacted_headers:
    description: Request headers whose values are replaced by C(REDACTED) in the log (case-insensitive).
    type: list
    elements: str
    default: [authorization, cookie]
  log_only_actions:
    description:
      - Keep only requests whose terminating action is one of these (a logging filter); V([]) logs all.
    type: list
    elements: str
    choices: [ALLOW, BLOCK, COUNT, CAPTCHA, CHALLENGE, EXCLUDED_AS_COUNT]
    default: []
notes:
  - IAM permissions - C(wafv2:GetLoggingConfiguration), C(wafv2:PutLoggingConfiguration),
    C(wafv2:DeleteLoggingConfiguration); for a CloudWatch Logs destination also
    C(logs:CreateLogDelivery), C(logs:PutResourcePolicy) and C(logs:DescribeResourcePolicies)
    (WAF adds the log group's resource policy for C(delivery.logs.amazonaws.com)).
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: Log the shop's web ACL to CloudWatch Logs
  gearlift.platform.wafv2_logging:
    web_acl_arn: "{{ waf.arn }}"
    destinations:
      - arn:aws:logs:eu-west-1:123456789012:log-group:aws-waf-logs-shop-production
    region: eu-west-1

- name: Keep only blocked and counted requests
  gearlift.platform.wafv2_logging:
    web_acl_arn: "{{ waf.arn }}"
    destinations: ["{{ waf_log_group_arn }}"]
    log_only_actions: [BLOCK, COUNT]
"""

RETURN = r"""
logging_configuration:
  description: The logging configuration after the run (empty after O(state=absent)).
  returned: always
  type: dict
  sample:
    destinations: [arn:aws:logs:eu-west-1:123456789012:log-group:aws-waf-logs-shop-production]
    redacted_headers: [authorization, cookie]
    log_only_actions: []
"""

from typing import Any

try:
    import botocore
except ImportError:  # handled by AnsibleAWSModule
    pass

from ansible_collections.amazon.aws.plugins.module_utils.botocore import is_boto3_error_code
from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry


def normalise(config: dict[str, Any] | None) -> dict[str, Any]:
    """The compared view of a LoggingConfiguration (order and header case do not matter)."""
    if not config:
        return {}
    headers = sorted(
        f["SingleHeader"]["Name"].lower() for f in config.get("RedactedFields") or [] if "SingleHeader" in f
    )
    actions: list[str] = []
    for flt in (config.get("LoggingFilter") or {}).get("Filters") or []:
        for cond in flt.get("Conditions") or []:
            action = (cond.get("ActionCondition") or {}).get("Action")
            if action:
                actions.append(action)
    return {
        "destinations": sorted(config.get("LogDestinationConfigs") or []),
        "redacted_headers": headers,
        "log_only_actions": sorted(set(actions)),
    }


def build(params: dict[str, Any]) -> dict[str, Any]:
    config: dict[str, Any] = {
        "ResourceArn": params["web_acl_arn"],
        "LogDestinationConfigs": list(params["destinations"]),
        "RedactedFields": [{"SingleHeader": {"Name": h.lower()}} for h in sorted(set(params["redacted_headers"]))],
    }
    if params["log_only_actions"]:
        config["LoggingFilter"] = {
            "DefaultBehavior": "DROP",
            "Filters": [
                {
                    "Behavior": "KEEP",
                    "Requirement": "MEETS_ANY",
                    "Conditions": [{"ActionCondition": {"Action": a}} for a in sorted(set(params["log_only_actions"]))],
                }
            ],
        }
    return config


def check_params(params: dict[str, Any]) -> list[str]:
    errors = []
    if params["state"] == "present":
        destinations = params["destinations"] or []
        if len(destinations) != 1:
            errors.append(f"destinations must name exactly one ARN (WAF accepts one), got {len(destinations)}")
        for arn in destinations:
            if not arn.startswith("arn:"):
                errors.append(f"destinations must be ARNs, got {arn!r}")
            elif ":log-group:" in arn and not arn.split(":log-group:", 1)[1].startswith("aws-waf-logs-"):
                errors.append(f"a CloudWatch Logs destination must be a log group named aws-waf-logs-*, got {arn!r}")
            elif arn.endswith(":*"):
                errors.append(f"give the log group ARN without the trailing ':*', got {arn!r}")
    if not params["web_acl_arn"].startswith("arn:") or "/webacl/" not in params["web_acl_arn"]:
        errors.append(f"web_acl_arn must be a WAFv2 web ACL ARN, got {params['web_acl_arn']!r}")
    return errors


def main() -> None:
    module = AnsibleAWSModule(
        argument_spec=dict(
            web_acl_arn=dict(type="str", required=True),
            state=dict(type="str", choices=["present", "absent"], default="present"),
            destinations=dict(type="list", elements="str"),
            redacted_headers=dict(type="list", elements="str", default=["authorization", "cookie"], no_log=False),
            log_only_actions=dict(
                type="list",
                elements="str",
                default=[],
                choices=["ALLOW", "BLOCK", "COUNT", "CAPTCHA", "CHALLENGE", "EXCLUDED_AS_COUNT"],
            ),
        ),
        required_if=[("state", "present", ["destinations"])],
        supports_check_mode=True,
    )
    params = module.params
    errors = check_params(params)
    if errors:
        module.fail_json(msg="wafv2_logging: " + "; ".join(errors))

    client = module.client("wafv2", retry_decorator=AWSRetry.jittered_backoff())
    arn = params["web_acl_arn"]
    try:
        current = client.get_logging_configuration(aws_retry=True, ResourceArn=arn)["LoggingConfiguration"]
    except is_boto3_error_code("WAFNonexistentItemException"):
        current = None
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:  # pylint: disable=duplicate-except
        module.fail_json_aws(e, msg=f"Could not read the logging configuration of {arn}")

    before = normalise(current)
    wanted = build(params) if params["state"] == "present" else None
    after = normalise(wanted)
    changed = before != after
    if changed and not module.check_mode:
        try:
            if wanted is None:
                client.delete_logging_configuration(aws_retry=True, ResourceArn=arn)
            else:
                client.put_logging_configuration(aws_retry=True, LoggingConfiguration=wanted)
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
            module.fail_json_aws(e, msg=f"Could not write the logging configuration of {arn}")
    module.exit_json(changed=changed, logging_configuration=after, diff={"before": before, "after": after})


if __name__ == "__main__":
    main()
