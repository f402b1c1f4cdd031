#!/usr/bin/python
# Copyright: gearlift maintainers
# Apache License 2.0 (see galaxy.yml)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: sns_topic_encryption
short_description: Server-side encryption of an SNS topic with a KMS key
version_added: 0.1.0
description:
  - Sets the C(KmsMasterKeyId) attribute of an existing Amazon SNS topic, which
    C(community.aws.sns_topic) does not manage (Security Hub SNS.1).
  - Idempotent - the attribute is written only when it differs. Check mode makes read calls only;
    diff mode shows the key before and after.
author:
  - gearlift maintainers (!UNKNOWN)
options:
  topic_arn:
    description: ARN of the topic (for example from C(community.aws.sns_topic)'s C(sns_arn)).
    type: str
    required: true
  kms_key_id:
    description:
      - The KMS key, as a key ARN, key id, alias name (C(alias/...)) or alias ARN. Give it the way
        you want it stored - SNS returns the value as written, and a different spelling of the same
        key counts as a change.
      - An empty string turns server-side encryption off.
    type: str
    required: true
notes:
  - Services that publish to the topic need the key - CloudWatch alarms need C(kms:GenerateDataKey*)
    and C(kms:Decrypt) for the C(cloudwatch.amazonaws.com) principal in the key policy.
  - IAM permissions - C(sns:GetTopicAttributes), C(sns:SetTopicAttributes).
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: Alarm topic
  community.aws.sns_topic:
    name: shop-production-alarms
  register: topic

- name: Encrypt the alarm topic with the logs key
  gearlift.platform.sns_topic_encryption:
    topic_arn: "{{ topic.sns_arn }}"
    kms_key_id: arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab
"""

RETURN = r"""
kms_key_id:
  description: The topic's KMS key after the run (empty when not encrypted).
  returned: always
  type: str
  sample: arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab
"""

try:
    import botocore
except ImportError:  # handled by AnsibleAWSModule
    pass

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry


def main() -> None:
    module = AnsibleAWSModule(
        argument_spec=dict(
            topic_arn=dict(type="str", required=True),
            kms_key_id=dict(type="str", required=True, no_log=False),
        ),
        supports_check_mode=True,
    )
    arn = module.params["topic_arn"]
    wanted = module.params["kms_key_id"].strip()
    if not arn.startswith("arn:") or ":sns:" not in arn:
        module.fail_json(msg=f"sns_topic_encryption: topic_arn must be an SNS topic ARN, got {arn!r}")
    client = module.client("sns", retry_decorator=AWSRetry.jittered_backoff())
    try:
        attributes = client.get_topic_attributes(aws_retry=True, TopicArn=arn)["Attributes"]
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
        module.fail_json_aws(e, msg=f"Could not read the attributes of {arn}")
    current = attributes.get("KmsMasterKeyId", "")
    changed = current != wanted
    if changed and not module.check_mode:
        try:
            client.set_topic_attributes(
                aws_retry=True, TopicArn=arn, AttributeName="KmsMasterKeyId", AttributeValue=wanted
            )
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
            module.fail_json_aws(e, msg=f"Could not set the KMS key of {arn}")
    module.exit_json(
        changed=changed, kms_key_id=wanted, diff={"before": {"kms_key_id": current}, "after": {"kms_key_id": wanted}}
    )


if __name__ == "__main__":
    main()
