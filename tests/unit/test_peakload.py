"""The peak load model and its measurement (gearlift.peakload, gearlift.peak), against a local shop."""

from __future__ import annotations

import json
import re
import ssl
import threading
import time
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest

from gearlift import peak
from gearlift.peakload import Mix, percentile, run_step
from gearlift.story.traffic import Target


class FakeShop(BaseHTTPRequestHandler):
    """The stand-in's routes the load uses; every ``fail_every``-th request answers 503."""

    protocol_version = "HTTP/1.1"
    seen: ClassVar[Counter[str]] = Counter()
    count = 0
    fail_every = 0
    delay = 0.0
    lock = threading.Lock()

    def log_message(self, *args: Any) -> None:
        return

    def _answer(self, status: int, body: dict[str, Any], cookie: bool = False) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if cookie:
            self.send_header("Set-Cookie", "JSESSIONID=abc; Path=/")
            self.send_header("Set-Cookie", "AWSALB=b1; Path=/")
        self.end_headers()
        self.wfile.write(data)

    def _route(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        with FakeShop.lock:
            FakeShop.count += 1
            FakeShop.seen[f"{self.command} {self.path.split('/')[1]}"] += 1
            failing = FakeShop.fail_every and FakeShop.count % FakeShop.fail_every == 0
        if FakeShop.delay:
            time.sleep(FakeShop.delay)
        if failing:
            self._answer(503, {"error": "busy"})
        elif self.command == "GET":
            self._answer(200, {"ok": True})
        elif self.path == "/designs":
            self._answer(201, {"id": f"d{FakeShop.count}", "sha256": "x"})
        elif self.path == "/cart/checkout":
            jar = self.headers.get("Cookie") or ""
            # Both cookies come back: the shop's session and the load balancer's stickiness cookie.
            self._answer(201 if "JSESSIONID=abc" in jar and "AWSALB=b1" in jar else 409, {"orders": []})
        else:
            self._answer(200, {"items": {}}, cookie=True)

    do_GET = _route
    do_POST = _route


@pytest.fixture
def shop() -> Iterator[Target]:
    FakeShop.seen, FakeShop.count, FakeShop.fail_every, FakeShop.delay = Counter(), 0, 0, 0.0
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeShop)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield Target(f"http://127.0.0.1:{server.server_address[1]}")
    server.shutdown()
    server.server_close()


def test_the_mix_interleaves_actions_in_its_proportions() -> None:
    actions = Mix(browse=2, view=0, add=1, upload=0, checkout=1).schedule(400)
    counts = Counter(actions)
    assert counts == {"browse": 200, "add": 100, "checkout": 100}
    assert "checkout" in actions[:4]  # interleaved, not in blocks


def test_a_mix_without_weight_is_refused() -> None:
    with pytest.raises(ValueError, match="positive total"):
        Mix(browse=0, view=0, add=0, upload=0, checkout=0)


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50.0
    assert percentile(values, 95) == 95.0
    assert percentile(values, 99) == 99.0
    assert percentile([], 95) is None


def test_a_step_sends_rate_times_seconds_and_measures_every_answer(shop: Target) -> None:
    result = run_step(shop, 1.0, rate=100, seconds=1.0, threads=8)
    assert result.sent == 100
    assert result.errors == 0
    assert len(result.latencies_ms) == 100
    assert FakeShop.seen["GET catalog"] > 0 and FakeShop.seen["POST designs"] > 0
    assert FakeShop.seen["POST cart"] > 0  # adds and checkouts (the session cookie came back)
    summary = result.summary()
    assert summary["p50_ms"] is not None and summary["p50_ms"] <= summary["p95_ms"] <= summary["p99_ms"]


def test_failed_answers_count_as_errors(shop: Target) -> None:
    FakeShop.fail_every = 10
    result = run_step(shop, 1.0, rate=100, seconds=1.0, threads=8)
    assert result.sent == 100
    assert result.errors == 10
    assert result.summary()["error_rate"] == pytest.approx(0.1)
    assert result.statuses["503"] == 10


def test_requests_a_slow_shop_never_got_are_errors(shop: Target) -> None:
    """An open model: a shop slower than the arrivals leaves requests unsent by the step's end plus one timeout;
    they count as errors (an overloaded shop does not get a better error rate by answering fewer)."""
    FakeShop.delay = 0.5
    result = run_step(shop, 1.0, rate=40, seconds=0.5, threads=2, timeout=0.6)
    assert result.unsent > 0
    assert result.sent + result.unsent == 20
    assert result.errors == result.sent - result.ok + result.unsent
    assert result.summary()["error_rate"] == pytest.approx(result.errors / 20)


def test_a_closed_front_door_is_all_errors() -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = run_step(Target(f"http://127.0.0.1:{port}"), 1.0, rate=20, seconds=0.5, threads=4, timeout=1.0)
    assert result.sent == 10 and result.errors == 10
    assert result.summary()["p95_ms"] is None


