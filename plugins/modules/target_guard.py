#!/usr/bin/python
# Copyright: gearlift maintainers
# Apache License 2.0 (see galaxy.yml)
"""Refuse insecure or inconsistent gearlift inventory settings before any AWS change."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: target_guard
short_description: Refuse insecure or inconsistent gearlift inventory settings before any AWS change
version_added: 0.1.0
description:
  - Checks the inventory's top-level C(gearlift_*) settings as one dictionary and fails, listing every
    problem at once (numbered), when a setting is insecure or inconsistent. Each message names the
    setting and, where one exists, the C(gearlift_allow_*) variable that overrides the guard.
  - Examples of what is refused -- a VPC CIDR that is not private or not /16 to /20; subnets outside
    the VPC, overlapping, or not one per Availability Zone; no ALB certificate; an ALB security
    policy that accepts TLS below 1.2; SSH, or MySQL from outside the VPC; IMDSv1; public IPs;
    unencrypted EBS or RDS storage; a single instance, a single-AZ, short-lived or deletable
    database in production; CloudWatch log retention under 365 days; a backup copy into the same
    region; an instance type that does not match C(gearlift_architecture); a malformed peak schedule.
    The full list, with the PCI DSS and Security Hub controls behind each guard, is in the
    C(gearlift.platform.guards) role's README.
  - On success it returns the values the provisioning playbooks derive from the settings
    (subnet CIDRs per tier, NAT gateway count, whether the target is production).
  - Runs on the controller, makes no AWS call and never changes anything (C(changed=false)).
    The C(gearlift.platform.guards) role collects the settings and calls it; the role's
    C(meta/argument_specs.yml) documents every setting and type-checks it first.
  - Supports check mode (it behaves the same).
options:
  config:
    description:
      - The settings, keyed by their variable names (C(gearlift_environment), C(gearlift_vpc_cidr), ...).
      - Settings that are missing take the documented defaults; C(gearlift_environment), C(gearlift_project),
        C(gearlift_region) and C(gearlift_vpc_cidr) are required.
      - Unknown C(gearlift_*) names are reported as warnings (a misspelt override never silently applies).
    type: dict
    required: true
notes:
  - The check logic lives in the collection's C(module_utils/guards.py) (function C(validate)) so it is unit tested
    without Ansible.
seealso:
  - name: gearlift.platform.guards role
    description: Collects the C(gearlift_*) variables, calls this module and sets C(gearlift_derived).
    link: https://example.invalid/gearlift/roles/guards/README.md
author:
  - gearlift maintainers (!UNKNOWN)
"""

EXAMPLES = r"""
- name: Check the target's settings (what the guards role does)
  gearlift.platform.target_guard:
    config:
      gearlift_environment: production
      gearlift_project: shop
      gearlift_region: eu-west-1
      gearlift_az_count: 3
      gearlift_vpc_cidr: 10.20.0.0/16
      gearlift_certificate_arn: arn:aws:acm:eu-west-1:111122223333:certificate/0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0
  register: guard

- name: Use the derived subnet plan
  ansible.builtin.debug:
    msg: "{{ guard.derived.app_subnet_cidrs }}"

- name: Accept SSH from the office on purpose (the override is reported as a warning)
  gearlift.platform.target_guard:
    config:
      gearlift_environment: staging
      gearlift_project: shop
      gearlift_region: eu-west-1
      gearlift_vpc_cidr: 10.30.0.0/16
      gearlift_certificate_arn: arn:aws:acm:eu-west-1:111122223333:certificate/0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0
      gearlift_ssh_ingress_cidrs: [198.51.100.0/24]
      gearlift_allow_ssh: true
"""

RETURN = r"""
derived:
  description:
    - Values computed from the settings, for the provisioning playbooks.
    - The C(gearlift.platform.guards) role sets them as C(gearlift_derived).
  returned: success
  type: dict
  contains:
    environment:
      description: The target's environment.
      type: str
      sample: production
    production:
      description: Whether the production-only guards apply.
      type: bool
      sample: true
    az_count:
      description: Number of Availability Zones used.
      type: int
      sample: 3
    public_subnet_cidrs:
      description: Public subnets (ALB, NAT), one per AZ; derived from the VPC CIDR unless given.
      type: list
      elements: str
      sample: [10.20.0.0/24, 10.20.1.0/24, 10.20.2.0/24]
    app_subnet_cidrs:
      description: Private app subnets, one per AZ.
      type: list
      elements: str
      sample: [10.20.64.0/20, 10.20.128.0/20, 10.20.192.0/20]
    db_subnet_cidrs:
      description: Isolated database subnets, one per AZ.
      type: list
      elements: str
      sample: [10.20.4.0/24, 10.20.5.0/24, 10.20.6.0/24]
    nat_mode:
      description: C(per_az) or C(single), after resolving C(auto) (per_az in production).
      type: str
      sample: per_az
    nat_gateway_count:
      description: NAT gateways to create.
      type: int
      sample: 3
    architecture:
      description: CPU architecture of the fleet.
      type: str
      sample: arm64
guard_warnings:
  description:
    - Accepted but noteworthy settings (overrides in effect, unknown names, trade-offs).
    - The same messages are also emitted as Ansible warnings.
  returned: always
  type: list
  elements: str
  sample: ["gearlift_allow_ssh: override in effect, accepted gearlift_ssh_ingress_cidrs (...)"]
errors:
  description: Every refused setting, one message each, naming the setting and the override variable if any.
  returned: failure
  type: list
  elements: str
  sample: ["gearlift_db_extra_ingress_cidrs: 0.0.0.0/0 opens MySQL 3306 to the whole internet (PCI DSS 1.3.1 / 1.4.1).
            Override: gearlift_allow_world_db: true."]
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.gearlift.platform.plugins.module_utils.guards import validate


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(config=dict(type="dict", required=True)),
        supports_check_mode=True,
    )
    result = validate(module.params["config"])
    for warning in result.warnings:
        module.warn(warning)
    if result.errors:
        numbered = "\n".join(f"{i}. {error}" for i, error in enumerate(result.errors, start=1))
        module.fail_json(
            msg=f"gearlift guards refused {len(result.errors)} setting(s) before any AWS change:\n{numbered}",
            errors=result.errors,
            guard_warnings=result.warnings,
            changed=False,
        )
    module.exit_json(changed=False, derived=result.derived, guard_warnings=result.warnings)


if __name__ == "__main__":
    main()
