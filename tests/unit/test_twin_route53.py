"""The twin's DNS for Route 53 zones (gearlift.twin.dataplane.route53): record selection, the wire
format, the server on loopback (answers and forwarding), the emulator snapshot and the customers'
resolver."""

from __future__ import annotations

import itertools
import socket
import struct
import threading
from collections import Counter
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from gearlift.twin.dataplane import route53
from gearlift.twin.dataplane.route53 import (
    NOERROR,
    NXDOMAIN,
    DnsServer,
    NameResolver,
    Record,
    Route53Reconciler,
    WeightedPicker,
    ZoneSet,
    front_doors,
)

ALB_DNS = "shop-rehearsal-1234567890.us-east-1.elb.amazonaws.com"
ALB_ADDR = "10.89.82.253"
ONPREM = "192.168.50.20"
NAME = "shop.example.com"


def zones(alb_weight: int = 30, onprem_weight: int = 70) -> ZoneSet:
    records = [
        Record("example.com", "NS", 172800, ("ns-1.awsdns-1.com.",)),
        Record("shop.example.com", "A", 60, (ONPREM,), "onprem", onprem_weight),
        Record("shop.example.com", "A", 60, (), "alb", alb_weight, alias="dualstack." + ALB_DNS),
        Record("www.example.com", "CNAME", 300, ("shop.example.com",)),
        Record("legacy.example.com", "A", 300, (ONPREM,)),
        Record("apex-alias.example.com", "A", 0, (), alias="legacy.example.com"),
        Record("txt.example.com", "TXT", 300, ('"v=spf1 -all"',)),
    ]
    return ZoneSet({"example.com": records}, {ALB_DNS: ALB_ADDR})


def first_a(answer: route53.Answer | None) -> str:
    assert answer is not None
    return next(value for _, kind, _, value in answer.records if kind == "A")


@pytest.mark.parametrize(("alb", "onprem"), [(30, 70), (1, 3), (100, 0), (0, 100), (50, 50)])
def test_weighted_answers_are_exactly_proportional_over_a_cycle(alb: int, onprem: int) -> None:
    zs, picker = zones(alb, onprem), WeightedPicker()
    total = alb + onprem
    seen = Counter(first_a(zs.answer("shop.example.com", "A", picker)) for _ in range(total * 3))
    assert seen[ALB_ADDR] == alb * 3 and seen[ONPREM] == onprem * 3


def test_weighted_answers_are_spread_not_bunched() -> None:
    zs, picker = zones(50, 50), WeightedPicker()
    answers = [first_a(zs.answer("shop.example.com", "A", picker)) for _ in range(6)]
    assert all(a != b for a, b in itertools.pairwise(answers))  # alternating


def test_all_zero_weights_answer_in_turn() -> None:
    zs, picker = zones(0, 0), WeightedPicker()
    seen = Counter(first_a(zs.answer("shop.example.com", "A", picker)) for _ in range(10))
    assert seen == {ALB_ADDR: 5, ONPREM: 5}


def test_alias_to_the_alb_answers_its_twin_address_with_the_alb_ttl() -> None:
    answer = zones(100, 0).answer("SHOP.example.com.", "A", WeightedPicker())
    assert answer is not None and answer.rcode == NOERROR and answer.authoritative
    assert answer.records == (("shop.example.com", "A", route53.ALIAS_TTL, ALB_ADDR),)


def test_alias_to_a_record_of_the_zone_and_cname_chasing() -> None:
    picker = WeightedPicker()
    assert first_a(zones().answer("apex-alias.example.com", "A", picker)) == ONPREM
    answer = zones(100, 0).answer("www.example.com", "A", picker)
    assert answer is not None
    assert answer.records == (
        ("www.example.com", "CNAME", 300, "shop.example.com"),
        ("shop.example.com", "A", route53.ALIAS_TTL, ALB_ADDR),
    )


def test_missing_names_types_and_foreign_names() -> None:
    picker = WeightedPicker()
    nx = zones().answer("nope.example.com", "A", picker)
    assert nx is not None and nx.rcode == NXDOMAIN and nx.records == ()
    nodata = zones().answer("legacy.example.com", "AAAA", picker)
    assert nodata is not None and nodata.rcode == NOERROR and nodata.records == ()
    assert zones().answer("example.org", "A", picker) is None  # not ours: forwarded
    assert zones().answer("notexample.com", "A", picker) is None


