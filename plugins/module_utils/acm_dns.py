# Copyright: gearlift maintainers
# Apache License 2.0 (see galaxy.yml)
"""Pure logic behind ``gearlift.platform.acm_dns_certificate``: which ACM certificate is "the" one for a
domain, the DNS validation records it asks for, and whether it is done. No AWS call here.

ACM lets an account hold any number of certificates for one name, so the module adopts an existing
Amazon-issued certificate for the same names (issued first, then one still pending validation) and
requests a new one only when there is none; a certificate that failed, expired or was revoked is
never adopted.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

#: States of an Amazon-issued certificate worth adopting, best first.
USABLE_STATES = ("ISSUED", "PENDING_VALIDATION")
#: States that end the wait with an error (ACM will not issue it any more).
DEAD_STATES = ("FAILED", "VALIDATION_TIMED_OUT", "REVOKED", "EXPIRED", "INACTIVE")


def names_of(domain: str, sans: Iterable[str] = ()) -> frozenset[str]:
    """The set of names a certificate covers (the domain is always one of its SANs on ACM)."""
    return frozenset(n.rstrip(".").lower() for n in (domain, *sans))


def choose_certificate(
    certificates: Sequence[Mapping[str, Any]], domain: str, sans: Iterable[str] = ()
) -> Mapping[str, Any] | None:
    """The DescribeCertificate item to adopt for ``domain`` + ``sans``, or None (request one).

    Only Amazon-issued certificates for exactly these names, in a usable state; issued before
    pending, then the newest.
    """
    wanted = names_of(domain, sans)
    fitting = [
        c
        for c in certificates
        if c.get("Type") == "AMAZON_ISSUED"
        and c.get("Status") in USABLE_STATES
        and names_of(str(c.get("DomainName", "")), c.get("SubjectAlternativeNames") or ()) == wanted
    ]
    if not fitting:
        return None
    return sorted(
        fitting,
        key=lambda c: (USABLE_STATES.index(str(c["Status"])), -_epoch(c.get("CreatedAt"))),
    )[0]


def _epoch(value: Any) -> float:
    if value is None:
        return 0.0
    if hasattr(value, "timestamp"):
        return float(value.timestamp())
    return float(value)


def validation_records(certificate: Mapping[str, Any]) -> list[dict[str, str]]:
    """The CNAME records DNS validation needs ({name, type, value}), one per distinct record."""
    seen: dict[str, dict[str, str]] = {}
    for option in certificate.get("DomainValidationOptions") or []:
        record = option.get("ResourceRecord")
        if option.get("ValidationMethod", "DNS") != "DNS" or not record:
            continue
        name = str(record["Name"]).rstrip(".").lower()
        seen.setdefault(name, {"name": name, "type": str(record["Type"]), "value": str(record["Value"]).rstrip(".")})
    return [seen[k] for k in sorted(seen)]


def records_ready(certificate: Mapping[str, Any]) -> bool:
    """ACM has named a validation record for every name (it takes a few seconds after the request)."""
    options = certificate.get("DomainValidationOptions") or []
    return bool(options) and all(o.get("ResourceRecord") for o in options)


def idempotency_token(domain: str, sans: Iterable[str] = ()) -> str:
    """RequestCertificate's token (<= 32 word characters): the same request within an hour is one certificate."""
    return hashlib.sha256(",".join(sorted(names_of(domain, sans))).encode()).hexdigest()[:32]
