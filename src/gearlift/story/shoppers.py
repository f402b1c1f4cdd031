"""The story's shoppers: carts kept in the shop's sessions, check-outs, and customers' design uploads.

What the real monolith keeps on its hosts (issue 15): a cart lives in an in-memory HTTP session,
an uploaded design on the web server's disk. ``ShopperLoop`` plays a few customers doing that
through the shop's front door of the moment, in one bounded thread on loopback, and keeps what
the shop confirmed so the story can check it at the end:

- a cart update is sent with the shopper's session cookie; when the shop answers with a cart
  missing lines it had confirmed before (a new session: the host that held the old one is gone),
  the cart is **lost** in the phase running at the time; when the cart was built on another front
  door (the shop's name moved from the legacy shop to the ALB), it is counted apart as **left at the
  switch**: the legacy shop kept it in its own memory, and no setting of the target can keep those;
- a check-out (``POST /cart/checkout``) confirmed with 201 adds its order rows (``<ref>.<n>``) to
  the confirmed orders, which must all be in the database at the end;
- a design upload confirmed with 201 (id and sha256, the sha256 checked against what was sent)
  must be readable at the end through the front door of the moment, byte-identical.

Bounded: at most ``max_steps`` requests, ``max_seconds`` of running and ``max_upload_bytes`` of
uploads; traffic only goes where ``Target`` allows (127.0.0.1).
"""

from __future__ import annotations

import hashlib
import json
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from gearlift.story.traffic import FrontDoor, PhaseTraffic, Target

SKUS: tuple[str, ...] = ("TSHIRT-BLK-M", "TSHIRT-WHT-M", "HOODIE-GRY-L", "HOODIE-NVY-XL")
#: Sizes of the designs uploaded in turn: a few KB to a few MB, as customers' artwork is.
DESIGN_SIZES: tuple[int, ...] = (2 * 1024, 40 * 1024, 300 * 1024, 1536 * 1024)
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
COOKIE = "JSESSIONID"


def design_bytes(n: int, size: int) -> bytes:
    """The n-th design: a PNG signature and ``size`` bytes in all, reproducible from ``n``."""
    body = random.Random(n).randbytes(max(size - len(PNG_MAGIC), 1))  # noqa: S311 - test data, not a secret
    return PNG_MAGIC + body


def multipart(data: bytes, content_type: str = "image/png", filename: str = "design.png") -> tuple[bytes, str]:
    """A multipart/form-data body with one file part named ``file``, and its Content-Type header."""
    boundary = "gearlift-" + hashlib.sha256(data).hexdigest()[:24]
    head = (
        f"--{boundary}\r\n"
        f'Content-Disposition: form-data; name="file"; filename="{filename}"\r\n'
        f"Content-Type: {content_type}\r\n\r\n"
    ).encode()
    return head + data + f"\r\n--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def cookies_of(set_cookie: str) -> dict[str, str]:
    """name -> value of every cookie a Set-Cookie header sets (several joined by newlines); an expired
    one (``Max-Age=0``) maps to '' (the browser drops it)."""
    found: dict[str, str] = {}
    for line in set_cookie.splitlines():
        first, *attributes = [part.strip() for part in line.split(";")]
        name, sep, value = first.partition("=")
        if not sep or not name.strip():
            continue
        expired = any(a.lower().replace(" ", "") == "max-age=0" for a in attributes)
        found[name.strip()] = "" if expired else value.strip()
    return found


def cart_items(body: bytes) -> dict[str, int] | None:
    """sku -> qty of a cart answer, None when the body is not one."""
    try:
        data = json.loads(body)
        return {str(i["sku"]): int(i["qty"]) for i in data["items"]}
    except (ValueError, KeyError, TypeError):
        return None


def lost_lines(before: dict[str, int], after: dict[str, int]) -> bool:
    """True when ``after`` misses a line, or has less of one, that ``before`` had (the session was lost)."""
    return any(after.get(sku, 0) < qty for sku, qty in before.items())


@dataclass
class Shopper:
    number: int
    cookies: dict[str, str] = field(default_factory=dict)  # the browser's jar: the session, the ALB's stickiness

    @property
    def cookie(self) -> str | None:
        return self.cookies.get(COOKIE) or None

    cart: dict[str, int] = field(default_factory=dict)  # what the shop confirmed last
    site: str = ""  # the front door that confirmed the cart
    adds: int = 0


