# Copyright: gearlift maintainers
# Apache License 2.0 (see galaxy.yml)
"""Pure logic of gearlift.platform.vpc_endpoint_route_tables: no AWS calls here.

A gateway endpoint (S3, DynamoDB) reaches a subnet through the subnet's route table: associating a
table adds a route to the service's prefix list with the endpoint as its target
(``ModifyVpcEndpoint`` ``AddRouteTableIds`` / ``RemoveRouteTableIds``). The endpoint keeps its id
when tables are added or removed, so a VPC that gains a subnet keeps its endpoint and its policy.

* The plan: the tables to add and, only when asked to purge, the tables someone else associated
  that are not named (by default they are left alone).
* A route table holds one route per prefix list, so it can be on one endpoint of a service only
  (AWS refuses a second with ``RouteAlreadyExists``): the tables another endpoint of the same
  service already holds are named before any change.
* The tables to add must be route tables of the endpoint's VPC.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

ROUTE_TABLE_ID = re.compile(r"^rtb-[0-9a-f]{8,17}$")
#: States in which an endpoint is gone or going: nothing can be associated with it.
GONE = frozenset({"deleting", "deleted", "rejected", "failed", "expired"})


class EndpointError(ValueError):
    """Bad input or an endpoint that cannot take route tables, reported before any change."""


@dataclass(frozen=True)
class RouteTablePlan:
    add: tuple[str, ...]
    remove: tuple[str, ...]
    after: tuple[str, ...]

    @property
    def changed(self) -> bool:
        return bool(self.add or self.remove)


def route_table_ids(values: Iterable[Any]) -> list[str]:
    """The named route table ids, checked, in order, each once."""
    ids: list[str] = []
    for value in values:
        rtb = str(value).strip()
        if not ROUTE_TABLE_ID.match(rtb):
            raise EndpointError(f"{value!r} is not a route table id (rtb-...)")
        if rtb not in ids:
            ids.append(rtb)
    return ids


def check_gateway(endpoint: Mapping[str, Any]) -> None:
    """Refuse an endpoint that is not a gateway endpoint or is gone."""
    name = endpoint.get("VpcEndpointId", "?")
    kind = str(endpoint.get("VpcEndpointType") or "Gateway")  # moto leaves the type out when not given
    if kind.lower() != "gateway":
        raise EndpointError(f"{name} is an {kind} endpoint: only gateway endpoints have route tables")
    state = str(endpoint.get("State") or "").lower()
    if state in GONE:
        raise EndpointError(f"{name} is {state}: it takes no route tables")


def plan(current: Iterable[str], wanted: Iterable[str], purge: bool) -> RouteTablePlan:
    """What ModifyVpcEndpoint must add and remove so that ``wanted`` are associated (and, with
    ``purge``, only they)."""
    have = list(dict.fromkeys(current))
    want = list(dict.fromkeys(wanted))
    add = tuple(t for t in want if t not in have)
    remove = tuple(t for t in have if t not in want) if purge else ()
    after = tuple(sorted((set(have) | set(add)) - set(remove)))
    return RouteTablePlan(add=add, remove=remove, after=after)


def held_elsewhere(endpoint_id: str, endpoints: Iterable[Mapping[str, Any]], tables: Iterable[str]) -> dict[str, str]:
    """Of ``tables``, those another (not gone) endpoint among ``endpoints`` already holds: table -> endpoint."""
    wanted = set(tables)
    held: dict[str, str] = {}
    for other in endpoints:
        if other.get("VpcEndpointId") == endpoint_id or str(other.get("State") or "").lower() in GONE:
            continue
        for rtb in other.get("RouteTableIds") or []:
            if rtb in wanted:
                held.setdefault(rtb, str(other.get("VpcEndpointId")))
    return dict(sorted(held.items()))


def not_in_vpc(vpc_id: str, wanted: Iterable[str], found: Iterable[Mapping[str, Any]]) -> list[str]:
    """Of ``wanted``, the route tables that are missing from ``found`` (DescribeRouteTables) or in another VPC."""
    in_vpc = {t.get("RouteTableId") for t in found if t.get("VpcId") == vpc_id}
    return [t for t in wanted if t not in in_vpc]
