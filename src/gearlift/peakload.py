"""The shop's peak, as load: a mix of what customers do, at a fixed arrival rate, measured.

``Mix`` is the load model (weights of browse the catalog, view a design, add to cart, upload
artwork, check out); ``run_step`` sends one step of it to a front door at ``rate`` requests per
second for ``seconds`` (an open model: requests are scheduled at fixed times whatever the shop
answers, and each latency is counted from its scheduled time, so a shop that falls behind shows
it instead of slowing the load down). A pool of threads, each with its own keep-alive connection
and session cookie (a customer's browser), sends them.

Bounded like every loop of the project: at most ``rate x seconds`` requests per step (and
MAX_REQUESTS_PER_STEP), no longer than ``seconds`` plus one request timeout, and only to
http(s)://127.0.0.1:<port> (gearlift.story.traffic.Target).
"""

from __future__ import annotations

import http.client
import json
import math
import ssl
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from gearlift.story.shoppers import SKUS, cookies_of, design_bytes, multipart
from gearlift.story.traffic import Target

#: A step never sends more than this, whatever rate x seconds asks.
MAX_REQUESTS_PER_STEP = 200_000
#: How a server's close of a kept-alive connection shows before the answer's first byte: a reset or an empty reply
#: over HTTP, the TLS connection's end over HTTPS.
CLOSED_BEFORE_AN_ANSWER = (
    http.client.RemoteDisconnected,
    BrokenPipeError,
    ConnectionResetError,
    ssl.SSLEOFError,
    ssl.SSLZeroReturnError,
)
#: Upload sizes in turn (customers' artwork: a few KB to a few hundred KB at peak).
UPLOAD_SIZES = (8 * 1024, 64 * 1024, 256 * 1024)


@dataclass(frozen=True)
class Mix:
    """Weights of the customers' actions (any positive numbers; only their ratio matters)."""

    browse: float = 55.0  # GET /catalog
    view: float = 20.0  # GET /designs/<id> of a design uploaded earlier (browse while there is none)
    add: float = 17.0  # POST /cart/items
    upload: float = 3.0  # POST /designs (multipart)
    checkout: float = 5.0  # POST /cart/checkout (a cart with items; add when the cart is empty)

    def __post_init__(self) -> None:
        weights = self.weights()
        if any(w < 0 for w in weights.values()) or sum(weights.values()) <= 0:
            raise ValueError(f"a load mix needs non-negative weights and a positive total: {weights}")

    def weights(self) -> dict[str, float]:
        return {
            "browse": self.browse,
            "view": self.view,
            "add": self.add,
            "upload": self.upload,
            "checkout": self.checkout,
        }

    def schedule(self, n: int) -> list[str]:
        """The first ``n`` actions, interleaved deterministically in the mix's proportions."""
        weights = self.weights()
        total = sum(weights.values())
        credit = dict.fromkeys(weights, 0.0)
        out: list[str] = []
        for _ in range(n):
            for name, w in weights.items():
                credit[name] += w / total
            name = max(credit, key=lambda k: credit[k])
            credit[name] -= 1.0
            out.append(name)
        return out


