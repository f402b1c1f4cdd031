"""Route 53: the twin answers DNS for the emulator's hosted zones, as the VPC's resolver does on AWS.

A real DNS server (stdlib UDP + TCP, RFC 1035 wire format) on the twin's resolver address
(``TwinLayout.resolver``, on the twin network's bridge, port 53). The twin's hosts use it as their
name server (``podman run --dns``); the controller and the story's customers ask it through
``query`` / ``NameResolver``. It is authoritative for every hosted zone in the emulator and
forwards every other name to the network's own resolver (podman's aardvark-dns on the gateway),
so RDS endpoints and host names resolve as before - as the Amazon-provided resolver answers both
a VPC's names and the public zones.

Answers, following the Route 53 developer guide:

- A / AAAA / CNAME / TXT / NS records with their values and TTL; a CNAME is followed inside the
  zones (bounded);
- an alias record to a load balancer answers that load balancer's address on the twin network (the
  address its traffic comes from); an alias to another record of the zones answers that record;
  an alias answers with a TTL of 60 s (the load balancer's own TTL on AWS);
- weighted records (same name and type, a ``SetIdentifier`` each): one record per answer, chosen in
  proportion to the weights by a smooth weighted round-robin per name and type (deterministic: over
  every ``sum(weights)`` answers each record is chosen exactly ``weight`` times); weight 0 is never
  chosen unless every record has weight 0, then they are chosen in turn;
- a name inside a zone without records is NXDOMAIN; a name with records of other types is an
  empty answer (NODATA); both authoritative.

Not enforced (docs/twin-fidelity.md): health-based answers (``EvaluateTargetHealth``, health
checks), latency / geolocation / failover routing, DNSSEC, EDNS, zone delegation (the twin's
resolver serves every zone directly, public or private, to every host).
"""

from __future__ import annotations

import ipaddress
import socket
import struct
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from gearlift.twin import podman
from gearlift.twin.awsclients import Clients, paginate
from gearlift.twin.dataplane import Round
from gearlift.twin.errors import TwinError

Log = Callable[[str], None]

TYPES = {"A": 1, "NS": 2, "CNAME": 5, "SOA": 6, "TXT": 16, "AAAA": 28}
TYPE_NAMES = {v: k for k, v in TYPES.items()}
CLASS_IN = 1
ALIAS_TTL = 60
MAX_CHASE = 8
NOERROR, SERVFAIL, NXDOMAIN, NOTIMP = 0, 2, 3, 4


def canonical(name: str) -> str:
    """Lower case, no trailing dot; Route 53's escapes of '*' and others decoded."""
    return name.encode().decode("unicode_escape").rstrip(".").lower()


def alb_key(dns_name: str) -> str:
    """An ALB's DNS name as an alias names it (``dualstack.`` prefix, trailing dot) -> its plain name."""
    name = canonical(dns_name)
    return name[len("dualstack.") :] if name.startswith("dualstack.") else name


# --------------------------------------------------------------------------- the records (pure)


@dataclass(frozen=True)
class Record:
    """One resource record set of a zone, as ListResourceRecordSets describes it."""

    name: str
    type: str
    ttl: int = 300
    values: tuple[str, ...] = ()
    set_id: str | None = None
    weight: int | None = None
    alias: str | None = None  # the alias target's DNS name, canonical

    @classmethod
    def from_api(cls, item: Mapping[str, Any]) -> Record:
        alias = item.get("AliasTarget")
        return cls(
            name=canonical(item["Name"]),
            type=str(item["Type"]),
            ttl=int(item.get("TTL") or 0) if not alias else ALIAS_TTL,
            values=tuple(str(r["Value"]) for r in item.get("ResourceRecords") or ()),
            set_id=item.get("SetIdentifier"),
            weight=int(item["Weight"]) if item.get("Weight") is not None else None,
            alias=canonical(alias["DNSName"]) if alias else None,
        )


class WeightedPicker:
    """Smooth weighted round-robin per key: deterministic, exactly proportional over a cycle."""

    def __init__(self) -> None:
        self._current: dict[tuple[str, str], dict[str, int]] = {}
        self._lock = threading.Lock()

    def pick(self, key: tuple[str, str], weights: Mapping[str, int]) -> str:
        """The identifier to answer with next; ``weights``: identifier -> weight (>= 0)."""
        if not weights:
            raise ValueError("no records to choose from")
        effective = dict(weights) if any(weights.values()) else dict.fromkeys(weights, 1)
        with self._lock:
            current = self._current.setdefault(key, {})
            for ident in list(current):
                if ident not in effective:
                    del current[ident]
            total = 0
            for ident, weight in effective.items():
                current[ident] = current.get(ident, 0) + weight
                total += weight
            chosen = max(sorted(effective), key=lambda i: current[i])
            current[chosen] -= total
            return chosen