class ClosingTlsShop:
    """A TLS front door on loopback that answers one request per connection and then closes it: at once after
    the answer while the client keeps it alive (``idle``), or before answering anything (``mute``)."""

    def __init__(self, tmp_path: Path, mute: bool = False) -> None:
        import socket

        from gearlift.twin.tls import ensure_ca, issue_certificate

        ensure_ca(tmp_path / "ca")
        cert = issue_certificate(tmp_path / "ca", tmp_path / "srv", "srv", "127.0.0.1", ["IP:127.0.0.1"])
        self.cafile = str(tmp_path / "srv" / "ca.crt")
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(cert, tmp_path / "srv" / "srv.key")
        self.mute = mute
        self.connections = 0
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    @property
    def target(self) -> Target:
        return Target(f"https://127.0.0.1:{self.sock.getsockname()[1]}", cafile=self.cafile)

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                raw, _ = self.sock.accept()
            except TimeoutError:
                continue
            self.connections += 1
            raw.settimeout(5)
            try:
                with self.context.wrap_socket(raw, server_side=True) as conn:
                    request = b""
                    while b"\r\n\r\n" not in request:
                        chunk = conn.recv(4096)
                        if not chunk:
                            break
                        request += chunk
                    if not self.mute:
                        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok")
                        time.sleep(0.1)  # the client keeps the connection; the server closes it while idle
            except (OSError, ssl.SSLError):
                pass

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=5)
        self.sock.close()


def test_a_kept_alive_connection_closed_while_idle_is_reopened_once_as_a_browser_does(tmp_path: Path) -> None:
    """Over TLS the close shows as the connection's end (SSLEOFError), not a reset: the request is sent again on a
    new connection; a new connection that ends before any answer is an error, not retried."""
    from gearlift.peakload import Customer

    shop = ClosingTlsShop(tmp_path)
    try:
        customer = Customer(shop.target, timeout=5)
        assert customer.send("GET", "/catalog") == ("200", b"ok")
        time.sleep(0.5)
        assert customer.send("GET", "/catalog") == ("200", b"ok")
        assert shop.connections == 2
        customer.close()
    finally:
        shop.close()
    mute = ClosingTlsShop(tmp_path / "mute", mute=True)
    try:
        status, _ = Customer(mute.target, timeout=5).send("GET", "/catalog")
        assert status in ("SSLEOFError", "SSLZeroReturnError", "RemoteDisconnected", "ConnectionResetError")
        assert mute.connections == 1
    finally:
        mute.close()


def test_traffic_only_goes_to_loopback() -> None:
    with pytest.raises(ValueError, match=r"127\.0\.0\.1"):
        Target("http://10.0.0.5:8080")


def test_a_ramp_times_the_scale_out_from_the_loads_rise(shop: Target) -> None:
    hosts = iter([2, 2, 2, 2] + [3] * 1000)
    ramp = peak.run_ramp(
        "target",
        shop,
        [0.5, 1, 2],
        20,
        1.0,
        hosts=lambda: next(hosts),
        prefix="t",
        stop=threading.Event(),
        log=lambda _: None,
    )
    assert [s.multiple for s in ramp.steps] == [0.5, 1, 2]
    assert ramp.hosts_at_start == 2
    assert ramp.scale_out_seconds is not None and ramp.scale_out_seconds >= 0
    assert max(n for _, n in ramp.timeline) == 3


@pytest.mark.parametrize("text", ["3,2", "0,1", "a", ""])
def test_bad_multiples_are_refused(text: str) -> None:
    import argparse

    with pytest.raises(argparse.ArgumentTypeError):
        peak.parse_multiples(text)


def test_hourly_cost_prices_the_hosts_and_the_database() -> None:
    prices = {"ec2_hourly": {"t3.small": {"usd": 0.02}}, "rds_mysql_hourly": {"db.t3.micro": {"multi_az": 0.034}}}
    values = {"gearlift_instance_type": "t3.small", "gearlift_db_instance_class": "db.t3.micro"}
    assert peak.hourly_cost(values, 3, prices) == pytest.approx(0.094)
    assert peak.hourly_cost(values, None, prices) is None
    assert peak.hourly_cost({**values, "gearlift_instance_type": "x9.big"}, 3, prices) is None


def test_the_cpu_per_request_is_todays_cpu_at_peak_shared_by_its_requests_on_the_twins_cores() -> None:
    """40 % of 4 vCPUs at 25 requests/s is 64 ms of a vCPU per request; a twin vCPU is 0.25 of a core."""
    values = {peak.CPU_AT_PEAK: 40, "rehearsal_onprem_server_vcpus": 4}
    assert peak.work_cpu_us(values, 0.25, 25.0) == 16_000
    assert peak.work_cpu_us(values, 0.5, 25.0) == 32_000
    assert peak.work_cpu_us({**values, peak.CPU_AT_PEAK: 80}, 0.25, 50.0) == 16_000
    # the inventory's own figures give a demand inside the stand-in's accepted range
    inventory = peak.settings()
    assert 1 <= peak.work_cpu_us(inventory, 0.25, peak.peak_rps(inventory)) <= 1_000_000


