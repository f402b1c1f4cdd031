# Copyright: gearlift contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters for the network playbook."""

from __future__ import annotations

from typing import Any

from ansible.errors import AnsibleFilterError

DOCUMENTATION = r"""
name: subnet_plan
short_description: One entry per tier and Availability Zone, with its CIDR
version_added: 0.1.0
description:
  - Pairs the chosen AZs with the derived subnet CIDRs of each tier (public, app, db), then the bake subnet
    (C(bake_subnet_cidr), the golden-image builder's own) in the first AZ.
positional: derived
options:
  _input:
    description: The AZ names, in order.
    type: list
    elements: str
    required: true
  derived:
    description: >-
      The guards role's C(gearlift_derived) with C(public_subnet_cidrs), C(app_subnet_cidrs), C(db_subnet_cidrs)
      and C(bake_subnet_cidr).
    type: dict
    required: true
"""

TIERS = ("public", "app", "db")


def subnet_plan(zones: list[str], derived: dict[str, Any]) -> list[dict[str, str]]:
    plan = []
    for tier in TIERS:
        cidrs = derived.get(f"{tier}_subnet_cidrs") or []
        if len(cidrs) < len(zones):
            raise AnsibleFilterError(f"{tier}: {len(cidrs)} subnet CIDRs for {len(zones)} AZs")
        plan.extend({"tier": tier, "az": az, "cidr": cidrs[i]} for i, az in enumerate(zones))
    bake = derived.get("bake_subnet_cidr")
    if bake and zones:  # the golden-image builder's own subnet, one, in the first AZ
        plan.append({"tier": "bake", "az": zones[0], "cidr": bake})
    return plan


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"subnet_plan": subnet_plan}