@dataclass(frozen=True)
class Answer:
    rcode: int
    records: tuple[tuple[str, str, int, str], ...] = ()  # (name, type, ttl, value)
    authoritative: bool = True


@dataclass
class ZoneSet:
    """The emulator's hosted zones at one moment, and where aliases to load balancers lead."""

    zones: dict[str, list[Record]] = field(default_factory=dict)  # zone name -> records
    load_balancers: dict[str, str] = field(default_factory=dict)  # ALB DNS name (canonical) -> twin address

    def zone_for(self, name: str) -> str | None:
        """The most specific zone that holds ``name``, or None (not ours to answer)."""
        name = canonical(name)
        found = [z for z in self.zones if name == z or name.endswith("." + z)]
        return max(found, key=len) if found else None

    def answer(self, name: str, qtype: str, picker: WeightedPicker) -> Answer | None:
        """The authoritative answer, or None when no zone holds the name (forward it)."""
        name = canonical(name)
        zone = self.zone_for(name)
        if zone is None:
            return None
        out: list[tuple[str, str, int, str]] = []
        current = name
        for _ in range(MAX_CHASE):
            records = [r for r in self.zones[zone] if r.name == current]
            if not records:
                return Answer(NXDOMAIN if current == name else NOERROR, tuple(out))
            cname = [r for r in records if r.type == "CNAME"]
            if cname and qtype != "CNAME":
                chosen = self._choose(cname, picker)
                target = canonical(chosen.values[0]) if chosen.values else ""
                out.append((current, "CNAME", chosen.ttl, target))
                next_zone = self.zone_for(target)
                if not target or next_zone is None:
                    return Answer(NOERROR, tuple(out))
                zone, current = next_zone, target
                continue
            matching = [r for r in records if r.type == qtype]
            if not matching:
                return Answer(NOERROR, tuple(out))
            chosen = self._choose(matching, picker)
            if chosen.alias is not None:
                out += [(current, qtype, ALIAS_TTL, v) for v in self._alias_values(chosen.alias, qtype, picker)]
            else:
                out += [(current, qtype, chosen.ttl, v) for v in chosen.values]
            return Answer(NOERROR, tuple(out))
        return Answer(SERVFAIL, tuple(out))

    def _choose(self, records: list[Record], picker: WeightedPicker) -> Record:
        weighted = [r for r in records if r.set_id is not None]
        if not weighted:
            return records[0]
        by_id = {str(r.set_id): r for r in weighted}
        ident = picker.pick((weighted[0].name, weighted[0].type), {i: r.weight or 0 for i, r in by_id.items()})
        return by_id[ident]

    def _alias_values(self, target: str, qtype: str, picker: WeightedPicker) -> list[str]:
        address = self.load_balancers.get(alb_key(target))
        if address is not None:
            return [address] if qtype == "A" else []
        inner = self.answer(target, qtype, picker) if self.zone_for(target) else None
        return [value for _, kind, _, value in (inner.records if inner else ()) if kind == qtype]


# --------------------------------------------------------------------------- the wire format (pure)


def _encode_name(name: str) -> bytes:
    out = b""
    for label in canonical(name).split(".") if name.strip(".") else []:
        raw = label.encode("idna") if not label.isascii() else label.encode()
        if not 0 < len(raw) < 64:
            raise ValueError(f"bad DNS label in {name!r}")
        out += bytes([len(raw)]) + raw
    return out + b"\0"


def _decode_name(packet: bytes, offset: int) -> tuple[str, int]:
    labels: list[str] = []
    end: int | None = None
    for _ in range(128):  # bounded: a compression loop cannot hang the server
        length = packet[offset]
        if length & 0xC0 == 0xC0:
            if end is None:
                end = offset + 2
            offset = ((length & 0x3F) << 8) | packet[offset + 1]
            continue
        if length == 0:
            return ".".join(labels), (end if end is not None else offset + 1)
        labels.append(packet[offset + 1 : offset + 1 + length].decode("ascii", errors="replace"))
        offset += 1 + length
    raise ValueError("DNS name too long or looping")


@dataclass(frozen=True)
class Question:
    ident: int
    flags: int
    name: str
    qtype: int
    qclass: int
    end: int  # offset after the question


