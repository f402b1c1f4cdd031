# Copyright: gearlift contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The tier network ACLs of playbooks/network.yml (pure: CIDRs and ports in, rules out)."""

from __future__ import annotations

import ipaddress
from typing import Any

from ansible.errors import AnsibleFilterError

DOCUMENTATION = r"""
name: tier_nacl_rules
short_description: The stateless inbound and outbound rules of one tier's network ACL
version_added: 0.1.0
description:
  - Network ACLs are stateless, so every allowed flow needs its reply too - TCP 1024-65535 (the ephemeral
    ports AWS recommends covering) back to the side that opened the connection.
  - C(public) - HTTPS/HTTP from the ALB's sources, the app port to the app subnets (ALB -> app), what the NAT
    forwards out for the app tier, and the replies.
  - C(app) - the app port from the public subnets, HTTPS out (AWS APIs through the NAT or the endpoints),
    MySQL (and, with the session store, Redis 6379) to the DB subnets, NFS inside the VPC when there is an
    EFS, NFS from the EFS's extra sources outside the VPC (C(efs_extra_cidrs), the on-premises app servers
    that copy the uploads through the VPN),
    C(gearlift_app_egress_extra), SSH from C(gearlift_ssh_ingress_cidrs), and the replies.
  - C(bake) - the golden-image builder's subnet - HTTPS out (through the NAT, the endpoints, or to S3's addresses
    through the S3 gateway endpoint, which 443 to 0.0.0.0/0 covers),
    C(gearlift_bake_egress_extra), and the replies; nothing comes in but replies. With interface endpoints
    (C(endpoints)) the app tier, where they live, takes HTTPS from it.
  - C(db) - MySQL (and, with the session store, Redis 6379) from the app subnets and
    C(gearlift_db_extra_ingress_cidrs); with an on-premises site, MySQL both ways with the site's networks
    (the database move) - and the replies.
  - The public tier takes what the NAT forwards for the app and bake tiers.
  - Fails when a direction needs more than 20 rules (AWS's default quota per ACL).
positional: plan
options:
  _input:
    description: The tier, C(public), C(app), C(db) or C(bake).
    type: str
    required: true
  plan:
    description: >-
      C(vpc_cidr), C(public), C(app), C(db) (subnet CIDR lists), C(alb_ingress_cidrs), C(app_port),
      C(ssh_cidrs), C(db_extra_cidrs), C(onprem_cidrs), C(app_egress_extra) (as gearlift_app_egress_extra),
      C(efs) (bool), C(session_store) (bool: Redis 6379 from the app to the DB tier), C(efs_extra_cidrs)
      (as gearlift_efs_extra_ingress_cidrs; those inside the VPC need no rule of their own), C(bake) (the bake
      subnet's CIDRs, optional), C(bake_egress_extra) (as gearlift_bake_egress_extra), C(endpoints) (bool:
      interface endpoints in the app subnets).
    type: dict
    required: true
"""

ANYWHERE = "0.0.0.0/0"
EPHEMERAL = (1024, 65535)
QUOTA = 20  # rules per direction, AWS default


def outside_vpc(cidrs: list[str], vpc_cidr: str) -> list[str]:
    """The blocks of ``cidrs`` not inside ``vpc_cidr`` (reached through the VPN, not the VPC's local route)."""
    try:
        vpc = ipaddress.ip_network(vpc_cidr, strict=True)
        nets = [ipaddress.ip_network(str(c), strict=True) for c in cidrs]
    except ValueError as exc:
        raise AnsibleFilterError(f"outside_vpc: {exc}") from exc
    return [str(n) for n in nets if not (n.version == vpc.version and n.subnet_of(vpc))]  # type: ignore[arg-type]


def _rule(proto: str, cidr: str, ports: tuple[int, int]) -> tuple[str, str, int, int]:
    return (proto, str(ipaddress.ip_network(cidr, strict=True)), ports[0], ports[1])


def _one(port: Any) -> tuple[int, int]:
    return (int(port), int(port))


def _numbered(rules: list[tuple[str, str, int, int]], tier: str, direction: str) -> list[list[Any]]:
    unique = list(dict.fromkeys(rules))
    if len(unique) > QUOTA:
        raise AnsibleFilterError(
            f"the {tier} tier's network ACL needs {len(unique)} {direction} rules, more than AWS's default quota of "
            f"{QUOTA}: list fewer CIDR blocks (gearlift_alb_ingress_cidrs, gearlift_onprem_cidrs, "
            "gearlift_db_extra_ingress_cidrs, gearlift_app_egress_extra, gearlift_bake_egress_extra) or raise the "
            "quota and the limit here."
        )
    return [[100 + 10 * i, proto, "allow", cidr, None, None, lo, hi] for i, (proto, cidr, lo, hi) in enumerate(unique)]


