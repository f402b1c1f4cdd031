#!/usr/bin/python
# Copyright: gearlift contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Hand an RDS instance's master password to Secrets Manager (RDS-managed secret)."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: rds_master_secret
short_description: Make RDS manage an instance's master password in Secrets Manager
version_added: 0.1.0
description:
  - C(amazon.aws.rds_instance) has no option for RDS-managed master passwords. This module turns it on
    for an existing instance (C(ModifyDBInstance ManageMasterUserPassword=true)), encrypted with the given
    KMS key, so the password a create used is replaced by one only Secrets Manager knows; RDS rotates it.
  - Idempotent (an instance that already has a managed secret is left alone unless the KMS key differs);
    supports check mode and diff mode.
options:
  db_instance_identifier:
    description: The RDS instance.
    type: str
    required: true
  kms_key_id:
    description: KMS key (ID, ARN or alias) for the secret. Defaults to the account's C(aws/secretsmanager) key.
    type: str
  wait:
    description: Wait until the instance reports the managed secret.
    type: bool
    default: true
  wait_timeout:
    description: Seconds to wait.
    type: int
    default: 900
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
author:
  - gearlift contributors (!UNKNOWN)
"""

EXAMPLES = r"""
- name: RDS keeps the master password in Secrets Manager
  gearlift.platform.rds_master_secret:
    db_instance_identifier: shop-production
    kms_key_id: alias/shop-production-secrets
"""

RETURN = r"""
secret_arn:
  description: ARN of the RDS-managed master secret.
  returned: unless in check mode before the secret exists
  type: str
"""

import time
from typing import Any

try:
    import botocore
except ImportError:  # handled by AnsibleAWSModule
    pass

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry


def _describe(client: Any, ident: str) -> dict[str, Any]:
    return client.describe_db_instances(aws_retry=True, DBInstanceIdentifier=ident)["DBInstances"][0]


def _key_arn(module: AnsibleAWSModule, key: str | None) -> str | None:
    if not key:
        return None
    kms = module.client("kms", retry_decorator=AWSRetry.jittered_backoff())
    return str(kms.describe_key(aws_retry=True, KeyId=key)["KeyMetadata"]["Arn"])


def main() -> None:
    module = AnsibleAWSModule(
        argument_spec=dict(
            db_instance_identifier=dict(type="str", required=True),
            kms_key_id=dict(type="str"),
            wait=dict(type="bool", default=True),
            wait_timeout=dict(type="int", default=900),
        ),
        supports_check_mode=True,
    )
    ident = module.params["db_instance_identifier"]
    client = module.client("rds", retry_decorator=AWSRetry.jittered_backoff())
    try:
        db = _describe(client, ident)
        want_key = _key_arn(module, module.params["kms_key_id"])
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
        module.fail_json_aws(exc, msg=f"Could not read RDS instance {ident}")
    secret = db.get("MasterUserSecret") or {}
    have_key = secret.get("KmsKeyId")
    changed = not secret or (want_key is not None and have_key != want_key)
    diff = {
        "before": {"managed": bool(secret), "kms_key_id": have_key},
        "after": {"managed": True, "kms_key_id": want_key or have_key},
    }
    if not changed or module.check_mode:
        module.exit_json(changed=changed, diff=diff, secret_arn=secret.get("SecretArn"))
    request: dict[str, Any] = {
        "DBInstanceIdentifier": ident,
        "ManageMasterUserPassword": True,
        "ApplyImmediately": True,
    }
    if want_key:
        request["MasterUserSecretKmsKeyId"] = want_key
    try:
        client.modify_db_instance(aws_retry=True, **request)
        deadline = time.monotonic() + module.params["wait_timeout"]
        while module.params["wait"]:
            secret = _describe(client, ident).get("MasterUserSecret") or {}
            if secret.get("SecretArn"):
                break
            if time.monotonic() > deadline:
                module.fail_json(
                    msg=f"{ident} did not report a managed master secret within {module.params['wait_timeout']} s"
                )
            time.sleep(10)
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
        module.fail_json_aws(exc, msg=f"Could not hand the master password of {ident} to Secrets Manager")
    module.exit_json(changed=True, diff=diff, secret_arn=secret.get("SecretArn"))


if __name__ == "__main__":
    main()
