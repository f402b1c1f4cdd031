"""gearlift.platform.acm_dns_certificate against moto's ACM (in-process), and its pure logic."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.amazon.aws.plugins.module_utils.retries import RetryingBotoClientWrapper
from ansible_collections.gearlift.platform.plugins.module_utils import acm_dns
from ansible_collections.gearlift.platform.plugins.modules import acm_dns_certificate
from moto import mock_aws, settings

from .module_harness import CallLog, dummy_aws_env, run_main

REGION = "us-east-1"
DOMAIN = "shop.example.com"


@pytest.fixture
def acm(monkeypatch: pytest.MonkeyPatch) -> Any:
    dummy_aws_env(monkeypatch, REGION)
    monkeypatch.setattr(acm_dns_certificate, "POLL_SECONDS", 0.01)
    with mock_aws():
        log = CallLog()
        client = log.attach(boto3.client("acm", region_name=REGION))

        def make(self: Any, service: str, retry_decorator: Any = None, **kwargs: Any) -> Any:
            return RetryingBotoClientWrapper(client, retry_decorator) if retry_decorator else client

        monkeypatch.setattr(AnsibleAWSModule, "client", make)
        yield client, log


def test_requests_once_then_adopts_and_returns_the_validation_record(acm: Any) -> None:
    client, log = acm
    first = run_main(acm_dns_certificate.main, {"domain_name": DOMAIN, "tags": {"Name": "shop"}, "region": REGION})
    assert not first.failed, first.data
    assert first["changed"] is True
    assert first["status"] == "PENDING_VALIDATION"
    [request] = log.params("RequestCertificate")
    assert request["ValidationMethod"] == "DNS"
    assert request["DomainName"] == DOMAIN
    [record] = first["validation_records"]
    assert record["type"] == "CNAME" and record["name"].endswith("." + DOMAIN)
    assert not record["value"].endswith(".")

    log.calls.clear()
    second = run_main(acm_dns_certificate.main, {"domain_name": DOMAIN + ".", "region": REGION})
    assert second["changed"] is False
    assert second["certificate_arn"] == first["certificate_arn"]
    assert "RequestCertificate" not in log.names
    assert len(client.list_certificates()["CertificateSummaryList"]) == 1


def test_check_mode_requests_nothing(acm: Any) -> None:
    client, log = acm
    result = run_main(acm_dns_certificate.main, {"domain_name": DOMAIN, "region": REGION}, check_mode=True)
    assert result["changed"] is True and result["certificate_arn"] == ""
    assert "RequestCertificate" not in log.names
    assert client.list_certificates()["CertificateSummaryList"] == []


def test_wait_returns_once_issued(acm: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(settings, "ACM_VALIDATION_WAIT", 0)
    result = run_main(acm_dns_certificate.main, {"domain_name": DOMAIN, "wait": True, "region": REGION})
    assert not result.failed, result.data
    assert result["status"] == "ISSUED"


def test_wait_fails_with_the_reason_when_not_issued_in_time(acm: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(settings, "ACM_VALIDATION_WAIT", 3600)
    result = run_main(
        acm_dns_certificate.main, {"domain_name": DOMAIN, "wait": True, "wait_timeout": 0, "region": REGION}
    )
    assert result.failed
    assert "PENDING_VALIDATION, not ISSUED" in result["msg"] and "validation records" in result["msg"]


def test_an_imported_certificate_for_the_name_is_not_adopted() -> None:
    # what the twin seeds: an imported certificate; the module must request its own
    assert (
        acm_dns.choose_certificate(
            [{"CertificateArn": "x", "DomainName": DOMAIN, "Type": "IMPORTED", "Status": "ISSUED"}], DOMAIN
        )
        is None
    )


def _cert(arn: str, status: str, created: float, sans: tuple[str, ...] = (DOMAIN,)) -> dict[str, Any]:
    return {
        "CertificateArn": arn,
        "DomainName": DOMAIN,
        "SubjectAlternativeNames": list(sans),
        "Type": "AMAZON_ISSUED",
        "Status": status,
        "CreatedAt": created,
    }


def test_choose_prefers_issued_then_newest_and_skips_dead_or_other_names() -> None:
    certs = [
        _cert("pending-new", "PENDING_VALIDATION", 30),
        _cert("issued-old", "ISSUED", 10),
        _cert("issued-new", "ISSUED", 20),
        _cert("failed", "FAILED", 40),
        _cert("wider", "ISSUED", 50, (DOMAIN, "www.example.com")),
    ]
    chosen = acm_dns.choose_certificate(certs, DOMAIN)
    assert chosen is not None and chosen["CertificateArn"] == "issued-new"
    wider = acm_dns.choose_certificate(certs, DOMAIN, ["www.example.com"])
    assert wider is not None and wider["CertificateArn"] == "wider"
    pending = acm_dns.choose_certificate([certs[0], certs[3]], DOMAIN)
    assert pending is not None and pending["CertificateArn"] == "pending-new"
    assert acm_dns.choose_certificate([certs[3]], DOMAIN) is None


def test_validation_records_deduplicated_and_readiness() -> None:
    record = {"Name": "_x.shop.example.com.", "Type": "CNAME", "Value": "_y.acm-validations.aws."}
    cert = {
        "DomainValidationOptions": [
            {"DomainName": DOMAIN, "ValidationMethod": "DNS", "ResourceRecord": record},
            {"DomainName": "*." + DOMAIN, "ValidationMethod": "DNS", "ResourceRecord": record},
        ]
    }
    assert acm_dns.validation_records(cert) == [
        {"name": "_x.shop.example.com", "type": "CNAME", "value": "_y.acm-validations.aws"}
    ]
    assert acm_dns.records_ready(cert)
    assert not acm_dns.records_ready({"DomainValidationOptions": [{"DomainName": DOMAIN}]})
    assert not acm_dns.records_ready({})
    token = acm_dns.idempotency_token(DOMAIN)
    assert token == acm_dns.idempotency_token(DOMAIN.upper() + ".") and len(token) == 32