def tier_nacl_rules(tier: str, plan: dict[str, Any]) -> dict[str, list[list[Any]]]:
    try:
        public, app, db = list(plan["public"]), list(plan["app"]), list(plan["db"])
        vpc, app_port = plan["vpc_cidr"], int(plan["app_port"])
        extras, bake_extras = (
            [(str(e.get("proto", "tcp")).lower(), str(e["cidr"]), int(e["port"])) for e in plan.get(key, [])]
            for key in ("app_egress_extra", "bake_egress_extra")
        )
        bake = list(plan.get("bake", []))
        endpoints = bool(plan.get("endpoints", False))
        alb_sources = list(plan.get("alb_ingress_cidrs", []))
        ssh, db_extra, onprem = (list(plan.get(k, [])) for k in ("ssh_cidrs", "db_extra_cidrs", "onprem_cidrs"))
        efs = bool(plan.get("efs", False))
        efs_site = outside_vpc(list(plan.get("efs_extra_cidrs", [])), vpc) if efs else []
        sessions = bool(plan.get("session_store", False))
    except (KeyError, TypeError, ValueError) as exc:
        raise AnsibleFilterError(f"tier_nacl_rules: incomplete plan ({exc})") from exc
    ingress: list[tuple[str, str, int, int]] = []
    egress: list[tuple[str, str, int, int]] = []
    try:
        if tier == "public":
            for cidr in alb_sources:
                ingress += [_rule("tcp", cidr, _one(443)), _rule("tcp", cidr, _one(80))]
            for cidr in app:  # what the NAT forwards for the app tier
                ingress.append(_rule("tcp", cidr, _one(443)))
                ingress += [_rule(proto, cidr, _one(port)) for proto, _cidr, port in extras]
            for cidr in bake:  # ... and for the image builder
                ingress.append(_rule("tcp", cidr, _one(443)))
                ingress += [_rule(proto, cidr, _one(port)) for proto, _cidr, port in bake_extras]
            ingress.append(_rule("tcp", ANYWHERE, EPHEMERAL))  # replies to the ALB's and the NAT's connections
            egress += [_rule("tcp", cidr, _one(app_port)) for cidr in app]  # ALB -> app hosts
            egress.append(_rule("tcp", ANYWHERE, _one(443)))
            egress += [_rule(proto, cidr, _one(port)) for proto, cidr, port in extras + bake_extras]
            egress.append(_rule("tcp", ANYWHERE, EPHEMERAL))  # replies to clients, NAT replies to app hosts
            if any(proto == "udp" for proto, _cidr, _port in extras + bake_extras):
                ingress.append(_rule("udp", ANYWHERE, EPHEMERAL))
                egress.append(_rule("udp", ANYWHERE, EPHEMERAL))
        elif tier == "app":
            ingress += [_rule("tcp", cidr, _one(app_port)) for cidr in public]
            ingress += [_rule("tcp", cidr, _one(443)) for cidr in app]  # interface endpoints in the other AZs
            if endpoints:
                ingress += [_rule("tcp", cidr, _one(443)) for cidr in bake]  # ... which the image builder uses too
            ingress += [_rule("tcp", cidr, _one(22)) for cidr in ssh]
            if efs:
                ingress.append(_rule("tcp", vpc, _one(2049)))
            ingress += [_rule("tcp", cidr, _one(2049)) for cidr in efs_site]  # the site's copy of the uploads
            ingress.append(_rule("tcp", ANYWHERE, EPHEMERAL))  # replies (internet via NAT, DB, endpoints)
            egress.append(_rule("tcp", ANYWHERE, _one(443)))
            egress += [_rule("tcp", cidr, _one(3306)) for cidr in db]
            if sessions:
                egress += [_rule("tcp", cidr, _one(6379)) for cidr in db]  # the session store
            if efs:
                egress.append(_rule("tcp", vpc, _one(2049)))
            egress += [_rule(proto, cidr, _one(port)) for proto, cidr, port in extras]
            egress += [_rule("tcp", cidr, EPHEMERAL) for cidr in public + app + ssh + efs_site]  # replies
            if endpoints:
                egress += [_rule("tcp", cidr, EPHEMERAL) for cidr in bake]  # the endpoints' replies to the builder
            if any(proto == "udp" for proto, _cidr, _port in extras):
                ingress += [_rule("udp", cidr, EPHEMERAL) for proto, cidr, _port in extras if proto == "udp"]
        elif tier == "db":
            ingress += [_rule("tcp", cidr, _one(3306)) for cidr in app + db_extra + onprem]
            if sessions:
                ingress += [_rule("tcp", cidr, _one(6379)) for cidr in app]  # the session store (ElastiCache)
            ingress += [_rule("tcp", cidr, EPHEMERAL) for cidr in onprem]  # replies to the move's connections
            egress += [_rule("tcp", cidr, EPHEMERAL) for cidr in app + db_extra + onprem]
            egress += [_rule("tcp", cidr, _one(3306)) for cidr in onprem]  # the move: RDS <-> the site's MySQL
        elif tier == "bake":
            if not bake:
                raise AnsibleFilterError("tier_nacl_rules: the plan has no bake subnet (bake)")
            ingress.append(_rule("tcp", ANYWHERE, EPHEMERAL))  # replies (internet via NAT, endpoints)
            egress.append(_rule("tcp", ANYWHERE, _one(443)))
            egress += [_rule(proto, cidr, _one(port)) for proto, cidr, port in bake_extras]
            if any(proto == "udp" for proto, _cidr, _port in bake_extras):
                ingress += [_rule("udp", cidr, EPHEMERAL) for proto, cidr, _port in bake_extras if proto == "udp"]
        else:
            raise AnsibleFilterError(f"tier_nacl_rules: unknown tier {tier!r} (public, app, db, bake)")
    except ValueError as exc:
        raise AnsibleFilterError(f"tier_nacl_rules: {exc}") from exc
    return {"ingress": _numbered(ingress, tier, "inbound"), "egress": _numbered(egress, tier, "outbound")}


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"tier_nacl_rules": tier_nacl_rules, "outside_vpc": outside_vpc}
