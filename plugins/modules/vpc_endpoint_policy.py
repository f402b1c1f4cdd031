#!/usr/bin/python
# Copyright: gearlift maintainers
# Apache License 2.0 (see galaxy.yml)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: vpc_endpoint_policy
short_description: The policy of an existing VPC endpoint
version_added: 0.1.0
description:
  - Sets the policy of an existing VPC endpoint (C(ModifyVpcEndpoint) with C(PolicyDocument)).
    C(amazon.aws.ec2_vpc_endpoint) takes a policy only when it creates the endpoint, so an endpoint made
    earlier keeps AWS's full-access default.
  - Idempotent - two policies that grant the same thing in another order or spelling are equal. Check
    mode makes read calls only; diff mode shows the policy before and after.
author:
  - gearlift maintainers (!UNKNOWN)
options:
  vpc_endpoint_id:
    description: The endpoint (C(vpce-...)), for example from C(amazon.aws.ec2_vpc_endpoint)'s result.
    type: str
    required: true
  policy:
    description: The policy document (JSON).
    type: json
    required: true
notes:
  - IAM permissions - C(ec2:DescribeVpcEndpoints), C(ec2:ModifyVpcEndpoint).
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: The S3 gateway endpoint reaches only the account's buckets
  gearlift.platform.vpc_endpoint_policy:
    vpc_endpoint_id: "{{ s3_endpoint.result.vpc_endpoint_id }}"
    policy: "{{ lookup('ansible.builtin.template', 's3-endpoint-policy.json.j2') }}"
"""

RETURN = r"""
policy:
  description: The endpoint's policy after the run.
  returned: always
  type: dict
"""

import json

try:
    import botocore
except ImportError:  # handled by AnsibleAWSModule
    pass

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry, RetryingBotoClientWrapper
from ansible_collections.gearlift.platform.plugins.module_utils.s3_controls import (
    ControlError,
    canonical_policy,
    policy_differs,
)


def main() -> None:
    module = AnsibleAWSModule(
        argument_spec=dict(
            vpc_endpoint_id=dict(type="str", required=True),
            policy=dict(type="json", required=True),
        ),
        supports_check_mode=True,
    )
    endpoint = module.params["vpc_endpoint_id"]
    try:
        desired = json.loads(module.params["policy"])
        canonical_policy(desired)
    except (ValueError, ControlError) as e:
        module.fail_json(msg=f"vpc_endpoint_policy: the policy is not a policy document: {e}")
    client = RetryingBotoClientWrapper(module.client("ec2"), AWSRetry.jittered_backoff())
    try:
        found = client.describe_vpc_endpoints(aws_retry=True, VpcEndpointIds=[endpoint])["VpcEndpoints"]
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
        module.fail_json_aws(e, msg=f"Could not read VPC endpoint {endpoint}")
    if not found:
        module.fail_json(msg=f"vpc_endpoint_policy: no VPC endpoint {endpoint}")
    current = found[0].get("PolicyDocument") or ""
    changed = policy_differs(current, desired)
    if changed and not module.check_mode:
        try:
            client.modify_vpc_endpoint(aws_retry=True, VpcEndpointId=endpoint, PolicyDocument=json.dumps(desired))
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
            module.fail_json_aws(e, msg=f"Could not set the policy of VPC endpoint {endpoint}")
    before = json.loads(current) if current else {}
    module.exit_json(changed=changed, policy=desired, diff={"before": before, "after": desired})


if __name__ == "__main__":
    main()