def parse_query(packet: bytes) -> Question:
    if len(packet) < 12:
        raise ValueError("short DNS packet")
    ident, flags, qdcount = struct.unpack("!HHH", packet[:6])
    if qdcount != 1:
        raise ValueError(f"{qdcount} questions")
    name, offset = _decode_name(packet, 12)
    qtype, qclass = struct.unpack("!HH", packet[offset : offset + 4])
    return Question(ident, flags, name, qtype, qclass, offset + 4)


def _rdata(kind: str, value: str) -> bytes:
    if kind == "A":
        return ipaddress.IPv4Address(value).packed
    if kind == "AAAA":
        return ipaddress.IPv6Address(value).packed
    if kind in ("CNAME", "NS"):
        return _encode_name(value)
    if kind == "TXT":
        text = value[1:-1] if len(value) >= 2 and value[0] == value[-1] == '"' else value
        raw = text.encode()
        return b"".join(bytes([len(raw[i : i + 255])]) + raw[i : i + 255] for i in range(0, max(len(raw), 1), 255))
    raise ValueError(f"cannot encode {kind}")


def build_response(question: Question, answer: Answer, packet: bytes) -> bytes:
    """The reply to ``packet`` (its question section echoed) carrying ``answer``."""
    body = b""
    count = 0
    for name, kind, ttl, value in answer.records:
        try:
            rdata = _rdata(kind, value)
        except ValueError:
            continue
        body += _encode_name(name) + struct.pack("!HHIH", TYPES[kind], CLASS_IN, ttl, len(rdata)) + rdata
        count += 1
    flags = 0x8000 | (question.flags & 0x0100) | 0x0080 | (0x0400 if answer.authoritative else 0) | answer.rcode
    header = struct.pack("!HHHHHH", question.ident, flags, 1, count, 0, 0)
    return header + packet[12 : question.end] + body


def error_response(packet: bytes, rcode: int) -> bytes:
    ident, flags = struct.unpack("!HH", packet[:4]) if len(packet) >= 4 else (0, 0)
    return struct.pack("!HHHHHH", ident, 0x8000 | (flags & 0x0100) | 0x0080 | rcode, 0, 0, 0, 0)


def build_query(name: str, qtype: str = "A", ident: int = 0x6C67) -> bytes:
    return struct.pack("!HHHHHH", ident, 0x0100, 1, 0, 0, 0) + _encode_name(name) + struct.pack("!HH", TYPES[qtype], 1)


def parse_answers(packet: bytes) -> tuple[int, list[tuple[str, str, str]]]:
    """(rcode, [(name, type, value)]) of a response; A/AAAA/CNAME/NS values decoded."""
    _, flags, qdcount, ancount = struct.unpack("!HHHH", packet[:8])
    offset = 12
    for _ in range(qdcount):
        _, offset = _decode_name(packet, offset)
        offset += 4
    out: list[tuple[str, str, str]] = []
    for _ in range(ancount):
        name, offset = _decode_name(packet, offset)
        kind, _, _, length = struct.unpack("!HHIH", packet[offset : offset + 10])
        offset += 10
        data = packet[offset : offset + length]
        type_name = TYPE_NAMES.get(kind, str(kind))
        if type_name == "A":
            value = str(ipaddress.IPv4Address(data))
        elif type_name == "AAAA":
            value = str(ipaddress.IPv6Address(data))
        elif type_name in ("CNAME", "NS"):
            value = _decode_name(packet, offset)[0]
        else:
            value = data.hex()
        out.append((name, type_name, value))
        offset += length
    return flags & 0xF, out


