# Copyright: gearlift contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What is missing on the path from a VPC's subnets to an on-premises address through a Site-to-Site VPN."""

from __future__ import annotations

import ipaddress
from typing import Any

from ansible.errors import AnsibleFilterError

DOCUMENTATION = r"""
name: vpn_path
short_description: The missing pieces of the path from subnets to an on-premises address over a VPN
version_added: 0.1.0
description:
  - For each route table, the longest-prefix route covering the address must go to a virtual private
    gateway attached to the table's VPC, and an available Site-to-Site VPN connection on that gateway
    must carry a static route covering the address.
  - Returns one message per missing piece, naming the fix; an empty list when the path exists.
positional: route_tables, vpn_connections, vpn_gateways
options:
  _input:
    description: The on-premises IPv4 address (for example the source database server).
    type: str
    required: true
  route_tables:
    description: C(route_tables) of M(amazon.aws.ec2_vpc_route_table_info) for the subnets that need the path.
    type: list
    elements: dict
    required: true
  vpn_connections:
    description: C(vpn_connections) of M(amazon.aws.ec2_vpc_vpn_info).
    type: list
    elements: dict
    required: true
  vpn_gateways:
    description: C(virtual_gateways) of M(amazon.aws.ec2_vpc_vgw_info).
    type: list
    elements: dict
    required: true
"""

FIX = "set gearlift_onprem_cidrs and gearlift_onprem_vpn_peer_ip in the inventory and run playbooks/network.yml"


def _net(text: str) -> ipaddress.IPv4Network:
    return ipaddress.IPv4Network(text, strict=False)


def _route_target(table: dict[str, Any], address: ipaddress.IPv4Network) -> tuple[str, str]:
    best: tuple[int, str, str] | None = None
    for route in table.get("routes", []):
        cidr = route.get("destination_cidr_block")
        if not cidr or route.get("state", "active") != "active" or not address.subnet_of(_net(cidr)):
            continue
        target = route.get("gateway_id") or route.get("nat_gateway_id") or route.get("transit_gateway_id") or ""
        if best is None or _net(cidr).prefixlen > best[0]:
            best = (_net(cidr).prefixlen, cidr, target)
    return (best[1], best[2]) if best else ("", "")


def vpn_path(
    address: str,
    route_tables: list[dict[str, Any]],
    vpn_connections: list[dict[str, Any]],
    vpn_gateways: list[dict[str, Any]],
) -> list[str]:
    try:
        dest = _net(f"{address}/32")
    except ValueError as exc:
        raise AnsibleFilterError(f"vpn_path: {address!r} is not an IPv4 address") from exc
    if not route_tables:
        return ["no route table for the subnets that need the path (run playbooks/network.yml)"]
    attached = {
        g.get("vpn_gateway_id"): {a.get("vpc_id") for a in g.get("vpc_attachments", []) if a.get("state") == "attached"}
        for g in vpn_gateways
    }
    problems = []
    for table in route_tables:
        name = table.get("route_table_id", "?")
        cidr, target = _route_target(table, dest)
        if not target.startswith("vgw-"):
            how = f"routes {cidr} to {target}" if target else "has no route"
            problems.append(f"route table {name} {how} for {address}: it needs a route to the VPN gateway; {FIX}")
            continue
        if table.get("vpc_id") not in attached.get(target, set()):
            problems.append(f"VPN gateway {target} is not attached to {table.get('vpc_id')}; {FIX}")
            continue
        carried = [
            c
            for c in vpn_connections
            if c.get("vpn_gateway_id") == target
            and c.get("state") == "available"
            and any(
                r.get("state", "available") == "available" and dest.subnet_of(_net(r["destination_cidr_block"]))
                for r in c.get("routes", [])
                if r.get("destination_cidr_block")
            )
        ]
        if not carried:
            problems.append(f"no available VPN connection on {target} carries {address} (a static route); {FIX}")
    return sorted(set(problems))


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"vpn_path": vpn_path}
