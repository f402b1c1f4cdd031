"""gearlift.twin.logsink: the ALB stand-in's request log (HAProxy runs daemonised, stdout closed)."""

from __future__ import annotations

import http.server
import shutil
import socket
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from gearlift.twin.logsink import LineSink
from gearlift.twin.netutil import free_port


def _send(port: int, *payloads: bytes) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        for payload in payloads:
            udp.sendto(payload, ("127.0.0.1", port))


def _wait_lines(path: Path, count: int, timeout: float = 5) -> list[str]:
    deadline = time.monotonic() + timeout
    lines: list[str] = []
    while time.monotonic() < deadline:
        lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
        if len(lines) >= count:
            return lines
        time.sleep(0.05)
    return lines


@pytest.fixture
def sink(tmp_path: Path) -> Iterator[LineSink]:
    s = LineSink(tmp_path / "logs" / "alb-shop.log", max_bytes=200).start()
    yield s
    s.stop()


def test_each_datagram_is_one_line_without_its_syslog_priority(sink: LineSink) -> None:
    _send(sink.port, b"<134>first request\n", b"second request", b"<not-a-priority> kept")
    assert _wait_lines(sink.path, 3) == ["first request", "second request", "<not-a-priority> kept"]


def test_the_file_stops_growing_at_its_bound_and_says_so(sink: LineSink) -> None:
    _send(sink.port, *(f"request {n:03d} ".encode() + b"x" * 40 for n in range(10)))
    lines = _wait_lines(sink.path, 4)
    time.sleep(0.3)  # the rest of the datagrams arrive and are dropped
    lines = sink.path.read_text(encoding="utf-8").splitlines()
    assert lines[:3] == [f"request {n:03d} " + "x" * 40 for n in range(3)]
    assert lines[3] == "# log sink: 200 bytes reached, later lines dropped"
    assert len(lines) == 4
    assert sink.path.stat().st_size <= 200 + 80


class _Ok(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"ok\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.mark.skipif(shutil.which("haproxy") is None, reason="haproxy is not installed (./scripts/bootstrap)")
def test_a_daemonised_haproxy_logs_each_request_with_its_target_and_timers(tmp_path: Path, sink: LineSink) -> None:
    """The same global/defaults lines the ALB stand-in renders: a request's line names the server."""
    from gearlift.twin.dataplane.elbv2 import HAPROXY_HEAD

    sink.max_bytes = 1 << 20
    backend = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Ok)
    threading.Thread(target=backend.serve_forever, daemon=True).start()
    port, pidfile, cfg = free_port(), tmp_path / "h.pid", tmp_path / "h.cfg"
    head = HAPROXY_HEAD.format(name="shop", sock=tmp_path / "s.sock", source="127.0.0.1", log=sink.address)
    cfg.write_text(
        head
        + f"frontend l80\n    bind 127.0.0.1:{port}\n    default_backend tg_x\n"
        + f"backend tg_x\n    server i-0abc 127.0.0.1:{backend.server_address[1]}\n",
        encoding="utf-8",
    )
    subprocess.run(["haproxy", "-D", "-p", str(pidfile), "-f", str(cfg)], check=True, capture_output=True)
    try:
        deadline = time.monotonic() + 5
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/designs/7?x=1", timeout=3) as reply:
                    assert reply.status == 200
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        lines = _wait_lines(sink.path, 1)
    finally:
        subprocess.run(["kill", pidfile.read_text().split()[0]], check=False)
        backend.shutdown()
    request = [line for line in lines if "GET /designs/7?x=1" in line]
    assert request, lines
    # frontend, backend/server, the five timers, status: what names a slow or failed request's target
    assert " l80 tg_x/i-0abc " in request[0], request[0]
    assert " 200 " in request[0]
