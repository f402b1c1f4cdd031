#!/usr/bin/python
# Copyright: gearlift maintainers
# Apache License 2.0 (see galaxy.yml)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: s3_account_public_access_block
short_description: Account-level S3 Block Public Access
version_added: 0.1.0
description:
  - Sets the four account-level S3 Block Public Access switches (S3 Control
    C(PutPublicAccessBlock)), which no amazon.aws or community.aws module manages
    (Security Hub S3.1, PCI DSS 1.4.4 / 1.3.1).
  - Idempotent - written only when a switch differs. Check mode makes read calls only;
    diff mode shows the switches before and after.
  - Turning a switch off is refused unless O(allow_public_access=true).
author:
  - gearlift maintainers (!UNKNOWN)
options:
  account_id:
    description: The account (for example from C(amazon.aws.aws_caller_info)'s C(account)).
    type: str
    required: true
  block_public_acls:
    description: Reject requests that set public ACLs.
    type: bool
    default: true
  ignore_public_acls:
    description: Ignore public ACLs on buckets and objects.
    type: bool
    default: true
  block_public_policy:
    description: Reject bucket policies that grant public access.
    type: bool
    default: true
  restrict_public_buckets:
    description: Restrict access to buckets with public policies to AWS services and the account.
    type: bool
    default: true
  allow_public_access:
    description: Override the guard that refuses to turn any switch off.
    type: bool
    default: false
notes:
  - With a custom endpoint - O(endpoint_url), or C(AWS_ENDPOINT_URL) or C(AWS_ENDPOINT_URL_S3_CONTROL) in
    the environment, as with an emulator or a proxy - the account id that the S3 Control endpoint rules
    put in front of the host name is taken off again (an emulator's address cannot resolve it). Against
    AWS's own endpoints it stays, as S3 Control expects.
  - IAM permissions - C(s3:GetAccountPublicAccessBlock), C(s3:PutAccountPublicAccessBlock).
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: Read the account id
  amazon.aws.aws_caller_info:
  register: caller

- name: Block public access to S3 for the whole account
  gearlift.platform.s3_account_public_access_block:
    account_id: "{{ caller.account }}"
"""

RETURN = r"""
public_access_block:
  description: The account's switches after the run.
  returned: always
  type: dict
  sample: {block_public_acls: true, ignore_public_acls: true, block_public_policy: true, restrict_public_buckets: true}
"""

import functools
import os
from typing import Any

try:
    import botocore
except ImportError:  # handled by AnsibleAWSModule
    pass

from ansible_collections.amazon.aws.plugins.module_utils.botocore import is_boto3_error_code
from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry, RetryingBotoClientWrapper

SWITCHES = {
    "block_public_acls": "BlockPublicAcls",
    "ignore_public_acls": "IgnorePublicAcls",
    "block_public_policy": "BlockPublicPolicy",
    "restrict_public_buckets": "RestrictPublicBuckets",
}


def strip_account_host_prefix(account: str, request: Any, **kwargs: Any) -> None:
    """botocore before-sign hook: http://ACCOUNT.host:port/... -> http://host:port/..."""
    request.url = request.url.replace(f"//{account}.", "//", 1)


def custom_endpoint(params: dict) -> bool:
    """True when requests go to an endpoint other than AWS's own (an emulator, a proxy)."""
    names = ("AWS_ENDPOINT_URL_S3_CONTROL", "AWS_ENDPOINT_URL")
    return bool(params.get("endpoint_url") or any(os.environ.get(n) for n in names))


def main() -> None:
    module = AnsibleAWSModule(
        argument_spec=dict(
            account_id=dict(type="str", required=True),
            allow_public_access=dict(type="bool", default=False),
            **{name: dict(type="bool", default=True) for name in SWITCHES},
        ),
        supports_check_mode=True,
    )
    account = module.params["account_id"].strip()
    if not (account.isdigit() and len(account) == 12):
        module.fail_json(msg=f"s3_account_public_access_block: account_id must be 12 digits, got {account!r}")
    wanted = {name: bool(module.params[name]) for name in SWITCHES}
    off = sorted(name for name, on in wanted.items() if not on)
    if off and not module.params["allow_public_access"]:
        module.fail_json(
            msg=f"s3_account_public_access_block: {', '.join(off)} off would allow public S3 access in the whole "
            "account; set allow_public_access=true to override"
        )
    raw = module.client("s3control")
    if custom_endpoint(module.params):
        raw.meta.events.register("before-sign.s3-control.*", functools.partial(strip_account_host_prefix, account))
    client = RetryingBotoClientWrapper(raw, AWSRetry.jittered_backoff())
    try:
        found = client.get_public_access_block(aws_retry=True, AccountId=account)["PublicAccessBlockConfiguration"]
    except is_boto3_error_code("NoSuchPublicAccessBlockConfiguration"):
        found = {}
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:  # pylint: disable=duplicate-except
        module.fail_json_aws(e, msg=f"Could not read the S3 Block Public Access of account {account}")
    current = {name: bool(found.get(key, False)) for name, key in SWITCHES.items()}
    changed = current != wanted
    if changed and not module.check_mode:
        try:
            client.put_public_access_block(
                aws_retry=True,
                AccountId=account,
                PublicAccessBlockConfiguration={key: wanted[name] for name, key in SWITCHES.items()},
            )
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
            module.fail_json_aws(e, msg=f"Could not set the S3 Block Public Access of account {account}")
    module.exit_json(changed=changed, public_access_block=wanted, diff={"before": current, "after": wanted})


if __name__ == "__main__":
    main()