def test_wire_round_trip_of_a_query_and_its_response() -> None:
    packet = route53.build_query("shop.example.com", "A", ident=4242)
    question = route53.parse_query(packet)
    assert (question.ident, question.name, question.qtype) == (4242, "shop.example.com", 1)
    response = route53.build_response(question, zones(100, 0).answer(question.name, "A", WeightedPicker()), packet)
    assert struct.unpack("!H", response[:2])[0] == 4242
    rcode, answers = route53.parse_answers(response)
    assert rcode == NOERROR and answers == [("shop.example.com", "A", ALB_ADDR)]
    txt = route53.build_response(question, zones().answer("txt.example.com", "TXT", WeightedPicker()), packet)
    assert b"\x0bv=spf1 -all" in txt  # one length-prefixed string, quotes dropped


def test_a_malformed_packet_gets_formerr_not_a_crash() -> None:
    server = DnsServer("127.0.0.1", None, port=0)
    reply = server.handle(b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\xc0\x0c")  # a name pointing at itself
    assert reply[:2] == b"\x12\x34" and reply[3] & 0xF == 1


class FakeUpstream:
    """A UDP DNS server on loopback answering every A query with 10.0.0.99 (the network's own resolver)."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.5)
        self.port = self.sock.getsockname()[1]
        self.stop = threading.Event()
        self.asked: list[str] = []
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                packet, peer = self.sock.recvfrom(512)
            except TimeoutError:
                continue
            question = route53.parse_query(packet)
            self.asked.append(question.name)
            answer = route53.Answer(NOERROR, ((question.name, "A", 5, "10.0.0.99"),), authoritative=False)
            self.sock.sendto(route53.build_response(question, answer, packet), peer)


@pytest.fixture
def server() -> Iterator[tuple[DnsServer, FakeUpstream]]:
    upstream = FakeUpstream()
    dns = DnsServer("127.0.0.1", ("127.0.0.1", upstream.port), port=0)
    dns.zones = zones(30, 70)
    dns.start()
    yield dns, upstream
    dns.stop()
    upstream.stop.set()
    upstream.thread.join(timeout=5)
    upstream.sock.close()


def test_the_server_answers_zones_over_udp_and_tcp_and_forwards_the_rest(server: Any) -> None:
    dns, upstream = server
    over_udp = Counter(route53.query("127.0.0.1", "shop.example.com", port=dns.port)[0] for _ in range(10))
    assert over_udp == {ALB_ADDR: 3, ONPREM: 7}
    with socket.create_connection(("127.0.0.1", dns.port), timeout=2) as conn:
        packet = route53.build_query("legacy.example.com")
        conn.sendall(struct.pack("!H", len(packet)) + packet)
        length = struct.unpack("!H", conn.recv(2))[0]
        assert route53.parse_answers(conn.recv(length))[1] == [("legacy.example.com", "A", ONPREM)]
    assert route53.query("127.0.0.1", "netdb.aaaaaaaaaa.us-east-1.rds.amazonaws.com", port=dns.port) == ["10.0.0.99"]
    assert upstream.asked == ["netdb.aaaaaaaaaa.us-east-1.rds.amazonaws.com"]
    with pytest.raises(LookupError, match="NXDOMAIN"):
        route53.query("127.0.0.1", "missing.example.com", port=dns.port)


def test_the_customers_resolver_maps_answers_to_front_doors(server: Any) -> None:
    dns, _ = server
    doors = front_doors(
        {"shop-rehearsal": ALB_ADDR, "other": "10.89.82.252"},
        {"shop-rehearsal": {"80": 41000, "443": 41001}, "other": {"80": 42000}},
        [(ONPREM, "http://127.0.0.1:40000")],
    )
    assert doors == {
        ALB_ADDR: "https://127.0.0.1:41001",
        "10.89.82.252": "http://127.0.0.1:42000",
        ONPREM: "http://127.0.0.1:40000",
    }
    resolver = NameResolver("127.0.0.1", doors, port=dns.port)
    urls = Counter(resolver.url("shop.example.com") for _ in range(10))
    assert urls == {"https://127.0.0.1:41001": 3, "http://127.0.0.1:40000": 7}
    with pytest.raises(LookupError, match="none of them a known front door"):
        NameResolver("127.0.0.1", {}, port=dns.port).url("legacy.example.com")


def test_snapshot_reads_the_emulators_zones_and_maps_alias_targets(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(key, "testing")
    with mock_aws():
        clients = {s: boto3.client(s, region_name="us-east-1") for s in ("ec2", "elbv2", "route53")}
        subnets = [s["SubnetId"] for s in clients["ec2"].describe_subnets()["Subnets"]][:2]
        lb = clients["elbv2"].create_load_balancer(Name="shop-rehearsal", Subnets=subnets)["LoadBalancers"][0]
        zone = clients["route53"].create_hosted_zone(Name="example.com", CallerReference="t")["HostedZone"]["Id"]
        changes: list[dict[str, Any]] = [
            {"Name": "shop.example.com", "Type": "A", "SetIdentifier": "onprem", "Weight": 70, "TTL": 60,
             "ResourceRecords": [{"Value": ONPREM}]},
            {"Name": "shop.example.com", "Type": "A", "SetIdentifier": "alb", "Weight": 30,
             "AliasTarget": {"HostedZoneId": lb["CanonicalHostedZoneId"], "DNSName": f"dualstack.{lb['DNSName']}.",
                             "EvaluateTargetHealth": True}},
        ]  # fmt: skip
        clients["route53"].change_resource_record_sets(
            HostedZoneId=zone, ChangeBatch={"Changes": [{"Action": "UPSERT", "ResourceRecordSet": c} for c in changes]}
        )
        reconciler = Route53Reconciler(
            "127.0.0.1",
            "unused",
            "127.0.0.1",
            clients.__getitem__,
            print,
            {"shop-rehearsal": ALB_ADDR},  # type: ignore[arg-type]
        )
        snapshot = reconciler.snapshot()
    assert snapshot.load_balancers == {lb["DNSName"].lower(): ALB_ADDR}
    shop = {r.set_id: r for r in snapshot.zones["example.com"] if r.name == "shop.example.com"}
    assert shop["onprem"].values == (ONPREM,) and shop["onprem"].weight == 70
    assert shop["alb"].alias == f"dualstack.{lb['DNSName'].lower()}" and shop["alb"].weight == 30
    picker = WeightedPicker()
    assert Counter(first_a(snapshot.answer("shop.example.com", "A", picker)) for _ in range(100)) == {
        ALB_ADDR: 30,
        ONPREM: 70,
    }


def test_a_load_loop_by_name_follows_the_weights_to_the_front_doors(server: Any) -> None:
    """Customers by name: every request resolves the shop's name first (LoadLoop(resolve=...))."""
    import http.server

    from gearlift.twin.loadloop import LoadLoop

    class Shop(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b'{"host":"%d"}' % self.server.server_address[1]
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    dns, _ = server
    shops = [http.server.HTTPServer(("127.0.0.1", 0), Shop) for _ in range(2)]
    threads = [threading.Thread(target=s.serve_forever, daemon=True) for s in shops]
    for thread in threads:
        thread.start()
    try:
        alb_url, onprem_url = (f"http://127.0.0.1:{s.server_address[1]}" for s in shops)
        resolver = NameResolver("127.0.0.1", {ALB_ADDR: alb_url, ONPREM: onprem_url}, port=dns.port)
        loop = LoadLoop(alb_url + "/health", interval=0, max_requests=20, resolve=lambda: resolver.url(NAME))
        with loop:
            loop._thread.join(timeout=30)
        result = loop.result
        assert result.sent == 20 and result.failed == 0, result.failures
        assert result.doors == {alb_url: 6, onprem_url: 14}
        assert sorted(result.hosts.values()) == [6, 14]

        bad = LoadLoop(alb_url, interval=0, max_requests=2, resolve=lambda: resolver.url("missing.example.com"))
        with bad:
            bad._thread.join(timeout=30)
        assert bad.result.failed == 2 and bad.result.statuses == {"ResolveError": 2}
    finally:
        for shop in shops:
            shop.shutdown()
            shop.server_close()


def test_a_forward_waiting_on_a_silent_upstream_holds_up_no_other_query() -> None:
    """The upstream (podman's resolver, busy while containers come and go) may not answer: a host's
    query for a zone's name is answered meanwhile, not after the forward gave up (glibc waits 5 s,
    then asks again: the 10 s stalls of the image lifecycle test's /health), and the slow forward is logged."""
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    silent.bind(("127.0.0.1", 0))  # receives, never answers
    lines: list[str] = []
    dns = DnsServer("127.0.0.1", silent.getsockname(), port=0, log=lines.append)
    dns.zones = zones(100, 0)
    dns.start()
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
            client.settimeout(5)
            client.sendto(route53.build_query("db.internal.example.net", ident=1), ("127.0.0.1", dns.port))
            silent.settimeout(5)
            silent.recvfrom(512)  # the forward is out and waiting
            client.sendto(route53.build_query("shop.example.com", ident=2), ("127.0.0.1", dns.port))
            first, _ = client.recvfrom(4096)
            second, _ = client.recvfrom(4096)
    finally:
        dns.stop()
        silent.close()
    assert struct.unpack("!H", first[:2])[0] == 2
    assert route53.parse_answers(first) == (NOERROR, [("shop.example.com", "A", ALB_ADDR)])
    assert struct.unpack("!H", second[:2])[0] == 1 and second[3] & 0xF == 2  # SERVFAIL
    assert any(
        line.startswith("route53: forwarding db.internal.example.net A to 127.0.0.1 failed (TimeoutError)")
        for line in lines
    ), lines