class ShopperLoop:
    def __init__(
        self,
        target: Target,
        prefix: str = "story-cart",
        shoppers: int = 3,
        interval: float = 1.0,
        upload_every: int = 10,
        checkout_every: int = 5,
        max_steps: int = 10000,
        max_seconds: float = 3600.0,
        max_upload_bytes: int = 64 * 1024 * 1024,
    ) -> None:
        if shoppers < 1 or upload_every < 2 or checkout_every < 1:
            raise ValueError("shoppers >= 1, upload_every >= 2 and checkout_every >= 1")
        self.prefix = prefix
        self.interval = interval
        self.upload_every = upload_every
        self.checkout_every = checkout_every
        self.max_steps = max_steps
        self.max_seconds = max_seconds
        self.max_upload_bytes = max_upload_bytes
        self.phase = "estate"
        self.shoppers = [Shopper(i) for i in range(shoppers)]
        self.uploads: dict[str, tuple[str, int]] = {}  # design id -> (sha256, size) the shop confirmed
        self.upload_bytes = 0
        self.orders: list[str] = []  # order rows (order_ref) of confirmed check-outs
        self.carts_lost: Counter[str] = Counter()  # phase -> carts the front door of the moment lost
        self.carts_left_at_switch: Counter[str] = Counter()  # phase -> carts another front door held
        self.by_phase: dict[str, PhaseTraffic] = {}
        self.failures: list[str] = []
        self.seconds = 0.0
        self.door = FrontDoor(target)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="story-shoppers", daemon=True)

    # --------------------------------------------------------------- control
    @property
    def target(self) -> FrontDoor:
        return self.door

    def switch(self, target: Target) -> None:
        """From now on the shoppers go through ``target``, keeping their cookies (the same name, a new site)."""
        self.door.switch(target)

    def follow(self, resolve: Callable[[], Target]) -> None:
        """From now on each request goes where the shop's name leads, with the same cookies."""
        self.door.follow(resolve)

    def start(self) -> ShopperLoop:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=60)

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def failed(self, phase: str) -> int | None:
        traffic = self.by_phase.get(phase)
        return traffic.failed if traffic is not None else None

    # ----------------------------------------------------------------- steps
    def _count(self, status: str, ok: tuple[str, ...], what: str, body: bytes) -> bool:
        traffic = self.by_phase.setdefault(self.phase, PhaseTraffic())
        traffic.sent += 1
        traffic.statuses[f"{what} {status}"] += 1
        if status in ok:
            return True
        traffic.failed += 1
        if len(self.failures) < 100:
            self.failures.append(f"{time.strftime('%H:%M:%S')} {self.phase} {what} {status} {body[:120]!r}")
        return False

    def _headers(self, shopper: Shopper) -> dict[str, str]:
        jar = "; ".join(f"{name}={value}" for name, value in sorted(shopper.cookies.items()) if value)
        return {"Cookie": jar} if jar else {}

    def _lose(self, shopper: Shopper, site: str) -> None:
        """Count the shopper's cart lost: by the site that answered, or left behind on another one."""
        if shopper.site and site and site != shopper.site:
            self.carts_left_at_switch[self.phase] += 1
        else:
            self.carts_lost[self.phase] += 1
        shopper.cart = {}

    def add(self, shopper: Shopper, sku: str) -> None:
        body = json.dumps({"sku": sku, "qty": 1}).encode()
        reply = self.target.exchange("POST", "/cart/items", body, headers=self._headers(shopper))
        if not self._count(reply.status, ("200",), "cart", reply.body):
            return
        shopper.cookies.update(cookies_of(reply.headers.get("set-cookie", "")))
        items = cart_items(reply.body)
        if items is None:
            return
        if lost_lines(shopper.cart, items):
            self._lose(shopper, reply.site)
        shopper.cart, shopper.site = items, reply.site
        shopper.adds += 1

    def checkout(self, shopper: Shopper, step: int) -> None:
        ref = f"{self.prefix}-{step:06d}"
        body = json.dumps({"order_ref": ref}).encode()
        reply = self.target.exchange("POST", "/cart/checkout", body, headers=self._headers(shopper))
        shopper.cookies.update(cookies_of(reply.headers.get("set-cookie", "")))
        if reply.status == "409" and b"duplicate" not in reply.body:
            # An empty cart or no session: the shop lost the cart the shopper had.
            self._count(reply.status, ("409",), "checkout", reply.body)
            self._lose(shopper, reply.site)
            return
        if not self._count(reply.status, ("201",), "checkout", reply.body):
            return  # 503 read-only and the like: the cart is kept, the shopper tries again later
        try:
            rows = [str(o["order_ref"]) for o in json.loads(reply.body)["orders"]]
        except (ValueError, KeyError, TypeError):
            rows = []
        self.orders.extend(rows)
        shopper.cart = {}

    def upload(self, step: int) -> None:
        size = DESIGN_SIZES[(step // self.upload_every) % len(DESIGN_SIZES)]
        if self.upload_bytes + size > self.max_upload_bytes:
            return
        data = design_bytes(step, size)
        body, content_type = multipart(data)
        reply = self.target.exchange("POST", "/designs", body, content_type=content_type, timeout=30.0)
        if not self._count(reply.status, ("201",), "upload", reply.body):
            return
        try:
            answer = json.loads(reply.body)
            ident, sha = str(answer["id"]), str(answer["sha256"])
        except (ValueError, KeyError, TypeError):
            return
        expected = hashlib.sha256(data).hexdigest()
        if sha != expected:
            self._count("sha256-mismatch", (), "upload", reply.body)
            return
        self.uploads[ident] = (sha, size)
        self.upload_bytes += size

    def step(self, n: int) -> None:
        shopper = self.shoppers[n % len(self.shoppers)]
        if n % self.upload_every == self.upload_every - 1:
            self.upload(n)
        elif shopper.cart and shopper.adds % self.checkout_every == 0:
            self.checkout(shopper, n)
        else:
            self.add(shopper, SKUS[n % len(SKUS)])

    def _run(self) -> None:
        start = time.monotonic()
        try:
            for n in range(self.max_steps):
                if self._stop.is_set() or time.monotonic() - start > self.max_seconds:
                    return
                self.step(n)
                self._stop.wait(self.interval)
        finally:
            self.seconds = time.monotonic() - start

    # ---------------------------------------------------------------- checks
    def missing_uploads(self, target: Target | FrontDoor) -> list[str]:
        """The confirmed designs that ``target`` does not serve byte-identical (checked by sha256)."""
        missing = []
        for ident, (sha, size) in sorted(self.uploads.items()):
            reply = target.exchange("GET", f"/designs/{ident}", timeout=30.0, max_bytes=size + 1)
            if reply.status != "200" or hashlib.sha256(reply.body).hexdigest() != sha:
                missing.append(ident)
        return missing
