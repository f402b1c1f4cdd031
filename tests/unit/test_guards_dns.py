"""The DNS, certificate and stickiness guards (issue 15 items 3 and 5): each bad case names its setting,
the reason and the override (or that none exists), and the DNS settings of a valid shop pass clean."""

from __future__ import annotations

import re
from typing import Any

import pytest
from ansible_collections.gearlift.platform.plugins.module_utils.guards import validate

from tests.unit.test_guards import NO_OVERRIDE, production

DNS = {
    "gearlift_dns_zone": "example.com",
    "gearlift_shop_domain": "shop.example.com",
    "gearlift_dns_onprem_address": "203.0.113.20",
}


def shop(**changes: Any) -> dict[str, Any]:
    return production(**{**DNS, **changes})


def test_a_valid_dns_setup_passes_without_warnings() -> None:
    result = validate(shop())
    assert result.ok, result.errors
    assert result.warnings == []


def test_acm_dns_mode_needs_no_certificate_arn_and_passes() -> None:
    result = validate(shop(gearlift_certificate_mode="acm_dns", gearlift_certificate_arn=""))
    assert result.ok, result.errors
    assert not [w for w in result.warnings if "gearlift_allow_http_only" in w], result.warnings


BAD_CASES: list[tuple[str, dict[str, Any], str, str, str | None]] = [
    (
        "no-certificate-http-only",
        {"gearlift_certificate_arn": ""},
        "gearlift_certificate_arn",
        "plain HTTP",
        "gearlift_allow_http_only",
    ),
    (
        "mode-unknown",
        {"gearlift_certificate_mode": "letsencrypt"},
        "gearlift_certificate_mode",
        "is not one of",
        NO_OVERRIDE,
    ),
    (
        "acm-dns-without-zone",
        {
            "gearlift_certificate_mode": "acm_dns",
            "gearlift_certificate_arn": "",
            "gearlift_dns_zone": "",
            "gearlift_shop_domain": "",
            "gearlift_dns_onprem_address": "",
        },
        "gearlift_certificate_mode",
        "validates the certificate through the Route 53 zone",
        NO_OVERRIDE,
    ),
    (
        "acm-dns-with-arn",
        {"gearlift_certificate_mode": "acm_dns"},
        "gearlift_certificate_arn",
        "gearlift_certificate_mode is acm_dns",
        NO_OVERRIDE,
    ),
    (
        "ttl-zero",
        {"gearlift_dns_cutover_ttl": 0},
        "gearlift_dns_cutover_ttl",
        "0 s is outside 60-86400",
        "gearlift_allow_unusual_dns_ttl",
    ),
    (
        "ttl-huge",
        {"gearlift_dns_ttl": 604800},
        "gearlift_dns_ttl",
        "604800 s is outside 60-86400",
        "gearlift_allow_unusual_dns_ttl",
    ),
    ("ttl-negative", {"gearlift_dns_ttl": -1}, "gearlift_dns_ttl", "outside the allowed range", NO_OVERRIDE),
    (
        "cutover-ttl-above-ttl",
        {"gearlift_dns_ttl": 120, "gearlift_dns_cutover_ttl": 300},
        "gearlift_dns_cutover_ttl",
        "must lower the TTL",
        NO_OVERRIDE,
    ),
    (
        "canary-above-100",
        {"gearlift_dns_canary_weight": 101},
        "gearlift_dns_canary_weight",
        "101 is outside the allowed range 0..100",
        NO_OVERRIDE,
    ),
    ("canary-negative", {"gearlift_dns_canary_weight": -5}, "gearlift_dns_canary_weight", "outside", NO_OVERRIDE),
    (
        "domain-outside-zone",
        {"gearlift_shop_domain": "shop.example.org"},
        "gearlift_shop_domain",
        "is not inside gearlift_dns_zone",
        NO_OVERRIDE,
    ),
    (
        "lookalike-zone-suffix",
        {"gearlift_shop_domain": "shopexample.com"},
        "gearlift_shop_domain",
        "is not inside gearlift_dns_zone",
        NO_OVERRIDE,
    ),
    ("zone-without-domain", {"gearlift_shop_domain": ""}, "gearlift_shop_domain", "is empty", NO_OVERRIDE),
    ("domain-without-zone", {"gearlift_dns_zone": ""}, "gearlift_dns_zone", "is empty", NO_OVERRIDE),
    (
        "zone-not-a-name",
        {"gearlift_dns_zone": "exa mple", "gearlift_shop_domain": ""},
        "gearlift_dns_zone",
        "is not a DNS domain name",
        NO_OVERRIDE,
    ),
    ("onprem-missing", {"gearlift_dns_onprem_address": ""}, "gearlift_dns_onprem_address", "is empty", NO_OVERRIDE),
    (
        "onprem-a-name",
        {"gearlift_dns_onprem_address": "legacy.example.com"},
        "gearlift_dns_onprem_address",
        "is not an IPv4 address",
        NO_OVERRIDE,
    ),
    (
        "stickiness-too-long",
        {"gearlift_tg_stickiness_seconds": 604801},
        "gearlift_tg_stickiness_seconds",
        "outside the allowed range 1..604800",
        NO_OVERRIDE,
    ),
    (
        "stickiness-zero",
        {"gearlift_tg_stickiness_seconds": 0},
        "gearlift_tg_stickiness_seconds",
        "outside",
        NO_OVERRIDE,
    ),
]