def percentile(values: Sequence[float], p: float) -> float | None:
    """The p-th percentile (nearest rank, as CloudWatch's pNN statistics); None without values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100.0 * len(ordered)))
    return ordered[rank - 1]


@dataclass
class StepResult:
    """What one step measured."""

    multiple: float
    rate: float
    seconds: float
    sent: int = 0
    ok: int = 0
    #: Requests of the step never sent: their time plus one request timeout passed while every customer was still
    #: waiting on the shop (an overloaded shop). Failures, like answers that came too late.
    unsent: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    statuses: Counter[str] = field(default_factory=Counter)
    by_action: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    hosts_in_service: list[int] = field(default_factory=list)
    wall_seconds: float = 0.0

    @property
    def errors(self) -> int:
        return self.sent - self.ok + self.unsent

    @property
    def error_rate(self) -> float:
        offered = self.sent + self.unsent
        return self.errors / offered if offered else 0.0

    def summary(self) -> dict[str, Any]:
        def ms(p: float) -> float | None:
            value = percentile(self.latencies_ms, p)
            return None if value is None else round(value, 1)

        return {
            "multiple": self.multiple,
            "offered_rps": round(self.rate, 2),
            "rps": round(self.ok / self.wall_seconds, 2) if self.wall_seconds else 0.0,
            "sent": self.sent,
            "unsent": self.unsent,
            "errors": self.errors,
            "error_rate": round(self.error_rate, 5),
            "p50_ms": ms(50),
            "p95_ms": ms(95),
            "p99_ms": ms(99),
            "hosts_in_service": max(self.hosts_in_service) if self.hosts_in_service else None,
            "hosts_in_service_min": min(self.hosts_in_service) if self.hosts_in_service else None,
            "statuses": dict(self.statuses),
            "first_failures": self.failures[:10],
        }


class Customer:
    """One browser: a keep-alive connection to the front door and its cookie jar (the shop's session, the ALB's
    stickiness cookie)."""

    def __init__(self, target: Target, timeout: float) -> None:
        self.target = target
        self.timeout = timeout
        self.cookies: dict[str, str] = {}
        self.cart = 0
        self._conn: http.client.HTTPConnection | None = None
        parts = urlsplit(target.url)
        assert parts.port is not None
        self._port = parts.port
        self._https = parts.scheme == "https"
        self._context = ssl.create_default_context(cafile=target.cafile) if self._https else None

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            if self._https:
                self._conn = http.client.HTTPSConnection(
                    "127.0.0.1", self._port, timeout=self.timeout, context=self._context
                )
            else:
                self._conn = http.client.HTTPConnection("127.0.0.1", self._port, timeout=self.timeout)
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def send(
        self, method: str, path: str, body: bytes | None = None, content_type: str = "application/json"
    ) -> tuple[str, bytes]:
        headers = {"Host": "localhost"}
        # The whole jar, as a browser sends it: the shop's session and the load balancer's stickiness cookie.
        jar = "; ".join(f"{name}={value}" for name, value in sorted(self.cookies.items()) if value)
        if jar:
            headers["Cookie"] = jar
        if body is not None:
            headers["Content-Type"] = content_type
        for attempt in (1, 2):
            reused = self._conn is not None
            conn = self._connection()
            try:
                conn.request(method, path, body=body, headers=headers)
                response = conn.getresponse()
            except CLOSED_BEFORE_AN_ANSWER as exc:
                self.close()
                # A keep-alive connection the server closed while it was idle (a load balancer's reload, its idle
                # timeout): sent again once on a new connection, as a browser does when a reused connection
                # fails before any byte of the answer. A new connection that fails is an error.
                if reused and attempt == 1:
                    continue
                return type(exc).__name__, b""
            except (OSError, http.client.HTTPException, ssl.SSLError) as exc:
                self.close()
                return type(exc).__name__, b""
            try:
                data = response.read()
            except (OSError, http.client.HTTPException, ssl.SSLError) as exc:
                self.close()
                return type(exc).__name__, b""
            set_cookie = "\n".join(v for k, v in response.getheaders() if k.lower() == "set-cookie")
            if set_cookie:
                self.cookies.update(cookies_of(set_cookie))
            if response.getheader("Connection", "").lower() == "close":
                self.close()
            return str(response.status), data
        return "unreachable", b""


class Designs:
    """Ids of the designs uploaded so far (views pick one), shared by the threads."""

    def __init__(self) -> None:
        self._ids: list[str] = []
        self._lock = threading.Lock()

    def add(self, ident: str) -> None:
        with self._lock:
            self._ids.append(ident)

    def pick(self, n: int) -> str | None:
        with self._lock:
            return self._ids[n % len(self._ids)] if self._ids else None


def act(customer: Customer, action: str, n: int, designs: Designs, prefix: str) -> tuple[str, bool]:
    """One customer action; (status, ok)."""
    if action == "view":
        ident = designs.pick(n)
        if ident is not None:
            status, _ = customer.send("GET", f"/designs/{ident}")
            return status, status in ("200", "304")
        action = "browse"
    if action == "checkout" and customer.cart == 0:
        action = "add"
    if action == "browse":
        status, _ = customer.send("GET", "/catalog")
        return status, status == "200"
    if action == "add":
        body = json.dumps({"sku": SKUS[n % len(SKUS)], "qty": 1}).encode()
        status, _ = customer.send("POST", "/cart/items", body)
        if status == "200":
            customer.cart += 1
        return status, status == "200"
    if action == "upload":
        data = design_bytes(n, UPLOAD_SIZES[n % len(UPLOAD_SIZES)])
        body, content_type = multipart(data)
        status, reply = customer.send("POST", "/designs", body, content_type)
        if status == "201":
            try:
                designs.add(str(json.loads(reply)["id"]))
            except (ValueError, KeyError, TypeError):
                return "bad-answer", False
        return status, status == "201"
    # checkout
    body = json.dumps({"order_ref": f"{prefix}-{n:07d}"}).encode()
    status, _ = customer.send("POST", "/cart/checkout", body)
    if status == "201":
        customer.cart = 0
    return status, status == "201"


def run_step(
    target: Target,
    multiple: float,
    rate: float,
    seconds: float,
    *,
    mix: Mix | None = None,
    threads: int = 32,
    timeout: float = 10.0,
    designs: Designs | None = None,
    prefix: str = "peak",
    offset: int = 0,
    hosts: Callable[[], int | None] | None = None,
    stop: threading.Event | None = None,
) -> StepResult:
    """Send ``rate`` requests per second of ``mix`` to ``target`` for ``seconds``; measure every one.

    ``offset`` numbers this step's requests after the earlier steps' (order refs stay unique);
    ``hosts`` is sampled about every 2 s (hosts in service during the step).
    """
    if rate <= 0 or seconds <= 0:
        raise ValueError(f"a step needs a positive rate and duration (rate={rate}, seconds={seconds})")
    total = min(int(rate * seconds), MAX_REQUESTS_PER_STEP)
    actions = (mix or Mix()).schedule(total)
    designs = designs or Designs()
    stop = stop or threading.Event()
    result = StepResult(multiple=multiple, rate=rate, seconds=seconds)
    lock = threading.Lock()
    counter = iter(range(total))
    start = time.monotonic() + 0.2
    deadline = start + seconds + timeout

    def worker() -> None:
        customer = Customer(target, timeout)
        try:
            while not stop.is_set():
                with lock:
                    i = next(counter, None)
                if i is None:
                    return
                due = start + i / rate
                wait = due - time.monotonic()
                if wait > 0 and stop.wait(wait):
                    return
                if time.monotonic() > deadline:
                    return
                status, ok = act(customer, actions[i], offset + i, designs, prefix)
                latency = (time.monotonic() - due) * 1000.0
                with lock:
                    result.sent += 1
                    result.statuses[status] += 1
                    result.by_action[actions[i]] += 1
                    if ok:
                        result.ok += 1
                        result.latencies_ms.append(latency)
                    elif len(result.failures) < 50:
                        result.failures.append(f"{actions[i]}: {status}")
        finally:
            customer.close()

    pool = [threading.Thread(target=worker, name=f"peak-{i}", daemon=True) for i in range(threads)]
    for t in pool:
        t.start()
    while any(t.is_alive() for t in pool):
        if hosts is not None:
            count = hosts()
            if count is not None:
                result.hosts_in_service.append(count)
        for t in pool:
            t.join(timeout=2.0 / max(1, len(pool)))
    result.wall_seconds = max(time.monotonic() - start, 1e-6)
    if not stop.is_set():
        result.unsent = total - result.sent
    return result
