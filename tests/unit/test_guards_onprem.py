"""The guards for the site-to-site VPN settings, and the filter that checks the move's path.

Bad values are refused before any AWS call with the setting named; a path without a route, an
attached gateway or a VPN route is reported piece by piece with the fix.
"""

from __future__ import annotations

from typing import Any

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.gearlift.platform.plugins.filter.vpn_path import vpn_path
from ansible_collections.gearlift.platform.plugins.module_utils.guards import validate

from .test_guards import production

SITE = {"gearlift_onprem_cidrs": ["192.168.50.0/24"], "gearlift_onprem_vpn_peer_ip": "203.0.113.10"}


def test_a_site_with_its_vpn_device_passes() -> None:
    result = validate(production(**SITE))
    assert result.ok, result.errors
    assert validate(production()).ok, "no site: no VPN, nothing required"


@pytest.mark.parametrize(
    ("changes", "setting", "reason"),
    [
        ({"gearlift_onprem_cidrs": ["192.168.50.0/24"]}, "gearlift_onprem_vpn_peer_ip", "is required"),
        ({**SITE, "gearlift_onprem_cidrs": ["0.0.0.0/0"]}, "gearlift_onprem_cidrs", "all traffic"),
        ({**SITE, "gearlift_onprem_cidrs": ["10.20.8.0/22"]}, "gearlift_onprem_cidrs", "overlaps gearlift_vpc_cidr"),
        ({**SITE, "gearlift_onprem_cidrs": ["192.168.50.1/24"]}, "gearlift_onprem_cidrs", "is not a CIDR block"),
        ({**SITE, "gearlift_onprem_cidrs": ["fd00::/8"]}, "gearlift_onprem_cidrs", "is not IPv4"),
        ({**SITE, "gearlift_onprem_vpn_peer_ip": "10.1.2.3"}, "gearlift_onprem_vpn_peer_ip", "not a public address"),
        ({**SITE, "gearlift_onprem_vpn_peer_ip": "vpn.example.com"}, "gearlift_onprem_vpn_peer_ip", "not an IPv4"),
        ({**SITE, "gearlift_onprem_bgp_asn": 0}, "gearlift_onprem_bgp_asn", "outside"),
        ({**SITE, "gearlift_onprem_bgp_asn": 4294967295}, "gearlift_onprem_bgp_asn", "outside"),
    ],
)
def test_bad_vpn_settings_are_refused_naming_the_setting(changes: dict[str, Any], setting: str, reason: str) -> None:
    result = validate(production(**changes))
    assert not result.ok
    assert [e for e in result.errors if e.startswith(f"{setting}: ") and reason in e], result.errors


# ------------------------------------------------------------------ the path


def _table(routes: list[dict[str, str]], vpc: str = "vpc-1") -> dict[str, Any]:
    local = {"destination_cidr_block": "10.40.0.0/16", "gateway_id": "local", "state": "active"}
    return {"route_table_id": "rtb-db", "vpc_id": vpc, "routes": [local, *routes]}


ROUTE = {"destination_cidr_block": "192.168.50.0/24", "gateway_id": "vgw-1", "state": "active"}
VGW = {"vpn_gateway_id": "vgw-1", "vpc_attachments": [{"vpc_id": "vpc-1", "state": "attached"}]}
VPN = {
    "vpn_gateway_id": "vgw-1",
    "state": "available",
    "routes": [{"destination_cidr_block": "192.168.50.0/24", "state": "available"}],
}


def test_a_provisioned_path_has_no_gaps() -> None:
    assert vpn_path("192.168.50.10", [_table([ROUTE])], [VPN], [VGW]) == []


@pytest.mark.parametrize(
    ("tables", "vpns", "vgws", "missing"),
    [
        ([_table([])], [VPN], [VGW], "has no route"),
        ([_table([{**ROUTE, "gateway_id": "igw-1"}])], [VPN], [VGW], "routes 192.168.50.0/24 to igw-1"),
        ([_table([ROUTE])], [VPN], [{**VGW, "vpc_attachments": []}], "is not attached"),
        ([_table([ROUTE])], [], [VGW], "no available VPN connection"),
        ([_table([ROUTE])], [{**VPN, "state": "deleted"}], [VGW], "no available VPN connection"),
        ([_table([ROUTE])], [{**VPN, "routes": []}], [VGW], "no available VPN connection"),
        ([], [VPN], [VGW], "no route table"),
    ],
)
def test_each_missing_piece_is_named_with_the_fix(
    tables: list[dict[str, Any]], vpns: list[dict[str, Any]], vgws: list[dict[str, Any]], missing: str
) -> None:
    gaps = vpn_path("192.168.50.10", tables, vpns, vgws)
    assert len(gaps) == 1 and missing in gaps[0], gaps
    assert "no route table" in gaps[0] or "gearlift_onprem_cidrs" in gaps[0]


def test_an_address_outside_the_vpns_routes_is_not_carried() -> None:
    gaps = vpn_path("192.168.60.10", [_table([{**ROUTE, "destination_cidr_block": "192.168.0.0/16"}])], [VPN], [VGW])
    assert gaps and "carries 192.168.60.10" in gaps[0]


def test_a_name_instead_of_an_address_is_an_error() -> None:
    with pytest.raises(AnsibleFilterError, match="not an IPv4 address"):
        vpn_path("onprem-db", [_table([ROUTE])], [VPN], [VGW])