def query(server: str, name: str, qtype: str = "A", port: int = 53, timeout: float = 2.0) -> list[str]:
    """Ask ``server`` (UDP, one try, bounded) for ``name``; the final records' values of type ``qtype``."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        sock.sendto(build_query(name, qtype), (server, port))
        data, _ = sock.recvfrom(4096)
    rcode, answers = parse_answers(data)
    if rcode == NXDOMAIN:
        raise LookupError(f"{name}: no such name (NXDOMAIN from {server})")
    if rcode != NOERROR:
        raise LookupError(f"{name}: {server} answered rcode {rcode}")
    return [value for _, kind, value in answers if kind == qtype]


# --------------------------------------------------------------------------- the server


#: UDP queries answered at once: a forward waiting on a slow upstream holds up no other query (the VPC's
#: resolver answers every host at once; a glibc client waits 5 s, then asks again: a 10 s stall).
DNS_WORKERS = 8
#: Queries waiting for a worker beyond which new ones are dropped (the client asks again), bounded memory.
DNS_BACKLOG = 256
#: A forward slower than this is logged: what a host waited for a name the zones do not hold.
SLOW_FORWARD_S = 1.0


class DnsServer:
    """UDP + TCP on one address, answering from the current ZoneSet, forwarding the rest.

    UDP queries are answered by a small pool of workers, so one forward waiting on the upstream
    (podman's network resolver, busy while containers come and go) does not stall the others.
    """

    def __init__(self, address: str, upstream: tuple[str, int] | None, port: int = 53, log: Log = print) -> None:
        self.address = address
        self.port = port
        self.upstream = upstream
        self.log = log
        self._workers: ThreadPoolExecutor | None = None
        self._pending = 0
        self._pending_lock = threading.Lock()
        self.zones = ZoneSet()
        self.picker = WeightedPicker()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._udp: socket.socket | None = None
        self._tcp: socket.socket | None = None

    def start(self) -> None:
        # Port 0 (tests): a free UDP port whose TCP twin may be taken - a few tries, bounded.
        for attempt in range(1 if self.port else 20):
            udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                udp.bind((self.address, self.port))
                tcp.bind((self.address, udp.getsockname()[1]))
                tcp.listen(16)
                break
            except OSError as exc:
                udp.close()
                tcp.close()
                if self.port or attempt == 19:
                    raise TwinError(f"route53: cannot serve DNS on {self.address}:{self.port}: {exc}") from exc
        self.port = udp.getsockname()[1]
        udp.settimeout(0.5)
        tcp.settimeout(0.5)
        self._udp, self._tcp = udp, tcp
        self._workers = ThreadPoolExecutor(max_workers=DNS_WORKERS, thread_name_prefix="dns-answer")
        for target, name in ((self._serve_udp, "dns-udp"), (self._serve_tcp, "dns-tcp")):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=5)
        if self._workers is not None:
            self._workers.shutdown(wait=True, cancel_futures=True)
            self._workers = None
        for sock in (self._udp, self._tcp):
            if sock is not None:
                sock.close()
        self._threads = []

    def handle(self, packet: bytes) -> bytes:
        try:
            question = parse_query(packet)
        except (ValueError, IndexError, struct.error):
            return error_response(packet, 1)  # FORMERR
        kind = TYPE_NAMES.get(question.qtype)
        zones = self.zones
        if question.qclass != CLASS_IN or kind is None:
            if zones.zone_for(question.name) is not None:
                return build_response(question, Answer(NOERROR), packet)
            return self._forward(packet, question)
        answer = zones.answer(question.name, kind, self.picker)
        if answer is None:
            return self._forward(packet, question)
        return build_response(question, answer, packet)

    def _forward(self, packet: bytes, question: Question) -> bytes:
        if self.upstream is None:
            return error_response(packet, NXDOMAIN)
        started = time.monotonic()
        outcome = "answered"
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
                sock.settimeout(2.0)
                sock.sendto(packet, self.upstream)
                data, _ = sock.recvfrom(4096)
                return data
        except OSError as exc:
            outcome = f"failed ({type(exc).__name__}): SERVFAIL"
            return error_response(packet, SERVFAIL)
        finally:
            took = time.monotonic() - started
            if took >= SLOW_FORWARD_S:
                kind = TYPE_NAMES.get(question.qtype, str(question.qtype))
                self.log(f"route53: forwarding {question.name} {kind} to {self.upstream[0]} {outcome} in {took:.1f} s")

    def _answer_udp(self, packet: bytes, peer: Any) -> None:
        try:
            reply = self.handle(packet)
            if self._udp is not None:
                self._udp.sendto(reply, peer)
        except OSError:
            pass
        finally:
            with self._pending_lock:
                self._pending -= 1

    def _dispatch_udp(self, packet: bytes, peer: Any) -> None:
        """Answer on one of the workers; beyond the backlog, drop (the client asks again)."""
        assert self._workers is not None
        with self._pending_lock:
            if self._pending >= DNS_BACKLOG:
                return
            self._pending += 1
        self._workers.submit(self._answer_udp, packet, peer)

    def _serve_udp(self) -> None:
        assert self._udp is not None
        while not self._stop.is_set():
            try:
                packet, peer = self._udp.recvfrom(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            self._dispatch_udp(packet, peer)

    def _serve_tcp(self) -> None:
        assert self._tcp is not None
        while not self._stop.is_set():
            try:
                conn, _ = self._tcp.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:
                conn.settimeout(2.0)
                try:
                    length = struct.unpack("!H", _recv_exact(conn, 2))[0]
                    reply = self.handle(_recv_exact(conn, length))
                    conn.sendall(struct.pack("!H", len(reply)) + reply)
                except (OSError, struct.error):
                    continue


def _recv_exact(conn: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = conn.recv(size - len(data))
        if not chunk:
            raise OSError("connection closed")
        data += chunk
    return data


# --------------------------------------------------------------------------- the reconciler


class Route53Reconciler:
    """Each round: the emulator's zones and records into the DNS server; the server up on the resolver address."""

    def __init__(
        self,
        resolver: str,
        network: str,
        upstream: str,
        clients: Clients,
        log: Log,
        alb_sources: Mapping[str, str],
    ) -> None:
        self.resolver = resolver
        self.network = network
        self.clients = clients
        self.log = log
        self.alb_sources = alb_sources  # ALB name -> its address on the twin (AlbReconciler.sources)
        self.server = DnsServer(resolver, (upstream, 53), log=log)
        self._started = False
        self._served: tuple[int, int] = (-1, -1)

    def start(self) -> None:
        """The resolver's address on the twin network's bridge, and the server on it."""
        if self._started:
            return
        bridge = podman.network_interface(self.network)
        add = subprocess.run(
            ["ip", "addr", "add", f"{self.resolver}/32", "dev", bridge], capture_output=True, text=True, check=False
        )
        if add.returncode != 0 and "File exists" not in add.stderr:
            raise TwinError(f"route53: cannot put the resolver's address {self.resolver} on {bridge}: {add.stderr}")
        self.server.start()
        self._started = True
        self.log(f"route53: DNS for the emulator's hosted zones on {self.resolver}:53 (udp, tcp)")

    def stop(self) -> None:
        if not self._started:
            return
        self.server.stop()
        if podman.network_exists(self.network):
            bridge = podman.network_interface(self.network)
            subprocess.run(
                ["ip", "addr", "del", f"{self.resolver}/32", "dev", bridge], capture_output=True, check=False
            )
        self._started = False

    def snapshot(self) -> ZoneSet:
        """The emulator's zones and records, and the ALBs' twin addresses by DNS name."""
        route53 = self.clients("route53")
        zones: dict[str, list[Record]] = {}
        for zone in paginate(route53, "list_hosted_zones", "HostedZones"):
            items = paginate(route53, "list_resource_record_sets", "ResourceRecordSets", HostedZoneId=zone["Id"])
            zones[canonical(zone["Name"])] = [Record.from_api(item) for item in items]
        balancers: dict[str, str] = {}
        if zones:
            for lb in paginate(self.clients("elbv2"), "describe_load_balancers", "LoadBalancers"):
                address = self.alb_sources.get(lb["LoadBalancerName"])
                if address is not None and lb.get("DNSName"):
                    balancers[alb_key(lb["DNSName"])] = address
        return ZoneSet(zones, balancers)

    def reconcile(self, round_: Round) -> None:
        self.start()
        zones = self.snapshot()
        self.server.zones = zones
        served = (len(zones.zones), sum(len(r) for r in zones.zones.values()))
        if served != self._served:
            self._served = served
            self.log(f"route53: serving {served[0]} zone(s), {served[1]} record set(s)")


# --------------------------------------------------------------------------- the customers' resolver


class NameResolver:
    """Where a customer typing ``name`` lands: the twin's DNS answer mapped to a loopback front door.

    ``doors`` maps each address the shop's name can resolve to (the on-prem front door's site
    address, an ALB's twin address) to the loopback URL that reaches it from the controller, e.g.
    ``{"192.168.50.20": estate.app_url, alb_address: "https://127.0.0.1:<443 port>"}``
    (``Twin.front_doors`` builds it). Each ``url(name)`` is one DNS query, so weighted records
    spread successive calls by weight.
    """

    def __init__(self, server: str, doors: Mapping[str, str], port: int = 53, timeout: float = 2.0) -> None:
        self.server = server
        self.port = port
        self.timeout = timeout
        self.doors = dict(doors)

    def addresses(self, name: str) -> list[str]:
        return query(self.server, name, "A", self.port, self.timeout)

    def url(self, name: str) -> str:
        found = self.addresses(name)
        for address in found:
            if address in self.doors:
                return self.doors[address]
        raise LookupError(f"{name} resolves to {', '.join(found) or 'nothing'}, none of them a known front door")


def front_doors(
    alb_sources: Mapping[str, str], load_balancers: Mapping[str, Mapping[str, int]], extra: Iterable[tuple[str, str]]
) -> dict[str, str]:
    """Address -> loopback URL: each ALB's twin address to its HTTPS listener (else HTTP), plus ``extra``."""
    doors = dict(extra)
    for name, address in alb_sources.items():
        ports = load_balancers.get(name, {})
        if "443" in ports:
            doors[address] = f"https://127.0.0.1:{ports['443']}"
        elif "80" in ports:
            doors[address] = f"http://127.0.0.1:{ports['80']}"
    return doors