@pytest.mark.parametrize(
    ("values", "factor", "message"),
    [
        ({"rehearsal_onprem_server_vcpus": 4}, 0.25, "rehearsal_onprem_cpu_at_peak_percent"),
        ({peak.CPU_AT_PEAK: 0, "rehearsal_onprem_server_vcpus": 4}, 0.25, "in (0, 100]"),
        ({peak.CPU_AT_PEAK: 150, "rehearsal_onprem_server_vcpus": 4}, 0.25, "in (0, 100]"),
        ({peak.CPU_AT_PEAK: True, "rehearsal_onprem_server_vcpus": 4}, 0.25, "in (0, 100]"),
        ({peak.CPU_AT_PEAK: 40}, 0.25, "rehearsal_onprem_server_vcpus must be a positive integer"),
        ({peak.CPU_AT_PEAK: 40, "rehearsal_onprem_server_vcpus": 4}, 0.0, "--cpu-factor must be more than 0"),
        ({peak.CPU_AT_PEAK: 100, "rehearsal_onprem_server_vcpus": 4000}, 1.0, "outside 1..1000000"),
    ],
)
def test_a_cpu_per_request_from_bad_figures_is_refused(values: dict[str, Any], factor: float, message: str) -> None:
    from gearlift.twin.errors import TwinError

    with pytest.raises(TwinError, match=re.escape(message)):
        peak.work_cpu_us(values, factor, 25.0)


def test_the_cpu_built_into_the_artifact_is_read_back(tmp_path: Path) -> None:
    import zipfile

    def jar(entries: dict[str, str]) -> Path:
        path = tmp_path / f"shop-{len(list(tmp_path.iterdir()))}.jar"
        with zipfile.ZipFile(path, "w") as archive:
            for name, text in entries.items():
                archive.writestr(name, text)
        return path

    assert peak.artifact_work_cpu_us(jar({"gearlift/shopstandin/work.properties": "work.cpu.us=16000\n"})) == 16000
    assert peak.artifact_work_cpu_us(jar({"gearlift/shopstandin/Main.class": "x"})) == 0
    assert peak.artifact_work_cpu_us(jar({"gearlift/shopstandin/work.properties": "work.cpu.us=lots\n"})) is None
    assert peak.artifact_work_cpu_us(tmp_path / "missing.jar") is None


def _side(p95: list[float | None], err: list[float], hosts: list[int], start: int) -> dict[str, Any]:
    n = len(p95)
    return {
        "rps": [10.0] * n,
        "p50_ms": p95,
        "p95_ms": p95,
        "p99_ms": p95,
        "error_rate": err,
        "hosts_in_service": hosts,
        "cost_per_hour_usd": [None] * n,
        "hosts_at_start": start,
    }


def test_the_verdict_reads_the_acceptance_from_the_figures() -> None:
    summary = {
        "load_multiple": [1, 3],
        "peak_rps": 25,
        "today": _side([100.0, 900.0], [0.0, 0.02], [1, 1], 1),
        "target": _side([40.0, 300.0], [0.0, 0.0005], [2, 4], 2),
        "target_scheduled": _side([40.0, 100.0], [0.0, 0.0], [4, 4], 4),
        "scale_out_seconds": 50.0,
        "scale_in_failed_requests": 0,
    }
    v = peak.verdict(summary)
    assert v["p95_at_3x_at_most_half_of_today"] == {"ok": True, "today": 900.0, "target": 300.0}
    assert v["error_rate_at_3x_at_most_0.1_percent"]["ok"] is True
    assert v["scale_in_with_0_failed_requests"] == {"ok": True, "failed": 0}
    assert v["schedule_raises_capacity_before_the_ramp"]["ok"] is True
    summary["target"]["p95_ms"][1] = 600.0
    summary["scale_in_failed_requests"] = 3
    v = peak.verdict(summary)
    assert v["p95_at_3x_at_most_half_of_today"]["ok"] is False
    assert v["scale_in_with_0_failed_requests"]["ok"] is False
    summary["verdict"] = v
    lines = peak.table(summary)
    assert any(line.startswith("    3x |") for line in lines)
    root = ET.fromstring(peak.svg(summary))  # well-formed, one line per side
    assert len([e for e in root.iter() if e.tag.endswith("polyline")]) == 3


def test_a_steps_line_counts_errors_over_every_request_of_the_step() -> None:
    """Requests never sent are errors: the line's denominator is every request the step had, not only those sent."""
    from gearlift.peakload import StepResult

    step = StepResult(multiple=3.0, rate=75.0, seconds=60.0, sent=4037, ok=4037, unsent=463, wall_seconds=70.0)
    line = peak._line(step.summary())
    assert "errors 463/4500 (10.29 %; 463 never sent)" in line