@pytest.mark.parametrize(
    ("changes", "setting", "reason", "override"), [c[1:] for c in BAD_CASES], ids=[c[0] for c in BAD_CASES]
)
def test_bad_dns_setting_is_refused_naming_setting_and_override(
    changes: dict[str, Any], setting: str, reason: str, override: str | None
) -> None:
    result = validate(shop(**changes))
    matching = [e for e in result.errors if e.startswith(f"{setting}: ") and reason in e]
    assert len(matching) == 1, result.errors
    assert len(result.errors) == 1, result.errors
    if override:
        assert re.search(rf"Override: {override}: true\.$", matching[0]), matching[0]
    else:
        assert matching[0].endswith("No override exists: change the value."), matching[0]


def test_unusual_ttl_override_is_recorded_as_a_warning() -> None:
    result = validate(shop(gearlift_dns_cutover_ttl=5, gearlift_allow_unusual_dns_ttl=True))
    assert result.ok, result.errors
    assert [w for w in result.warnings if w.startswith("gearlift_allow_unusual_dns_ttl: override in effect")]


@pytest.mark.parametrize(
    ("changes", "setting", "words"),
    [
        ({"gearlift_dns_canary_weight": 0}, "gearlift_dns_canary_weight", "sends no customer to the ALB"),
        ({"gearlift_dns_onprem_address": "192.168.50.20"}, "gearlift_dns_onprem_address", "not a public address"),
        ({"gearlift_deregistration_delay": 5}, "gearlift_deregistration_delay", "stickiness on in production"),
    ],
)
def test_accepted_but_noteworthy_settings_are_warned(changes: dict[str, Any], setting: str, words: str) -> None:
    result = validate(shop(**changes))
    assert result.ok, result.errors
    assert [w for w in result.warnings if w.startswith(f"{setting}: ") and words in w], result.warnings


def test_short_drain_is_not_warned_without_stickiness_or_outside_production() -> None:
    unstuck = validate(shop(gearlift_deregistration_delay=5, gearlift_tg_stickiness=False))
    assert not [w for w in unstuck.warnings if w.startswith("gearlift_deregistration_delay")], unstuck.warnings
    # (stickiness off with in-memory carts is warned about on its own: gearlift_session_store)
    assert [w.split(":")[0] for w in unstuck.warnings] == ["gearlift_session_store"], unstuck.warnings
    staging = validate(shop(gearlift_deregistration_delay=5, gearlift_environment="staging"))
    assert not [w for w in staging.warnings if w.startswith("gearlift_deregistration_delay")], staging.warnings
