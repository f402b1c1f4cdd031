"""The twin's CA and server certificates (gearlift.twin.tls): chains, names and openssl's own errors."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from gearlift.twin import tls
from gearlift.twin.errors import TwinError


def _verify(ca_crt: Path, crt: Path, *check: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["openssl", "verify", "-CAfile", str(ca_crt), *check, str(crt)], capture_output=True, text=True, check=False
    )


def test_a_server_certificate_chains_to_the_kept_ca_and_names_its_host_and_address(tmp_path: Path) -> None:
    ca = tmp_path / "tls-ca"
    assert tls.ensure_ca(ca)
    first = (ca / "ca.crt").read_bytes()
    assert not tls.ensure_ca(ca) and (ca / "ca.crt").read_bytes() == first, "a CA valid for a week is kept"
    assert ca.stat().st_mode & 0o077 == 0 and (ca / "ca.key").stat().st_mode & 0o077 == 0
    out = tmp_path / "tls-alb"
    crt = tls.issue_certificate(ca, out, "alb", "localhost", ["DNS:localhost", "IP:127.0.0.1"])
    assert _verify(out / "ca.crt", crt, "-verify_hostname", "localhost").returncode == 0
    assert _verify(out / "ca.crt", crt, "-verify_ip", "127.0.0.1").returncode == 0
    assert _verify(out / "ca.crt", crt, "-verify_hostname", "elsewhere.example").returncode != 0
    assert sorted(p.name for p in out.iterdir()) == ["alb.crt", "alb.ext", "alb.key", "ca.crt"], "no csr or serial left"


def test_a_ca_about_to_expire_is_made_anew(tmp_path: Path) -> None:
    ca = tmp_path / "tls-ca"
    ca.mkdir(mode=0o700)
    tls.openssl(
        *("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=short"),
        *("-keyout", str(ca / "ca.key"), "-out", str(ca / "ca.crt")),
    )
    old = (ca / "ca.crt").read_bytes()
    assert tls.ensure_ca(ca)
    assert (ca / "ca.crt").read_bytes() != old


def test_openssl_failures_carry_openssls_message(tmp_path: Path) -> None:
    with pytest.raises(TwinError, match=r"(?s)openssl x509 failed: .*Unable to load CA certificate"):
        tls.issue_certificate(tmp_path / "no-ca", tmp_path / "out", "server", "db.example", ["DNS:db.example"])
    with pytest.raises(TwinError, match="no subjectAltName"):
        tls.issue_certificate(tmp_path / "no-ca", tmp_path / "out", "server", "db.example", [])
