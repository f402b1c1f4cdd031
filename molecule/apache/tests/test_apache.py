"""Behaviour of the gearlift.platform.apache role on the shared test host."""

import json

import pytest

ACCESS_LOG = "/var/log/apache2/access.json"


def _headers(host, args):
    """Status line and headers (lower-cased names) of a curl -sI call."""
    out = host.check_output(f"curl -sI --max-time 10 {args}")
    lines = [line.strip() for line in out.splitlines() if line.strip()]
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return lines[0], headers


def _status(host, args):
    return host.check_output(f"curl -s -o /dev/null -w '%{{http_code}}' --max-time 10 {args}").strip()


def test_apache_running_and_enabled(host):
    service = host.service("apache2")
    assert service.is_running
    assert service.is_enabled


def test_health_proxied_with_security_headers(host):
    status_line, headers = _headers(host, "http://127.0.0.1/health")
    assert " 200" in status_line
    assert headers.get("x-content-type-options") == "nosniff"
    assert headers.get("x-frame-options") == "DENY"
    assert headers.get("strict-transport-security", "").startswith("max-age=31536000")
    assert "referrer-policy" in headers
    assert headers.get("x-permitted-cross-domain-policies") == "none"
    assert "camera=()" in headers.get("permissions-policy", "")
    # Neither Apache's version nor the backend's banner leaks.
    assert headers.get("server") == "Apache"


def _csp(headers):
    """The Content-Security-Policy header as {directive: [sources]}."""
    policy = {}
    for part in headers.get("content-security-policy", "").split(";"):
        words = part.split()
        if words:
            policy[words[0]] = words[1:]
    return policy


def test_content_security_policy_allows_only_the_shop_and_the_processor_scripts(host):
    """PCI DSS 6.4.3 / 11.6.1: on by default; converge.yml sets apache_csp_script_src to the processor."""
    _, headers = _headers(host, "http://127.0.0.1/health")
    assert "content-security-policy-report-only" not in headers  # enforced, not only reported
    policy = _csp(headers)
    assert policy.get("script-src") == ["'self'", "https://js.processor.example"]
    assert policy.get("default-src") == ["'self'"]
    assert policy.get("object-src") == ["'none'"]
    assert policy.get("frame-ancestors") == ["'none'"]
    everything = [source for sources in policy.values() for source in sources]
    assert not [s for s in everything if s in ("*", "'unsafe-inline'", "'unsafe-eval'") or s.startswith("http:")]
    # also on error responses (Header always)
    status_line, missing = _headers(host, "http://127.0.0.1/gearlift-no-such-page")
    assert _csp(missing).get("script-src") == ["'self'", "https://js.processor.example"], status_line


def test_trace_refused(host):
    assert _status(host, "-X TRACE http://127.0.0.1/") == "405"


@pytest.mark.parametrize("module", ["autoindex_module", "status_module", "cgi_module", "userdir_module"])
def test_unneeded_module_not_loaded(host, module):
    loaded = host.check_output("apache2ctl -M 2>/dev/null")
    assert module not in loaded


@pytest.mark.parametrize("module", ["proxy_module", "proxy_http_module", "headers_module", "remoteip_module"])
def test_needed_module_loaded(host, module):
    assert module in host.check_output("apache2ctl -M 2>/dev/null")


def test_default_site_disabled(host):
    assert not host.file("/etc/apache2/sites-enabled/000-default.conf").exists
    assert host.file("/etc/apache2/sites-enabled/gearlift.conf").is_symlink


def test_json_access_log_and_untrusted_forwarded_for(host):
    marker = "/gearlift-remoteip-check"
    _status(host, f"-H 'X-Forwarded-For: 203.0.113.7' http://127.0.0.1{marker}")
    entries = []
    for line in host.file(ACCESS_LOG).content_string.splitlines():
        if line.strip():
            entries.append(json.loads(line))  # every line is one JSON object
    mine = [entry for entry in entries if entry["path"] == marker]
    assert mine, "request not logged"
    entry = mine[-1]
    assert entry["client"] != "203.0.113.7"  # 127.0.0.1 is not a trusted proxy
    assert entry["client"] == "127.0.0.1"
    assert entry["method"] == "GET"
    assert isinstance(entry["status"], int)
    assert isinstance(entry["duration_us"], int)
    for key in ("time", "bytes", "user_agent", "forwarded_proto"):
        assert key in entry


def test_health_checks_not_logged(host):
    _status(host, "http://127.0.0.1/health")
    assert '"path":"/health"' not in host.file(ACCESS_LOG).content_string


PAGE = "/srv/backend/checkout.html"
CHECK_LOG = "/var/log/gearlift/payment-page.log"


def _check(host):
    """Run the payment page check as its timer does; (unit succeeded, the line it logged)."""
    ok = host.run("systemctl start gearlift-payment-page-check.service").rc == 0
    return ok, host.check_output(f"tail -n 1 {CHECK_LOG}")


def test_payment_page_check_scheduled(host):
    """PCI DSS 11.6.1: the timer is enabled and running; the check's settings name the page and the log."""
    timer = host.service("gearlift-payment-page-check.timer")
    assert timer.is_enabled and timer.is_running
    settings = json.loads(host.file("/etc/gearlift/payment-page-check.json").content_string)
    assert settings["url"] == "http://127.0.0.1:80/checkout.html"
    assert settings["log"] == CHECK_LOG and "content-security-policy" in settings["headers"]


def test_payment_page_check_alerts_on_a_new_script_and_is_ok_again_when_restored(host):
    """The first run records the baseline; an added script tag is PAYMENT_PAGE_CHANGED (the unit fails, the
    payment-page log group's metric filter alarms on the line); the page as before is OK again."""
    host.run(f"cp -p {PAGE} {PAGE}.orig && rm -f /var/lib/gearlift/payment-page/baseline.json")
    try:
        ok, line = _check(host)
        assert ok and "PAYMENT_PAGE_BASELINE recorded" in line, line
        inventory = json.loads(host.check_output("gearlift-payment-page-check --print"))["inventory"]
        assert {"src": "https://js.processor.example/v3", "integrity": "sha384-test"} in inventory["scripts"]
        assert "https://js.processor.example" in inventory["headers"]["content-security-policy"]
        ok, line = _check(host)
        assert ok and "PAYMENT_PAGE_OK" in line, line
        host.run(f"sed -i 's|</body>|<script src=\"https://evil.example/skim.js\"></script></body>|' {PAGE}")
        ok, line = _check(host)
        assert not ok and "PAYMENT_PAGE_CHANGED" in line and "evil.example/skim.js" in line, line
    finally:
        host.run(f"mv {PAGE}.orig {PAGE}")
    ok, line = _check(host)
    assert ok and "PAYMENT_PAGE_OK" in line, line
