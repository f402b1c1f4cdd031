#!/usr/bin/python
# Copyright: gearlift maintainers
# Apache License 2.0 (see galaxy.yml)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: account_baseline
short_description: Turn on the account-level detective controls (GuardDuty, Security Hub, Inspector, AWS Config)
version_added: 0.1.0
description:
  - Enables, in one region of one account, the detective controls a PCI DSS-ready account needs and
    that the bundled collections have no (idempotent, check-mode capable) modules for - an Amazon
    GuardDuty detector, AWS Security Hub with its standards, Amazon Inspector scanning, AWS Config
    recording and a Config conformance pack.
  - Each service is an option of its own. A service whose C(enabled) is V(false) is left completely
    alone - the module neither reads nor writes it (use this when it is managed elsewhere, for example
    by an organization's delegated administrator, or when an emulator lacks its API).
    V(false) never turns a service off.
  - Only what is missing is enabled; the module never disables a service, an Inspector resource type
    or (unless O(security_hub.purge_standards=true)) a Security Hub standard.
  - Idempotent. In check mode only read calls are made and the result reports what would change;
    diff mode shows the before/after state of every managed service.
author:
  - gearlift maintainers (!UNKNOWN)
options:
  guardduty:
    description:
      - Amazon GuardDuty. A region has at most one detector. When there is none, one is created,
        enabled; a disabled detector is enabled, and its finding publishing frequency is set.
    type: dict
    default: {}
    suboptions:
      enabled:
        description: Manage GuardDuty. V(false) leaves it alone (no API call at all).
        type: bool
        default: true
      finding_publishing_frequency:
        description: How often updated findings are exported (to EventBridge, S3 and Security Hub).
        type: str
        choices: [FIFTEEN_MINUTES, ONE_HOUR, SIX_HOURS]
        default: FIFTEEN_MINUTES
  security_hub:
    description:
      - AWS Security Hub. When the account is not subscribed, Security Hub is enabled with
        C(EnableDefaultStandards=false) and consolidated control findings
        (C(ControlFindingGenerator=SECURITY_CONTROL)); then the standards in
        O(security_hub.standards) that are not enabled yet are enabled.
      - A hub that is already enabled keeps its control finding generator (see RV(status.security_hub)).
    type: dict
    default: {}
    suboptions:
      enabled:
        description: Manage Security Hub. V(false) leaves it alone (no API call at all).
        type: bool
        default: true
      standards:
        description:
          - Standards to enable, by short name. They map to the regional standards ARNs
            C(arn:<partition>:securityhub:<region>::standards/pci-dss/v/4.0.1),
            C(.../standards/aws-foundational-security-best-practices/v/1.0.0) and
            C(.../standards/cis-aws-foundations-benchmark/v/3.0.0).
          - Use V([]) to enable the hub only (for example against an emulator without the standards API).
        type: list
        elements: str
        choices:
          - pci-dss-v4.0.1
          - aws-foundational-security-best-practices-v1.0.0
          - cis-aws-foundations-benchmark-v3.0.0
        default: [pci-dss-v4.0.1, aws-foundational-security-best-practices-v1.0.0]
      purge_standards:
        description:
          - Disable enabled standards that are not in O(security_hub.standards) (all of them when the
            list is empty). With V(false), other standards are left alone.
        type: bool
        default: false
  inspector:
    description:
      - Amazon Inspector (Inspector2). Scanning is enabled for the resource types in
        O(inspector.resource_types) that are not enabled yet, for the calling account.
      - Resource types that are enabled but not listed are left alone.
    type: dict
    default: {}
    suboptions:
      enabled:
        description: Manage Inspector. V(false) leaves it alone (no API call at all).
        type: bool
        default: true
      resource_types:
        description:
          - Resource types to scan. V(LAMBDA_CODE) needs V(LAMBDA) as well.
        type: list
        elements: str
        choices: [EC2, ECR, LAMBDA, LAMBDA_CODE]
        default: [EC2]
  config_recorder:
    description:
      - AWS Config recording in the region - the configuration recorder, its delivery channel, and
        recording switched on. A region has at most one recorder and one delivery channel; when one of
        another name exists the module fails and names it (set O(config_recorder.name) to manage it).
      - The recorder and the channel are written only when a compared field differs - the recorder's
        role and C(allSupported) / C(includeGlobalResourceTypes), the channel's bucket, key prefix, KMS
        key, SNS topic and snapshot frequency - so the extra fields AWS adds to what it returns
        (recording strategy, recording mode) do not make every run report a change. A stopped recorder
        is started.
      - When omitted, AWS Config recording is not managed.
    type: dict
    suboptions:
      enabled:
        description: Manage Config recording. V(false) leaves it alone (no API call at all).
        type: bool
        default: true
      name:
        description: Name of the configuration recorder and of its delivery channel.
        type: str
        default: default
      role_arn:
        description:
          - IAM role AWS Config assumes to read the resources and to deliver to the bucket (for example
            one with the C(service-role/AWS_ConfigRole) managed policy).
          - Required when O(config_recorder.enabled=true).
        type: str
      all_supported:
        description: Record every supported regional resource type.
        type: bool
        default: true
      include_global_types:
        description:
          - Record global resources (IAM). Turn this on in one region only to avoid duplicate items.
        type: bool
        default: true
      delivery_s3_bucket:
        description:
          - Bucket (name only) for configuration history and snapshots.
          - Required when O(config_recorder.enabled=true).
        type: str
      delivery_s3_key_prefix:
        description: Key prefix in the bucket.
        type: str
      delivery_kms_key_arn:
        description: ARN of the KMS key Config encrypts the delivered objects with.
        type: str
      delivery_sns_topic_arn:
        description: SNS topic for Config notifications.
        type: str
      delivery_frequency:
        description: How often Config delivers a configuration snapshot.
        type: str
        choices: [One_Hour, Three_Hours, Six_Hours, Twelve_Hours, TwentyFour_Hours]
        default: TwentyFour_Hours
  config_conformance_pack:
    description:
      - An AWS Config conformance pack, deployed from a template in S3 - typically the AWS sample
        template "Operational Best Practices for PCI DSS v4.0" copied to a bucket of yours.
      - AWS Config must record in the region (configuration recorder and delivery channel); manage
        recording with O(config_recorder) in the same task - it is converged before the pack.
      - When omitted, conformance packs are not managed.
      - The Config API does not return the template a pack was deployed from, so the module records
        the O(config_conformance_pack.template_s3_uri) it deployed in the tag C(gearlift:template-s3-uri)
        on the pack (the URI itself, or C(sha256:<hex>) of it when it is longer than a tag value may be
        or has characters a tag value may not). The pack is (re)deployed when it is missing, when that
        tag is missing or names another template, when O(config_conformance_pack.delivery_s3_bucket)
        differs, or when its last deployment failed (C(CREATE_FAILED), C(UPDATE_FAILED)).
    type: dict
    suboptions:
      enabled:
        description: Manage the conformance pack. V(false) leaves it alone (no API call at all).
        type: bool
        default: true
      name:
        description: Name of the conformance pack. Required when O(config_conformance_pack.enabled=true).
        type: str
      template_s3_uri:
        description:
          - Location of the template, C(s3://bucket/key). The bucket must be in the same region.
          - Required when O(config_conformance_pack.enabled=true).
        type: str
      delivery_s3_bucket:
        description:
          - Bucket (name only) where AWS Config stores the conformance pack templates; its name must
            start with C(awsconfigconforms). When omitted, a pack that is redeployed keeps its current
            delivery bucket and key prefix.
        type: str
notes:
  - In check mode only read calls are made (C(List*), C(Get*), C(Describe*), C(BatchGetAccountStatus),
    C(ListTagsForResource) and C(sts:GetCallerIdentity)).
  - Enabling is asynchronous on the AWS side; the result reports what AWS said right after the write
    calls (for example standards subscriptions in C(PENDING), Inspector in C(ENABLING), a conformance
    pack in C(CREATE_IN_PROGRESS)). The module does not wait.
  - The module works on the calling account only; organization-wide enablement (delegated
    administrator, auto-enable) is out of scope.
  - IAM permissions, per managed service - C(guardduty:ListDetectors), C(guardduty:GetDetector),
    C(guardduty:CreateDetector), C(guardduty:UpdateDetector); C(securityhub:DescribeHub),
    C(securityhub:EnableSecurityHub), C(securityhub:GetEnabledStandards),
    C(securityhub:BatchEnableStandards), C(securityhub:BatchDisableStandards) (only with purge);
    C(inspector2:BatchGetAccountStatus), C(inspector2:Enable); C(config:DescribeConformancePacks),
    C(config:DescribeConformancePackStatus), C(config:ListTagsForResource), C(config:PutConformancePack),
    C(config:TagResource); C(config:DescribeConfigurationRecorders),
    C(config:DescribeConfigurationRecorderStatus), C(config:DescribeDeliveryChannels),
    C(config:PutConfigurationRecorder), C(config:PutDeliveryChannel), C(config:StartConfigurationRecorder),
    C(iam:PassRole) on the recorder's role; plus C(s3:GetObject) on the template and
    C(iam:CreateServiceLinkedRole) for the services' first enablement.
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: PCI DSS detective controls in the shop's region
  gearlift.platform.account_baseline:
    region: eu-central-1
    guardduty:
      finding_publishing_frequency: FIFTEEN_MINUTES
    security_hub:
      standards:
        - pci-dss-v4.0.1
        - aws-foundational-security-best-practices-v1.0.0
    inspector:
      resource_types: [EC2]
    config_recorder:
      role_arn: arn:aws:iam::123456789012:role/shop-production-config
      delivery_s3_bucket: shop-production-config-123456789012
      delivery_kms_key_arn: arn:aws:kms:eu-central-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab
    config_conformance_pack:
      name: pci-dss-v4
      template_s3_uri: s3://acme-config-templates-eu-central-1/Operational-Best-Practices-for-PCI-DSS-v4.0.yaml
      delivery_s3_bucket: awsconfigconforms-acme-eu-central-1
  register: baseline

- name: Member account - GuardDuty and Security Hub belong to the organization's delegated admin
  gearlift.platform.account_baseline:
    guardduty:
      enabled: false
    security_hub:
      enabled: false
    inspector:
      resource_types: [EC2, ECR]

- name: What would change (read calls only)
  gearlift.platform.account_baseline:
    security_hub:
      standards: [pci-dss-v4.0.1]
      purge_standards: true
  check_mode: true
  diff: true

- name: Against an emulator without the Security Hub standards API and without Inspector
  gearlift.platform.account_baseline:
    security_hub:
      standards: []
    inspector:
      enabled: false
"""

RETURN = r"""
changed:
  description: Whether anything was (or, in check mode, would be) enabled or changed.
  returned: always
  type: bool
status:
  description:
    - State per service after the run (in check mode, as it would be). A service with
      C(enabled=false) is reported as C(managed=false) only.
  returned: always
  type: dict
  contains:
    guardduty:
      description: GuardDuty state.
      type: dict
      sample:
        managed: true
        enabled: true
        detector_id: 12abc34d567e8fa901bc2d34e56789f0
        detector_status: ENABLED
        finding_publishing_frequency: FIFTEEN_MINUTES
        actions: [CreateDetector]
      contains:
        managed:
          description: Whether the module managed the service in this run.
          type: bool
        enabled:
          description: Whether the detector is (would be) enabled.
          type: bool
        detector_id:
          description: Detector id (null in check mode when it would be created).
          type: str
        detector_status:
          description: C(ENABLED) or C(DISABLED).
          type: str
        finding_publishing_frequency:
          description: The detector's finding publishing frequency.
          type: str
        actions:
          description: Write calls made (or, in check mode, that would be made).
          type: list
          elements: str
    security_hub:
      description: Security Hub state.
      type: dict
      sample:
        managed: true
        enabled: true
        hub_arn: arn:aws:securityhub:eu-central-1:123456789012:hub/default
        control_finding_generator: SECURITY_CONTROL
        standards:
          - arn:aws:securityhub:eu-central-1::standards/aws-foundational-security-best-practices/v/1.0.0
          - arn:aws:securityhub:eu-central-1::standards/pci-dss/v/4.0.1
        standards_added:
          - arn:aws:securityhub:eu-central-1::standards/pci-dss/v/4.0.1
        standards_removed: []
        subscriptions:
          - standards_arn: arn:aws:securityhub:eu-central-1::standards/pci-dss/v/4.0.1
            subscription_arn: arn:aws:securityhub:eu-central-1:123456789012:subscription/pci-dss/v/4.0.1
            status: PENDING
        actions: [BatchEnableStandards]
      contains:
        managed:
          description: Whether the module managed the service in this run.
          type: bool
        enabled:
          description: Whether the account is (would be) subscribed to Security Hub.
          type: bool
        hub_arn:
          description: ARN of the hub (null in check mode when it would be enabled).
          type: str
        control_finding_generator:
          description: The hub's control finding generator.
          type: str
        standards:
          description:
            - Standards ARNs enabled (or being enabled) after the run. Not read (null) when the
              module did not need the standards API (O(security_hub.standards=[]) without purge).
          type: list
          elements: str
        standards_added:
          description: Standards ARNs enabled by this run.
          type: list
          elements: str
        standards_removed:
          description: Standards ARNs disabled by this run (O(security_hub.purge_standards=true)).
          type: list
          elements: str
        subscriptions:
          description: Standards subscriptions (standards ARN, subscription ARN, status) as last reported.
          type: list
          elements: dict
        actions:
          description: Write calls made (or that would be made).
          type: list
          elements: str
    inspector:
      description: Inspector state.
      type: dict
      sample:
        managed: true
        account_id: "123456789012"
        account_status: ENABLING
        resource_types: [EC2]
        resource_types_added: [EC2]
        resource_status: {EC2: ENABLING, ECR: DISABLED, LAMBDA: DISABLED, LAMBDA_CODE: DISABLED}
        actions: [Enable]
      contains:
        managed:
          description: Whether the module managed the service in this run.
          type: bool
        account_id:
          description: The calling account.
          type: str
        account_status:
          description: Inspector status of the account as last reported.
          type: str
        resource_types:
          description: Resource types enabled (or enabling) after the run.
          type: list
          elements: str
        resource_types_added:
          description: Resource types enabled by this run.
          type: list
          elements: str
        resource_status:
          description: Status per resource type as last reported.
          type: dict
        actions:
          description: Write calls made (or that would be made).
          type: list
          elements: str
    config_recorder:
      description: AWS Config recording state (only C(managed=false) when the option is omitted).
      type: dict
      sample:
        managed: true
        name: default
        recording: true
        actions: [PutConfigurationRecorder, PutDeliveryChannel, StartConfigurationRecorder]
      contains:
        managed:
          description: Whether the module managed Config recording in this run.
          type: bool
        name:
          description: Recorder and delivery channel name.
          type: str
        recording:
          description: Whether the recorder records after the run (would record, in check mode).
          type: bool
        actions:
          description: Write calls made (or that would be made in check mode), in order.
          type: list
          elements: str
    config_conformance_pack:
      description: Conformance pack state (only C(managed=false) when the option is omitted).
      type: dict
      sample:
        managed: true
        name: pci-dss-v4
        arn: arn:aws:config:eu-central-1:123456789012:conformance-pack/pci-dss-v4/conformance-pack-abcd1234
        template_s3_uri: s3://acme-config-templates-eu-central-1/Operational-Best-Practices-for-PCI-DSS-v4.0.yaml
        delivery_s3_bucket: awsconfigconforms-acme-eu-central-1
        state: CREATE_COMPLETE
        reasons: []
        actions: []
      contains:
        managed:
          description: Whether the module managed the pack in this run.
          type: bool
        name:
          description: Conformance pack name.
          type: str
        arn:
          description: Conformance pack ARN (null in check mode when it would be created).
          type: str
        template_s3_uri:
          description: Template the pack is (would be) deployed from.
          type: str
        delivery_s3_bucket:
          description: Delivery bucket of the pack.
          type: str
        state:
          description:
            - Deployment state as read before the run (C(CREATE_COMPLETE), C(CREATE_FAILED), ...);
              null when the pack was missing or was (would be) deployed by this run.
          type: str
        reasons:
          description: Why the pack was (would be) deployed.
          type: list
          elements: str
        actions:
          description: Write calls made (or that would be made).
          type: list
          elements: str
diff:
  description: Before/after state of each managed service.
  returned: in check mode or diff mode
  type: dict
"""

import contextlib
import hashlib
import re
from typing import Any

with contextlib.suppress(ImportError):  # botocore missing is reported by AnsibleAWSModule
    import botocore

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry

FREQUENCIES = ["FIFTEEN_MINUTES", "ONE_HOUR", "SIX_HOURS"]

# short name -> path of the regional standards ARN (arn:<partition>:securityhub:<region>::<path>)
STANDARDS = {
    "pci-dss-v4.0.1": "standards/pci-dss/v/4.0.1",
    "aws-foundational-security-best-practices-v1.0.0": "standards/aws-foundational-security-best-practices/v/1.0.0",
    "cis-aws-foundations-benchmark-v3.0.0": "standards/cis-aws-foundations-benchmark/v/3.0.0",
}
DEFAULT_STANDARDS = ["pci-dss-v4.0.1", "aws-foundational-security-best-practices-v1.0.0"]
# Subscriptions in these states count as enabled; FAILED and DELETING ones are requested again.
LIVE_SUBSCRIPTION_STATES = frozenset({"PENDING", "READY", "INCOMPLETE"})

# Inspector resource type -> key in BatchGetAccountStatus resourceState
INSPECTOR_RESOURCE_KEYS = {"EC2": "ec2", "ECR": "ecr", "LAMBDA": "lambda", "LAMBDA_CODE": "lambdaCode"}
INSPECTOR_ON = frozenset({"ENABLED", "ENABLING"})

TEMPLATE_TAG = "gearlift:template-s3-uri"
_TAG_VALUE_OK = re.compile(r"[\w .:/=+\-@]{0,256}")
FAILED_PACK_STATES = frozenset({"CREATE_FAILED", "UPDATE_FAILED"})
DELIVERY_FREQUENCIES = ["One_Hour", "Three_Hours", "Six_Hours", "Twelve_Hours", "TwentyFour_Hours"]
# AWS Config validates the role and the bucket policy on these writes; a role or policy created a
# moment ago is not visible to it yet, so they are retried for a while.
CONFIG_PROPAGATION_ERRORS = ["InsufficientDeliveryPolicyException", "InvalidRoleException"]

SERVICE_LABELS = {
    "guardduty": "GuardDuty",
    "securityhub": "Security Hub",
    "inspector2": "Inspector",
    "config": "AWS Config",
    "sts": "STS",
}


def argument_spec() -> dict[str, Any]:
    return dict(
        guardduty=dict(
            type="dict",
            default={},
            options=dict(
                enabled=dict(type="bool", default=True),
                finding_publishing_frequency=dict(type="str", choices=FREQUENCIES, default="FIFTEEN_MINUTES"),
            ),
        ),
        security_hub=dict(
            type="dict",
            default={},
            options=dict(
                enabled=dict(type="bool", default=True),
                standards=dict(type="list", elements="str", choices=list(STANDARDS), default=list(DEFAULT_STANDARDS)),
                purge_standards=dict(type="bool", default=False),
            ),
        ),
        inspector=dict(
            type="dict",
            default={},
            options=dict(
                enabled=dict(type="bool", default=True),
                resource_types=dict(
                    type="list", elements="str", choices=list(INSPECTOR_RESOURCE_KEYS), default=["EC2"]
                ),
            ),
        ),
        config_recorder=dict(
            type="dict",
            options=dict(
                enabled=dict(type="bool", default=True),
                name=dict(type="str", default="default"),
                role_arn=dict(type="str"),
                all_supported=dict(type="bool", default=True),
                include_global_types=dict(type="bool", default=True),
                delivery_s3_bucket=dict(type="str"),
                delivery_s3_key_prefix=dict(type="str", no_log=False),  # an S3 key prefix, not a secret
                delivery_kms_key_arn=dict(type="str", no_log=False),  # a KMS key ARN, not a secret
                delivery_sns_topic_arn=dict(type="str"),
                delivery_frequency=dict(type="str", choices=DELIVERY_FREQUENCIES, default="TwentyFour_Hours"),
            ),
            required_if=[("enabled", True, ("role_arn", "delivery_s3_bucket"))],
        ),
        config_conformance_pack=dict(
            type="dict",
            options=dict(
                enabled=dict(type="bool", default=True),
                name=dict(type="str"),
                template_s3_uri=dict(type="str"),
                delivery_s3_bucket=dict(type="str"),
            ),
            required_if=[("enabled", True, ("name", "template_s3_uri"))],
        ),
    )


def standards_arn(partition: str, region: str, short_name: str) -> str:
    return f"arn:{partition}:securityhub:{region}::{STANDARDS[short_name]}"


def template_tag_value(uri: str) -> str:
    """What the module stores in the pack's template tag for a template URI."""
    if _TAG_VALUE_OK.fullmatch(uri):
        return uri
    return "sha256:" + hashlib.sha256(uri.encode("utf-8")).hexdigest()


def api_name(operation: str) -> str:
    return "".join(part.capitalize() for part in operation.split("_"))


def check_params(params: dict[str, Any]) -> list[str]:
    """Validation the argument spec cannot express; returns error messages."""
    errors = []
    pack = params.get("config_conformance_pack")
    if pack and pack["enabled"]:
        uri = pack["template_s3_uri"] or ""
        if not re.match(r"^s3://[^/]+/.+", uri):
            errors.append(f"config_conformance_pack.template_s3_uri must look like s3://bucket/key, got {uri!r}")
        bucket = pack.get("delivery_s3_bucket")
        if bucket is not None and ("/" in bucket or bucket.startswith("s3:")):
            errors.append(f"config_conformance_pack.delivery_s3_bucket is a bucket name, not a URI: {bucket!r}")
    recorder = params.get("config_recorder")
    if recorder and recorder["enabled"]:
        bucket = recorder["delivery_s3_bucket"] or ""
        if "/" in bucket or bucket.startswith("s3:"):
            errors.append(f"config_recorder.delivery_s3_bucket is a bucket name, not a URI: {bucket!r}")
        if not re.match(r"^arn:aws[\w-]*:iam::\d{12}:role/.+", recorder["role_arn"] or ""):
            errors.append(f"config_recorder.role_arn must be an IAM role ARN, got {recorder['role_arn']!r}")
        if recorder["include_global_types"] and not recorder["all_supported"]:
            errors.append("config_recorder.include_global_types=true needs config_recorder.all_supported=true")
    inspector = params.get("inspector") or {}
    if inspector.get("enabled") and not inspector.get("resource_types"):
        errors.append("inspector.resource_types must not be empty when inspector.enabled=true")
    return errors


class Baseline:
    """Converges the managed services for one module run."""

    def __init__(self, module: AnsibleAWSModule) -> None:
        self.module = module
        self.params = module.params
        self.check_mode = module.check_mode
        self.region = module.region
        self.retry = AWSRetry.jittered_backoff(retries=10)
        self.changed = False
        self.status: dict[str, Any] = {}
        self.before: dict[str, Any] = {}
        self.after: dict[str, Any] = {}

    # ------------------------------------------------------------------ utils
    def client(self, service: str) -> Any:
        if service == "config":
            retry = AWSRetry.jittered_backoff(retries=8, catch_extra_error_codes=CONFIG_PROPAGATION_ERRORS)
            return self.module.client(service, retry_decorator=retry)
        return self.module.client(service, retry_decorator=self.retry)

    def call(self, client: Any, service: str, operation: str, missing: tuple[str, ...] = (), **kwargs: Any) -> Any:
        """Call one API operation with retries; None when it raised one of the ``missing`` codes.

        Any other error fails the module with a message naming the service and the call, keeping
        what was done so far in the result.
        """
        try:
            return getattr(client, operation)(aws_retry=True, **kwargs)
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
            if isinstance(e, botocore.exceptions.ClientError) and e.response.get("Error", {}).get("Code") in missing:
                return None
            self.module.fail_json_aws(
                e,
                msg=f"{SERVICE_LABELS[service]}: {service}:{api_name(operation)} failed",
                changed=self.changed,
                status=self.status,
            )

    def write(self, status: dict[str, Any], operation: str) -> bool:
        """Record a write; True when it must really be made (not in check mode)."""
        self.changed = True
        status["actions"].append(api_name(operation))
        return not self.check_mode

    @staticmethod
    def partition(client: Any) -> str:
        return getattr(getattr(client, "meta", None), "partition", None) or "aws"

    # -------------------------------------------------------------- guardduty
    def guardduty(self, opts: dict[str, Any]) -> None:
        gd = self.client("guardduty")
        status: dict[str, Any] = {"managed": True, "actions": []}
        self.status["guardduty"] = status
        frequency = opts["finding_publishing_frequency"]

        detector_ids: list[str] = []
        request: dict[str, Any] = {}
        while True:
            page = self.call(gd, "guardduty", "list_detectors", **request)
            detector_ids.extend(page.get("DetectorIds") or [])
            if not page.get("NextToken"):
                break
            request = {"NextToken": page["NextToken"]}

        if not detector_ids:
            self.before["guardduty"] = {"detector": False}
            if self.write(status, "create_detector"):
                created = self.call(
                    gd, "guardduty", "create_detector", Enable=True, FindingPublishingFrequency=frequency
                )
                status["detector_id"] = created["DetectorId"]
            else:
                status["detector_id"] = None
        else:
            detector_id = sorted(detector_ids)[0]  # AWS allows one detector per region
            detector = self.call(gd, "guardduty", "get_detector", DetectorId=detector_id)
            status["detector_id"] = detector_id
            current_status = detector.get("Status")
            current_frequency = detector.get("FindingPublishingFrequency")
            self.before["guardduty"] = {
                "detector": True,
                "detector_status": current_status,
                "finding_publishing_frequency": current_frequency,
            }
            if (current_status != "ENABLED" or current_frequency != frequency) and self.write(
                status, "update_detector"
            ):
                self.call(
                    gd,
                    "guardduty",
                    "update_detector",
                    DetectorId=detector_id,
                    Enable=True,
                    FindingPublishingFrequency=frequency,
                )
        status.update(enabled=True, detector_status="ENABLED", finding_publishing_frequency=frequency)
        self.after["guardduty"] = {
            "detector": True,
            "detector_status": "ENABLED",
            "finding_publishing_frequency": frequency,
        }

    # ----------------------------------------------------------- security hub
    def describe_hub(self, sh: Any) -> dict[str, Any] | None:
        return self.call(
            sh, "securityhub", "describe_hub", missing=("InvalidAccessException", "ResourceNotFoundException")
        )

    def enabled_standards(self, sh: Any) -> list[dict[str, Any]]:
        subscriptions: list[dict[str, Any]] = []
        request: dict[str, Any] = {}
        while True:
            page = self.call(sh, "securityhub", "get_enabled_standards", **request)
            subscriptions.extend(page.get("StandardsSubscriptions") or [])
            if not page.get("NextToken"):
                return subscriptions
            request = {"NextToken": page["NextToken"]}

    def security_hub(self, opts: dict[str, Any]) -> None:
        sh = self.client("securityhub")
        status: dict[str, Any] = {"managed": True, "actions": [], "standards_added": [], "standards_removed": []}
        self.status["security_hub"] = status
        partition = self.partition(sh)
        wanted = list(dict.fromkeys(standards_arn(partition, self.region, s) for s in opts["standards"]))
        purge = opts["purge_standards"]
        needs_standards_api = bool(wanted) or purge

        hub = self.describe_hub(sh)
        was_enabled = hub is not None
        if not was_enabled and self.write(status, "enable_security_hub"):
            self.call(
                sh,
                "securityhub",
                "enable_security_hub",
                missing=("ResourceConflictException",),  # subscribed in the meantime
                EnableDefaultStandards=False,
                ControlFindingGenerator="SECURITY_CONTROL",
            )
            hub = self.describe_hub(sh)
        hub = hub or {}
        status.update(
            enabled=True,
            hub_arn=hub.get("HubArn"),
            control_finding_generator=hub.get("ControlFindingGenerator") if was_enabled else "SECURITY_CONTROL",
        )

        # A hub enabled just now has no standards (EnableDefaultStandards=false) and an unsubscribed
        # account cannot list them (InvalidAccessException), so only an existing hub is asked - and
        # only when the standards matter to this run.
        known = needs_standards_api or not was_enabled
        subscriptions = self.enabled_standards(sh) if was_enabled and needs_standards_api else []
        live_arns = {s["StandardsArn"] for s in subscriptions if s.get("StandardsStatus") in LIVE_SUBSCRIPTION_STATES}
        missing = [arn for arn in wanted if arn not in live_arns]
        extra = [
            s
            for s in subscriptions
            if purge and s.get("StandardsStatus") in LIVE_SUBSCRIPTION_STATES and s["StandardsArn"] not in wanted
        ]
        reported = {s["StandardsArn"]: s for s in subscriptions}

        if missing and self.write(status, "batch_enable_standards"):
            answer = self.call(
                sh,
                "securityhub",
                "batch_enable_standards",
                StandardsSubscriptionRequests=[{"StandardsArn": arn} for arn in missing],
            )
            reported.update({s["StandardsArn"]: s for s in answer.get("StandardsSubscriptions") or []})
        if extra and self.write(status, "batch_disable_standards"):
            answer = self.call(
                sh,
                "securityhub",
                "batch_disable_standards",
                StandardsSubscriptionArns=[s["StandardsSubscriptionArn"] for s in extra],
            )
            reported.update({s["StandardsArn"]: s for s in answer.get("StandardsSubscriptions") or []})

        removed = [s["StandardsArn"] for s in extra]
        after_standards = sorted((live_arns | set(missing)) - set(removed)) if known else None
        status.update(
            standards=after_standards,
            standards_added=missing,
            standards_removed=removed,
            subscriptions=[
                {
                    "standards_arn": arn,
                    "subscription_arn": reported[arn].get("StandardsSubscriptionArn"),
                    "status": reported[arn].get("StandardsStatus"),
                }
                for arn in sorted(reported)
            ],
        )
        self.before["security_hub"] = {"enabled": was_enabled, "standards": sorted(live_arns) if known else None}
        self.after["security_hub"] = {"enabled": True, "standards": after_standards}

    # -------------------------------------------------------------- inspector
    def inspector(self, opts: dict[str, Any]) -> None:
        sts = self.client("sts")
        identity = self.call(sts, "sts", "get_caller_identity")
        account_id = identity["Account"]
        insp = self.client("inspector2")
        status: dict[str, Any] = {"managed": True, "actions": [], "account_id": account_id}
        self.status["inspector"] = status
        wanted = list(dict.fromkeys(opts["resource_types"]))

        answer = self.call(insp, "inspector2", "batch_get_account_status", accountIds=[account_id])
        self.fail_on_failed_accounts(answer, account_id, "batch_get_account_status", status)
        account = next((a for a in answer.get("accounts") or [] if a.get("accountId") == account_id), None)
        resource_status = self.inspector_resource_status(account)
        enabled_before = sorted(t for t, s in resource_status.items() if s in INSPECTOR_ON)
        missing = [t for t in wanted if resource_status[t] not in INSPECTOR_ON]
        status["account_status"] = ((account or {}).get("state") or {}).get("status") or "DISABLED"

        if missing and self.write(status, "enable"):
            enabled = self.call(insp, "inspector2", "enable", accountIds=[account_id], resourceTypes=missing)
            self.fail_on_failed_accounts(enabled, account_id, "enable", status)
            mine = next((a for a in enabled.get("accounts") or [] if a.get("accountId") == account_id), None)
            if mine:
                status["account_status"] = mine.get("status") or status["account_status"]
                for rtype, key in INSPECTOR_RESOURCE_KEYS.items():
                    value = (mine.get("resourceStatus") or {}).get(key)
                    if value:
                        resource_status[rtype] = value
        if missing and self.check_mode:
            for rtype in missing:
                resource_status[rtype] = "ENABLING"
            status["account_status"] = "ENABLED" if status["account_status"] == "ENABLED" else "ENABLING"

        status["resource_types_added"] = missing
        status["resource_status"] = resource_status
        status["resource_types"] = sorted(set(enabled_before) | set(missing))
        self.before["inspector"] = {"resource_types": enabled_before}
        self.after["inspector"] = {"resource_types": status["resource_types"]}

    @staticmethod
    def inspector_resource_status(account: dict[str, Any] | None) -> dict[str, str]:
        state = (account or {}).get("resourceState") or {}
        return {
            rtype: ((state.get(key) or {}).get("status") or "DISABLED")
            for rtype, key in INSPECTOR_RESOURCE_KEYS.items()
        }

    def fail_on_failed_accounts(
        self, answer: dict[str, Any], account_id: str, operation: str, status: dict[str, Any]
    ) -> None:
        failed = [a for a in answer.get("failedAccounts") or [] if a.get("accountId") == account_id]
        if failed:
            f = failed[0]
            self.module.fail_json(
                msg=(
                    f"Inspector: inspector2:{api_name(operation)} failed for account {account_id}: "
                    f"{f.get('errorCode')}: {f.get('errorMessage')}"
                ),
                changed=self.changed,
                status=self.status,
                failed_accounts=answer.get("failedAccounts"),
            )

    # ------------------------------------------------------- config recorder
    def config_recorder(self, opts: dict[str, Any]) -> None:
        cfg = self.client("config")
        name = opts["name"]
        status: dict[str, Any] = {"managed": True, "actions": [], "name": name}
        self.status["config_recorder"] = status

        recorders = self.call(cfg, "config", "describe_configuration_recorders").get("ConfigurationRecorders") or []
        channels = self.call(cfg, "config", "describe_delivery_channels").get("DeliveryChannels") or []
        for kind, found in (("configuration recorder", recorders), ("delivery channel", channels)):
            others = sorted(r["name"] for r in found if r["name"] != name)
            if others:
                self.module.fail_json(
                    msg=f"AWS Config: the region already has the {kind} {others[0]!r} and allows only one; "
                    f"set config_recorder.name to {others[0]!r} to manage it",
                    changed=self.changed,
                    status=self.status,
                )
        recorder = next((r for r in recorders if r["name"] == name), None)
        channel = next((c for c in channels if c["name"] == name), None)

        group = {"allSupported": opts["all_supported"], "includeGlobalResourceTypes": opts["include_global_types"]}
        have_group = (recorder or {}).get("recordingGroup") or {}
        recorder_now = None
        if recorder is not None:
            recorder_now = {
                "role_arn": recorder.get("roleARN"),
                "all_supported": have_group.get("allSupported"),
                "include_global_types": have_group.get("includeGlobalResourceTypes"),
            }
        recorder_wanted = {
            "role_arn": opts["role_arn"],
            "all_supported": opts["all_supported"],
            "include_global_types": opts["include_global_types"],
        }
        if recorder_now != recorder_wanted and self.write(status, "put_configuration_recorder"):
            body: dict[str, Any] = {"name": name, "roleARN": opts["role_arn"], "recordingGroup": group}
            if recorder and recorder.get("recordingMode"):
                body["recordingMode"] = recorder["recordingMode"]
            self.call(cfg, "config", "put_configuration_recorder", ConfigurationRecorder=body)

        channel_wanted = {
            "s3BucketName": opts["delivery_s3_bucket"],
            "s3KeyPrefix": opts.get("delivery_s3_key_prefix"),
            "s3KmsKeyArn": opts.get("delivery_kms_key_arn"),
            "snsTopicARN": opts.get("delivery_sns_topic_arn"),
            "deliveryFrequency": opts["delivery_frequency"],
        }
        channel_now = None
        if channel is not None:
            channel_now = {
                key: channel.get(key) for key in ("s3BucketName", "s3KeyPrefix", "s3KmsKeyArn", "snsTopicARN")
            }
            channel_now["deliveryFrequency"] = (channel.get("configSnapshotDeliveryProperties") or {}).get(
                "deliveryFrequency"
            )
        if channel_now != channel_wanted and self.write(status, "put_delivery_channel"):
            body = {k: v for k, v in channel_wanted.items() if v is not None and k != "deliveryFrequency"}
            body["name"] = name
            body["configSnapshotDeliveryProperties"] = {"deliveryFrequency": opts["delivery_frequency"]}
            self.call(cfg, "config", "put_delivery_channel", DeliveryChannel=body)

        recording = False
        if recorder is not None:
            answer = self.call(
                cfg,
                "config",
                "describe_configuration_recorder_status",
                missing=("NoSuchConfigurationRecorderException",),
                ConfigurationRecorderNames=[name],
            )
            recording = any(s.get("recording") for s in (answer or {}).get("ConfigurationRecordersStatus") or [])
        if not recording and self.write(status, "start_configuration_recorder"):
            self.call(cfg, "config", "start_configuration_recorder", ConfigurationRecorderName=name)
        status["recording"] = True
        self.before["config_recorder"] = {
            "recorder": recorder_now,
            "delivery_channel": channel_now,
            "recording": recording,
        }
        self.after["config_recorder"] = {
            "recorder": recorder_wanted,
            "delivery_channel": channel_wanted,
            "recording": True,
        }

    # ---------------------------------------------------------- config pack
    def conformance_pack(self, opts: dict[str, Any]) -> None:
        cfg = self.client("config")
        name = opts["name"]
        uri = opts["template_s3_uri"]
        status: dict[str, Any] = {"managed": True, "actions": [], "name": name, "reasons": []}
        self.status["config_conformance_pack"] = status

        found = self.call(
            cfg,
            "config",
            "describe_conformance_packs",
            missing=("NoSuchConformancePackException",),
            ConformancePackNames=[name],
        )
        pack = next(
            (p for p in (found or {}).get("ConformancePackDetails") or [] if p.get("ConformancePackName") == name),
            None,
        )
        reasons: list[str] = []
        state = None
        recorded = None
        if pack is None:
            reasons.append("missing")
            self.before["config_conformance_pack"] = {"name": name, "exists": False}
        else:
            tags = self.pack_tags(cfg, pack["ConformancePackArn"])
            recorded = tags.get(TEMPLATE_TAG)
            state = self.pack_state(cfg, name)
            if recorded is None:
                reasons.append(f"no {TEMPLATE_TAG} tag: template unknown")
            elif recorded != template_tag_value(uri):
                reasons.append("template differs")
            wanted_bucket = opts.get("delivery_s3_bucket")
            if wanted_bucket is not None and wanted_bucket != pack.get("DeliveryS3Bucket"):
                reasons.append("delivery bucket differs")
            if state in FAILED_PACK_STATES:
                reasons.append(f"last deployment {state}")
            self.before["config_conformance_pack"] = {
                "name": name,
                "exists": True,
                "template_s3_uri": recorded,
                "delivery_s3_bucket": pack.get("DeliveryS3Bucket"),
                "state": state,
            }

        delivery_bucket = opts.get("delivery_s3_bucket")
        arn = (pack or {}).get("ConformancePackArn")
        if reasons and self.write(status, "put_conformance_pack"):
            request: dict[str, Any] = {"ConformancePackName": name, "TemplateS3Uri": uri}
            if delivery_bucket is not None:
                request["DeliveryS3Bucket"] = delivery_bucket
            elif pack and pack.get("DeliveryS3Bucket"):
                request["DeliveryS3Bucket"] = pack["DeliveryS3Bucket"]
                if pack.get("DeliveryS3KeyPrefix"):
                    request["DeliveryS3KeyPrefix"] = pack["DeliveryS3KeyPrefix"]
            if pack and pack.get("ConformancePackInputParameters"):
                request["ConformancePackInputParameters"] = pack["ConformancePackInputParameters"]
            arn = self.call(cfg, "config", "put_conformance_pack", **request)["ConformancePackArn"]
        if reasons and self.write(status, "tag_resource"):
            self.call(
                cfg,
                "config",
                "tag_resource",
                ResourceArn=arn,
                Tags=[{"Key": TEMPLATE_TAG, "Value": template_tag_value(uri)}],
            )
        if delivery_bucket is None:
            delivery_bucket = (pack or {}).get("DeliveryS3Bucket")
        status.update(
            arn=arn,
            template_s3_uri=uri,
            delivery_s3_bucket=delivery_bucket,
            state=None if reasons else state,
            reasons=reasons,
        )
        self.after["config_conformance_pack"] = {
            "name": name,
            "exists": True,
            "template_s3_uri": template_tag_value(uri),
            "delivery_s3_bucket": delivery_bucket,
            "state": None if reasons else state,
        }

    def pack_tags(self, cfg: Any, arn: str) -> dict[str, str]:
        tags: dict[str, str] = {}
        request: dict[str, Any] = {"ResourceArn": arn}
        while True:
            page = self.call(cfg, "config", "list_tags_for_resource", **request)
            tags.update({t["Key"]: t.get("Value", "") for t in page.get("Tags") or []})
            if not page.get("NextToken"):
                return tags
            request["NextToken"] = page["NextToken"]

    def pack_state(self, cfg: Any, name: str) -> str | None:
        answer = self.call(
            cfg,
            "config",
            "describe_conformance_pack_status",
            missing=("NoSuchConformancePackException",),
            ConformancePackNames=[name],
        )
        details = [
            d for d in (answer or {}).get("ConformancePackStatusDetails") or [] if d["ConformancePackName"] == name
        ]
        return details[0].get("ConformancePackState") if details else None

    # ------------------------------------------------------------------- main
    def run(self) -> None:
        p = self.params
        plan = [
            ("guardduty", p["guardduty"], self.guardduty),
            ("security_hub", p["security_hub"], self.security_hub),
            ("inspector", p["inspector"], self.inspector),
            ("config_recorder", p["config_recorder"], self.config_recorder),
            ("config_conformance_pack", p["config_conformance_pack"], self.conformance_pack),
        ]
        for key, opts, converge in plan:
            if not opts or not opts["enabled"]:
                self.status[key] = {"managed": False}
                continue
            converge(opts)
        result: dict[str, Any] = dict(changed=self.changed, status=self.status)
        if self.module._diff or self.check_mode:
            result["diff"] = {"before": self.before, "after": self.after}
        self.module.exit_json(**result)


def main() -> None:
    module = AnsibleAWSModule(argument_spec=argument_spec(), supports_check_mode=True)
    errors = check_params(module.params)
    if errors:
        module.fail_json(msg="account_baseline: " + "; ".join(errors))
    Baseline(module).run()


if __name__ == "__main__":
    main()
