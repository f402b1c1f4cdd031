#!/usr/bin/python
# Copyright: gearlift maintainers
# Apache License 2.0 (see galaxy.yml)
"""Request (or adopt) an ACM certificate validated by DNS, and return its validation records."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: acm_dns_certificate
short_description: Request or adopt an Amazon-issued ACM certificate with DNS validation
version_added: 0.1.0
description:
  - Ensures there is an Amazon-issued ACM certificate for I(domain_name) (and I(subject_alternative_names)),
    validated by DNS. C(community.aws.acm_certificate) only imports certificates; this module requests them.
  - Idempotent - an existing Amazon-issued certificate for exactly these names that is issued or pending
    validation is adopted (issued first); a new one is requested only when there is none. Check mode
    makes read calls only.
  - Returns the CNAME records ACM wants for DNS validation, to be written into the hosted zone
    (C(amazon.aws.route53)); with I(wait), waits until ACM has issued the certificate.
author:
  - gearlift maintainers (!UNKNOWN)
options:
  domain_name:
    description: The certificate's name (for example C(shop.example.com)).
    type: str
    required: true
  subject_alternative_names:
    description: Further names the certificate covers.
    type: list
    elements: str
    default: []
  tags:
    description: Tags of a newly requested certificate (an adopted one keeps its own).
    type: dict
    default: {}
  wait:
    description: Wait until the certificate is C(ISSUED); fail when ACM gives up on it or I(wait_timeout) passes.
    type: bool
    default: false
  wait_timeout:
    description: Seconds to wait, for the validation records and, with I(wait), for the issue.
    type: int
    default: 900
notes:
  - IAM permissions - C(acm:ListCertificates), C(acm:DescribeCertificate), C(acm:RequestCertificate),
    C(acm:AddTagsToCertificate).
  - The pure logic is in the collection's C(module_utils/acm_dns.py).
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: The shop's certificate (requested once)
  gearlift.platform.acm_dns_certificate:
    domain_name: shop.example.com
  register: cert

- name: Its DNS validation records
  amazon.aws.route53:
    zone: example.com
    record: "{{ item.name }}"
    type: "{{ item.type }}"
    value: "{{ item.value }}"
    ttl: 300
    overwrite: true
    state: present
  loop: "{{ cert.validation_records }}"

- name: Issued
  gearlift.platform.acm_dns_certificate:
    domain_name: shop.example.com
    wait: true
"""

RETURN = r"""
certificate_arn:
  description: The certificate's ARN (empty in check mode when one would be requested).
  returned: always
  type: str
status:
  description:
    - ACM's status of the certificate (C(ISSUED), C(PENDING_VALIDATION)).
    - C(absent) in check mode when one would be requested.
  returned: always
  type: str
validation_records:
  description: The CNAME records DNS validation needs, each C(name), C(type), C(value) (no trailing dots).
  returned: always
  type: list
  elements: dict
"""

import time

try:
    import botocore
except ImportError:  # handled by AnsibleAWSModule
    pass

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry
from ansible_collections.gearlift.platform.plugins.module_utils import acm_dns

POLL_SECONDS = 5


def _describe(module, client, arn):
    try:
        return client.describe_certificate(aws_retry=True, CertificateArn=arn)["Certificate"]
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
        module.fail_json_aws(e, msg=f"Could not describe the certificate {arn}")


def _candidates(module, client, domain):
    arns = []
    try:
        paginator = client.get_paginator("list_certificates")
        for page in paginator.paginate(CertificateStatuses=list(acm_dns.USABLE_STATES)):
            arns += [
                c["CertificateArn"]
                for c in page.get("CertificateSummaryList", [])
                if c.get("DomainName", "").rstrip(".").lower() == domain
            ]
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
        module.fail_json_aws(e, msg=f"Could not list the ACM certificates for {domain}")
    return [_describe(module, client, arn) for arn in arns]


def main() -> None:
    module = AnsibleAWSModule(
        argument_spec=dict(
            domain_name=dict(type="str", required=True),
            subject_alternative_names=dict(type="list", elements="str", default=[]),
            tags=dict(type="dict", default={}),
            wait=dict(type="bool", default=False),
            wait_timeout=dict(type="int", default=900),
        ),
        supports_check_mode=True,
    )
    domain = module.params["domain_name"].rstrip(".").lower()
    sans = [s.rstrip(".").lower() for s in module.params["subject_alternative_names"]]
    if not domain or " " in domain:
        module.fail_json(
            msg=f"acm_dns_certificate: domain_name must be a DNS name, got {module.params['domain_name']!r}"
        )
    if module.params["wait_timeout"] < 0:
        module.fail_json(msg="acm_dns_certificate: wait_timeout must be 0 or more seconds")
    client = module.client("acm", retry_decorator=AWSRetry.jittered_backoff())

    chosen = acm_dns.choose_certificate(_candidates(module, client, domain), domain, sans)
    changed = False
    if chosen is None:
        changed = True
        if module.check_mode:
            module.exit_json(changed=True, certificate_arn="", status="absent", validation_records=[])
        request = dict(
            DomainName=domain,
            ValidationMethod="DNS",
            IdempotencyToken=acm_dns.idempotency_token(domain, sans),
            # Options left out: certificate transparency logging is ENABLED by default (and moto 5.2's
            # ListCertificates breaks on Options without an Export key).
        )
        if sans:
            request["SubjectAlternativeNames"] = sorted({domain, *sans})
        if module.params["tags"]:
            request["Tags"] = [{"Key": k, "Value": str(v)} for k, v in sorted(module.params["tags"].items())]
        try:
            arn = client.request_certificate(aws_retry=True, **request)["CertificateArn"]
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
            module.fail_json_aws(e, msg=f"Could not request a certificate for {domain}")
        chosen = _describe(module, client, arn)
    arn = chosen["CertificateArn"]

    deadline = time.monotonic() + module.params["wait_timeout"]
    while not acm_dns.records_ready(chosen) and time.monotonic() < deadline:
        time.sleep(POLL_SECONDS)
        chosen = _describe(module, client, arn)
    if not acm_dns.records_ready(chosen):
        module.fail_json(msg=f"ACM named no DNS validation record for {arn} within {module.params['wait_timeout']} s")
    if module.params["wait"]:
        while chosen["Status"] != "ISSUED" and time.monotonic() < deadline:
            if chosen["Status"] in acm_dns.DEAD_STATES:
                break
            time.sleep(POLL_SECONDS)
            chosen = _describe(module, client, arn)
        if chosen["Status"] != "ISSUED":
            module.fail_json(
                msg=f"certificate {arn} for {domain} is {chosen['Status']}, not ISSUED, after "
                f"{module.params['wait_timeout']} s: are its validation records in the zone, and is the zone "
                "delegated (the registrar's NS records name the hosted zone's name servers)?",
                certificate_arn=arn,
                status=chosen["Status"],
                validation_records=acm_dns.validation_records(chosen),
            )
    module.exit_json(
        changed=changed,
        certificate_arn=arn,
        status=chosen["Status"],
        validation_records=acm_dns.validation_records(chosen),
    )


if __name__ == "__main__":
    main()
