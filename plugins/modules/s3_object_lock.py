#!/usr/bin/python
# Copyright: gearlift maintainers
# Apache License 2.0 (see galaxy.yml)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: s3_object_lock
short_description: S3 Object Lock with a default retention, also on an existing bucket
version_added: 0.1.0
description:
  - Switches S3 Object Lock on for a versioned bucket and sets its default retention (mode and days)
    with C(PutObjectLockConfiguration). AWS allows this on an existing bucket; C(amazon.aws.s3_bucket)
    only at creation, so a trail bucket made before Object Lock was wanted stays unlocked with it.
  - Object Lock cannot be switched off again, by AWS's design; this module never tries.
  - Idempotent - written only when the lock or its default retention differs. Check mode makes read
    calls only; diff mode shows the configuration before and after.
author:
  - gearlift maintainers (!UNKNOWN)
options:
  bucket:
    description: The bucket; versioning must be on (C(amazon.aws.s3_bucket) with C(versioning=true) first).
    type: str
    required: true
  mode:
    description:
      - C(GOVERNANCE) - users with C(s3:BypassGovernanceRetention) can still delete early;
        C(COMPLIANCE) - nobody can, not even the account root, until the retention ends.
    type: str
    choices: [GOVERNANCE, COMPLIANCE]
    default: GOVERNANCE
  days:
    description: Default retention of each new object version, in days (1-36500).
    type: int
    required: true
notes:
  - IAM permissions - C(s3:GetBucketObjectLockConfiguration), C(s3:PutBucketObjectLockConfiguration).
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: Lock the trail bucket's objects for a year (governance)
  gearlift.platform.s3_object_lock:
    bucket: shop-production-trail-123456789012
    mode: GOVERNANCE
    days: 365
"""

RETURN = r"""
object_lock:
  description: The bucket's Object Lock configuration after the run.
  returned: always
  type: dict
  sample: {ObjectLockEnabled: Enabled, Rule: {DefaultRetention: {Mode: GOVERNANCE, Days: 365}}}
"""

try:
    import botocore
except ImportError:  # handled by AnsibleAWSModule
    pass

from ansible_collections.amazon.aws.plugins.module_utils.botocore import is_boto3_error_code
from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry, RetryingBotoClientWrapper
from ansible_collections.gearlift.platform.plugins.module_utils.s3_controls import (
    ControlError,
    lock_configuration,
    lock_differs,
)


def main() -> None:
    module = AnsibleAWSModule(
        argument_spec=dict(
            bucket=dict(type="str", required=True),
            mode=dict(type="str", choices=["GOVERNANCE", "COMPLIANCE"], default="GOVERNANCE"),
            days=dict(type="int", required=True),
        ),
        supports_check_mode=True,
    )
    bucket = module.params["bucket"]
    try:
        desired = lock_configuration(module.params["mode"], module.params["days"])
    except ControlError as e:
        module.fail_json(msg=f"s3_object_lock: {e}")
    client = RetryingBotoClientWrapper(module.client("s3"), AWSRetry.jittered_backoff())
    try:
        current = client.get_object_lock_configuration(aws_retry=True, Bucket=bucket)["ObjectLockConfiguration"]
    except is_boto3_error_code("ObjectLockConfigurationNotFoundError"):
        current = None
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:  # pylint: disable=duplicate-except
        module.fail_json_aws(e, msg=f"Could not read the Object Lock configuration of bucket {bucket}")
    changed = lock_differs(current, desired)
    if changed and not module.check_mode:
        try:
            client.put_object_lock_configuration(aws_retry=True, Bucket=bucket, ObjectLockConfiguration=desired)
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
            module.fail_json_aws(
                e, msg=f"Could not set Object Lock on bucket {bucket} (is versioning on? Object Lock needs it)"
            )
    module.exit_json(changed=changed, object_lock=desired, diff={"before": current or {}, "after": desired})


if __name__ == "__main__":
    main()
