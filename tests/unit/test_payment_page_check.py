"""roles/apache's gearlift-payment-page-check (PCI DSS 6.4.3 / 11.6.1) against a local page: the first run records
the baseline, an unchanged page is OK, an added script or a changed security header is PAYMENT_PAGE_CHANGED (the
line the payment-page log group's metric filter alarms on), an unreadable page is an error and compares nothing,
--accept takes a change, an approved sha256 is the baseline from the first run; and the apache role refuses a
hand-written Content-Security-Policy that lets any script run."""

from __future__ import annotations

import http.server
import importlib.machinery
import importlib.util
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from .role_harness import run_check

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "roles" / "apache" / "files" / "gearlift-payment-page-check"
WATCHED = yaml.safe_load((REPO / "roles" / "apache" / "vars" / "main.yml").read_text())["__apache_payment_page_headers"]
PAGE = '<html><script src="https://js.processor.example/v3" integrity="sha384-abc"></script><script>pay()</script>'
CSP = "default-src 'self'; script-src 'self' https://js.processor.example"


def _load() -> ModuleType:
    loader = importlib.machinery.SourceFileLoader("gearlift_payment_page_check", str(SCRIPT))
    spec = importlib.util.spec_from_loader(loader.name, loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


check = _load()


class Site:
    """The page the local Apache would serve: its body, headers and status can be changed by the test."""

    def __init__(self) -> None:
        self.body, self.status, self.headers = PAGE, 200, {"Content-Security-Policy": CSP, "X-Frame-Options": "DENY"}
        self.seen: list[dict[str, str]] = []


@pytest.fixture
def site() -> Iterator[tuple[Site, str]]:
    state = Site()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.seen.append(dict(self.headers.items()))
            self.send_response(state.status)
            for name, value in state.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(state.body.encode())

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield state, f"http://127.0.0.1:{server.server_address[1]}/checkout"
    finally:
        server.shutdown()


def _config(tmp_path: Path, url: str, approved: str = "") -> dict[str, Any]:
    return {
        "url": url,
        "host": "shop.example.com",
        "log": str(tmp_path / "payment-page.log"),
        "state_dir": str(tmp_path),
        "approved_sha256": approved,
        "headers": WATCHED,
        "timeout": 5,
    }


def _last(config: dict[str, Any]) -> str:
    return Path(config["log"]).read_text().splitlines()[-1]


def test_baseline_then_ok_then_a_new_script_or_header_is_a_change(site: tuple[Site, str], tmp_path: Path) -> None:
    state, url = site
    config = _config(tmp_path, url)
    assert check.run(config, "check") == 0 and "PAYMENT_PAGE_BASELINE recorded sha256=" in _last(config)
    assert state.seen[0]["Host"] == "shop.example.com" and state.seen[0]["X-Forwarded-Proto"] == "https"
    assert check.run(config, "check") == 0 and "PAYMENT_PAGE_OK" in _last(config)
    # a skimmer's script tag
    state.body = PAGE + '<script src="https://evil.example/skim.js"></script>'
    assert check.run(config, "check") == 1
    line = _last(config)
    assert "PAYMENT_PAGE_CHANGED" in line and "scripts added" in line and "evil.example/skim.js" in line
    # the same page again is OK (the baseline did not move)
    state.body = PAGE
    assert check.run(config, "check") == 0 and "PAYMENT_PAGE_OK" in _last(config)
    # an inline script's text changed
    state.body = PAGE.replace("pay()", "pay();steal()")
    assert check.run(config, "check") == 1 and "inline_sha256" in _last(config)
    # a weakened policy header
    state.body, state.headers["Content-Security-Policy"] = PAGE, CSP + " 'unsafe-inline'"
    assert check.run(config, "check") == 1 and "headers content-security-policy" in _last(config)
    # an approved change, taken with --accept
    assert check.run(config, "accept") == 0 and "PAYMENT_PAGE_BASELINE accepted" in _last(config)
    assert check.run(config, "check") == 0 and "PAYMENT_PAGE_OK" in _last(config)


def test_an_unreadable_page_is_logged_and_records_no_baseline(site: tuple[Site, str], tmp_path: Path) -> None:
    state, url = site
    config = _config(tmp_path, url)
    state.status = 503
    # logged, not a failed unit (a host whose shop is still starting); nothing compared, no baseline
    assert check.run(config, "check") == 0 and "PAYMENT_PAGE_ERROR status=503" in _last(config)
    assert check.run(config, "accept") == 2, "no baseline is accepted from a page the shop does not serve"
    assert not (tmp_path / "baseline.json").exists()
    config["url"] = "http://127.0.0.1:9/checkout"  # nothing listens
    assert check.run(config, "check") == 0 and "PAYMENT_PAGE_ERROR cannot read the page" in _last(config)
    assert "PAYMENT_PAGE_CHANGED" not in Path(config["log"]).read_text()


def test_an_approved_sha256_is_the_baseline_from_the_first_run(
    site: tuple[Site, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state, url = site
    config = _config(tmp_path, url)
    assert check.run(config, "print") == 0
    approved = json.loads(capsys.readouterr().out)["sha256"]
    assert not Path(config["log"]).exists()  # --print logs nothing
    state.body = PAGE + "<script>tampered()</script>"  # tampered before the host's first check
    first = _config(tmp_path / "other", url, approved)
    Path(first["state_dir"]).mkdir()
    assert check.run(first, "check") == 1 and f"PAYMENT_PAGE_CHANGED baseline={approved}" in _last(first)
    assert check.run(first, "accept") == 2, "the approved sha256 is changed in the inventory, not on the host"
    state.body = PAGE
    assert check.run(first, "check") == 0 and "PAYMENT_PAGE_OK" in _last(first)


def test_a_redirect_is_compared_not_followed(site: tuple[Site, str], tmp_path: Path) -> None:
    state, url = site
    config = _config(tmp_path, url)
    check.run(config, "check")
    state.status, state.headers["Location"] = 302, "https://evil.example/pay"
    assert check.run(config, "check") == 1
    assert "status 200 -> 302" in _last(config) and "location" in _last(config)
    assert len(state.seen) == 2


APACHE_PLAY = """\
- name: apache role check
  hosts: all
  gather_facts: false
  become: false
  roles:
    - role: gearlift.platform.apache
"""
CSP_TASK = "PCI 6.4.3 | Validate the Content-Security-Policy sources"


@pytest.mark.parametrize(
    ("policy", "words"),
    [
        pytest.param("default-src 'self'; script-src 'self' 'unsafe-inline'", "'unsafe-inline'", id="unsafe-inline"),
        pytest.param("default-src *; object-src 'none'", "['*']", id="wildcard-default"),
        pytest.param("object-src 'none'; base-uri 'self'", "['*']", id="no-script-rule"),
        pytest.param("script-src 'self' https:", "'https:'", id="bare-scheme"),
        pytest.param("script-src http://js.processor.example", "http://js.processor.example", id="http"),
    ],
)
def test_a_hand_written_policy_that_lets_any_script_run_is_refused(tmp_path: Path, policy: str, words: str) -> None:
    variables = {"apache_trusted_proxy_cidrs": ["10.0.0.0/16"], "apache_content_security_policy": policy}
    result = run_check(tmp_path, APACHE_PLAY, variables)
    out = result.stdout + result.stderr
    assert result.returncode == 2 and CSP_TASK in out, out
    assert words in " ".join(out.split()) and "apache_csp_allow_unsafe_sources: true" in " ".join(out.split()), out
    assert "Install packages" not in out, out


def test_a_strict_hand_written_policy_and_the_override_pass_the_csp_check(tmp_path: Path) -> None:
    for variables in (
        {"apache_content_security_policy": "default-src 'self'; script-src 'self' 'nonce-r4nd' https://js.p.example"},
        {"apache_content_security_policy": "script-src 'unsafe-inline'", "apache_csp_allow_unsafe_sources": True},
    ):
        result = run_check(tmp_path, APACHE_PLAY, {"apache_trusted_proxy_cidrs": ["10.0.0.0/16"], **variables})
        out = result.stdout
        for task in (CSP_TASK, PAGE_TASK):  # both validations pass: the defaults of the page check are valid
            assert task in out, out
            assert "ok: [localhost]" in out.split(task)[1].split("TASK [")[0], out


PAGE_TASK = "PCI 11.6.1 | Validate the payment page check's settings"


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        pytest.param({"apache_payment_page_path": "checkout"}, "apache_payment_page_path must be", id="relative-path"),
        pytest.param({"apache_payment_page_path": "/pay now"}, '(got "/pay now")', id="space-in-path"),
        pytest.param({"apache_payment_page_log": "/var/log/gearlift/"}, 'got "/var/log/gearlift/"', id="log-dir"),
        pytest.param({"apache_payment_page_baseline_sha256": "abc123"}, "64 hex digits", id="short-sha256"),
        pytest.param(
            {"apache_payment_page_check_on_calendar": 'weekly"\nExecStartPre=/bin/x'}, "OnCalendar", id="unit-inject"
        ),
    ],
)
def test_bad_payment_page_check_settings_stop_before_any_change(
    tmp_path: Path, changes: dict[str, object], words: str
) -> None:
    result = run_check(tmp_path, APACHE_PLAY, {"apache_trusted_proxy_cidrs": ["10.0.0.0/16"], **changes})
    out = result.stdout + result.stderr
    assert result.returncode == 2 and PAGE_TASK in out, out
    assert words in " ".join(out.split()), out
    assert "Install packages" not in out, out
