# Copyright: gearlift contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters for the edge playbook."""

from __future__ import annotations

from typing import Any

from ansible.errors import AnsibleFilterError

DOCUMENTATION = r"""
name: waf_rules
short_description: WAFv2 rules for AWS managed rule groups plus an IP rate limit
version_added: 0.1.0
description:
  - One rule per AWS managed rule group (in the given order, priorities 0..n-1, the group's own actions),
    then a rate-based blocking rule per client IP, in the shape C(community.aws.wafv2_web_acl) takes.
positional: rate_limit
options:
  _input:
    description: Names of AWS managed rule groups.
    type: list
    elements: str
    required: true
  rate_limit:
    description: Requests per 5 minutes per IP before blocking (100 or more).
    type: int
    required: true
"""


def _visibility(metric: str) -> dict[str, Any]:
    return {"sampled_requests_enabled": True, "cloud_watch_metrics_enabled": True, "metric_name": metric}


def waf_rules(groups: list[str], rate_limit: int) -> list[dict[str, Any]]:
    if int(rate_limit) < 100:
        raise AnsibleFilterError(f"rate_limit must be at least 100 (WAF's minimum), got {rate_limit}")
    rules: list[dict[str, Any]] = []
    for priority, group in enumerate(groups):
        rules.append(
            {
                "name": group,
                "priority": priority,
                "override_action": {"none": {}},
                "visibility_config": _visibility(group),
                "statement": {"managed_rule_group_statement": {"vendor_name": "AWS", "name": group}},
            }
        )
    rules.append(
        {
            "name": "rate-limit-per-ip",
            "priority": len(groups),
            "action": {"block": {}},
            "visibility_config": _visibility("rate-limit-per-ip"),
            "statement": {"rate_based_statement": {"limit": int(rate_limit), "aggregate_key_type": "IP"}},
        }
    )
    return rules


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"waf_rules": waf_rules}
