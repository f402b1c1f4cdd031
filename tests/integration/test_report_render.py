"""The design report renders from the rehearsal inventory without network and opens cleanly in
headless Chromium: screenshot, sections, inline SVG diagram, nothing fetched from anywhere."""

from __future__ import annotations

import json
import os
import re
import shutil
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

from tests.unit.test_report_audit import write_audit_fixture

REPO = Path(__file__).resolve().parents[2]
SECTIONS = ("summary", "architecture", "before-after", "pci", "cis", "cost", "availability", "runbooks", "findings")


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def _no_network_prefix() -> list[str]:
    """Run in a network namespace of its own (no interface but loopback) when we may: proof of no network."""
    unshare = shutil.which("unshare")
    if unshare and os.geteuid() == 0:
        probe = subprocess.run([unshare, "--net", "true"], capture_output=True, check=False)
        if probe.returncode == 0:
            return [unshare, "--net"]
    return []


def _png_rows(data: bytes) -> tuple[int, int, int]:
    """Width, height and number of distinct scanlines of a PNG (no imaging library needed)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    pos, idat = 8, b""
    while pos < len(data):
        length = struct.unpack(">I", data[pos : pos + 4])[0]
        kind = data[pos + 4 : pos + 8]
        if kind == b"IDAT":
            idat += data[pos + 8 : pos + 8 + length]
        pos += 12 + length
    raw = zlib.decompress(idat)
    stride = len(raw) // height
    rows = {raw[i * stride : (i + 1) * stride] for i in range(height)}
    return width, height, len(rows)


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    base = tmp_path_factory.mktemp("report")
    audit = write_audit_fixture(base / "audit")
    (base / "drills.json").write_text(
        json.dumps({"drills": [{"failure": "instance terminated", "rto_seconds": 41, "rpo_seconds": 0}]})
    )
    out = base / "design"
    env = {**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg")}
    env.pop("AWS_ENDPOINT_URL", None)
    proc = subprocess.run(
        [
            *_no_network_prefix(),
            sys.executable,
            "-m",
            "gearlift.report",
            "--inventory",
            "inventories/rehearsal",
            "--out",
            str(out),
            "--audit",
            str(audit),
            "--drills",
            str(base / "drills.json"),
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return out, proc


def test_renders_offline_from_the_rehearsal_inventory(rendered):
    out, proc = rendered
    html = (out / "solution-design.html").read_text()
    markdown = (out / "solution-design.md").read_text()
    assert "wrote " in proc.stdout and "audited hosts 2" in proc.stdout
    assert "warning: PCI matrix" not in proc.stderr
    # the rehearsal's own settings drive it
    assert "EC2 t3.small app instances" in html and "RDS MySQL db.t3.micro Multi-AZ" in html
    assert "(set at run time)" in html  # gearlift_certificate_arn / gearlift_ami_id are env lookups
    # the audit fixture feeds the matrix
    assert "6.2.3.4: loaded rules lack key time-change" in html
    assert "instance terminated: RTO 41 s" in html
    for section in SECTIONS:
        assert f'id="{section}"' in html
    headings = re.findall(r"^## (.+)$", markdown, re.MULTILINE)
    assert headings == [
        "Summary",
        "Architecture",
        "Before and after",
        "PCI DSS v4.0.1 matrix",
        "CIS benchmark coverage",
        "Monthly cost",
        "Availability and recovery",
        "Runbooks",
        "Guard findings and values set at run time",
    ]
    # self-contained: no script, no stylesheet link, no external resource of any kind
    assert "<script" not in html.lower() and "<link" not in html.lower() and "@import" not in html
    external = re.findall(r"""(?:src|href|xlink:href)\s*=\s*["']?\s*(?:https?:)?//""", html, re.IGNORECASE)
    assert external == []
    assert not re.search(r"url\(\s*['\"]?(?:https?:)?//", html)
    assert (out / "architecture.svg").read_text().startswith("<svg")


@pytest.mark.skipif(_chromium() is None, reason="chromium is not installed (apt-get install chromium)")
def test_chromium_shows_the_diagram_and_tables(rendered, tmp_path):
    out, _ = rendered
    page = (out / "solution-design.html").as_uri()
    chromium = _chromium()
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
        "--no-first-run",
        "--disable-background-networking",
        "--host-resolver-rules=MAP * ~NOTFOUND",
        "--enable-logging=stderr",
        "--v=0",
        f"--user-data-dir={tmp_path / 'profile'}",
    ]
    shot = tmp_path / "report.png"
    proc = subprocess.run(
        [*_no_network_prefix(), chromium, *flags, f"--screenshot={shot}", "--window-size=1400,4000", page],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    data = shot.read_bytes()
    width, height, distinct = _png_rows(data)
    assert (width, height) == (1400, 4000)
    assert len(data) > 100_000 and distinct > 500, (len(data), distinct)  # text, tables and the diagram
    # the page's own errors (console messages, failed loads) would show in Chromium's log
    log = proc.stderr
    assert "CONSOLE(" not in log and "Uncaught" not in log
    assert "net::ERR" not in log

    dom = subprocess.run(
        [*_no_network_prefix(), chromium, *flags, "--dump-dom", page],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert dom.returncode == 0, dom.stderr[-2000:]
    tree = dom.stdout
    for section in SECTIONS:
        assert f'id="{section}"' in tree
    diagram = tree[tree.index('id="diagram"') :]
    assert diagram.removeprefix('id="diagram">').lstrip().startswith("<svg")
    assert tree.count("<table") >= 10
    assert "Internet" in diagram and "3306/tcp" in diagram
