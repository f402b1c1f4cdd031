"""The story's shoppers against a local fake of the stand-in shop's cart, check-out and design routes.

The fake keeps carts in in-memory sessions and designs in a dict, as the stand-in does (its real
behaviour is tested in tests/integration/test_shop_standin.py); ``forget()`` drops every session
(a host replaced, a new front door), ``read_only`` makes check-outs answer 503.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, cast

import pytest

from gearlift.story.shoppers import (
    DESIGN_SIZES,
    PNG_MAGIC,
    ShopperLoop,
    cart_items,
    cookies_of,
    design_bytes,
    lost_lines,
    multipart,
)
from gearlift.story.traffic import Target


class FakeShop(ThreadingHTTPServer):
    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.lock = threading.Lock()
        self.sessions: dict[str, dict[str, int]] = {}
        self.designs: dict[str, bytes] = {}
        self.orders: list[str] = []
        self.read_only = False
        self.corrupt_next_design = False

    def forget(self) -> None:
        with self.lock:
            self.sessions.clear()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:
        return None

    @property
    def shop(self) -> FakeShop:
        return cast(FakeShop, self.server)

    def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, data: Any, headers: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(data).encode(), headers)

    def _session(self) -> str | None:
        match = re.search(r"JSESSIONID=([^;]+)", self.headers.get("Cookie", ""))
        return match.group(1) if match and match.group(1) in self.shop.sessions else None

    def _cart(self, items: dict[str, int]) -> dict[str, Any]:
        return {"items": [{"sku": k, "qty": v} for k, v in items.items()], "lines": len(items)}

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        with self.shop.lock:
            if self.path == "/cart/items":
                sid, headers = self._session(), {}
                if sid is None:
                    sid = secrets.token_urlsafe(16)
                    self.shop.sessions[sid] = {}
                    headers["Set-Cookie"] = f"JSESSIONID={sid}; Path=/; HttpOnly"
                item = json.loads(body)
                cart = self.shop.sessions[sid]
                cart[item["sku"]] = cart.get(item["sku"], 0) + item["qty"]
                self._json(200, self._cart(cart), headers)
            elif self.path == "/cart/checkout":
                sid = self._session()
                if sid is None or not self.shop.sessions[sid]:
                    self._json(409, {"error": "empty cart"})
                elif self.shop.read_only:
                    self._json(503, {"error": "read-only"})
                else:
                    ref = json.loads(body)["order_ref"]
                    rows = [f"{ref}.{n}" for n in range(1, len(self.shop.sessions[sid]) + 1)]
                    self.shop.orders += rows
                    self.shop.sessions[sid] = {}
                    self._json(201, {"order_ref": ref, "orders": [{"order_ref": r} for r in rows]})
            elif self.path == "/designs":
                boundary = self.headers["Content-Type"].split("boundary=", 1)[1].encode()
                part = body.split(b"--" + boundary)[1]
                data = part.split(b"\r\n\r\n", 1)[1][: -len(b"\r\n")]
                ident = secrets.token_hex(8)
                stored = data[:-1] + b"x" if self.shop.corrupt_next_design else data
                self.shop.corrupt_next_design = False
                self.shop.designs[ident] = stored
                self._json(201, {"id": ident, "sha256": hashlib.sha256(data).hexdigest()})
            else:
                self._json(404, {"error": "no route"})

    def do_GET(self) -> None:
        with self.shop.lock:
            ident = self.path.removeprefix("/designs/")
            if ident in self.shop.designs:
                self._send(200, self.shop.designs[ident])
            else:
                self._json(404, {"error": "no design"})


@pytest.fixture
def shop() -> Iterator[FakeShop]:
    server = FakeShop()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


# ------------------------------------------------------------------------ pure parts


def test_designs_are_pngs_of_the_given_size_and_reproducible() -> None:
    data = design_bytes(7, 2048)
    assert data.startswith(PNG_MAGIC) and len(data) == 2048
    assert design_bytes(7, 2048) == data and design_bytes(8, 2048) != data
    assert max(DESIGN_SIZES) >= 1024 * 1024 and min(DESIGN_SIZES) <= 4096  # a few KB to a few MB


def test_multipart_carries_the_file_part_byte_for_byte() -> None:
    data = design_bytes(1, 300)
    body, content_type = multipart(data)
    boundary = content_type.split("boundary=", 1)[1]
    assert content_type.startswith("multipart/form-data; ")
    assert body.startswith(f"--{boundary}\r\n".encode()) and body.endswith(f"\r\n--{boundary}--\r\n".encode())
    assert b'name="file"' in body and data in body


def test_the_jar_keeps_every_cookie_the_shop_and_the_alb_set() -> None:
    header = "JSESSIONID=abc-_1; Path=/; HttpOnly; Secure\nAWSALB=srv2; Max-Age=86400; Path=/"
    assert cookies_of(header) == {"JSESSIONID": "abc-_1", "AWSALB": "srv2"}
    assert cookies_of("AWSALB=; Max-Age=0; Path=/") == {"AWSALB": ""}
    assert cookies_of("garbage") == {} and cookies_of("") == {}


def test_cart_items_and_lost_lines() -> None:
    assert cart_items(b'{"items":[{"sku":"A","qty":2}],"lines":1}') == {"A": 2}
    assert cart_items(b"not json") is None and cart_items(b'{"x":1}') is None
    assert lost_lines({"A": 2}, {"A": 2, "B": 1}) is False
    assert lost_lines({"A": 2, "B": 1}, {"B": 1}) is True
    assert lost_lines({"A": 2}, {"A": 1}) is True
    assert lost_lines({}, {"A": 1}) is False


def test_the_loop_refuses_settings_that_would_never_upload_or_shop() -> None:
    with pytest.raises(ValueError):
        ShopperLoop(Target("http://127.0.0.1:9"), shoppers=0)
    with pytest.raises(ValueError):
        ShopperLoop(Target("http://127.0.0.1:9"), upload_every=1)


# --------------------------------------------------------------- against the fake shop


def _loop(shop: FakeShop, **kw: Any) -> ShopperLoop:
    settings: dict[str, Any] = {"shoppers": 2, "interval": 0.0, "upload_every": 4, "checkout_every": 3}
    return ShopperLoop(Target(shop.url), **(settings | kw))


def test_carts_grow_across_requests_check_out_into_orders_and_uploads_are_kept(shop: FakeShop) -> None:
    loop = _loop(shop)
    for n in range(24):
        loop.step(n)
    assert sum(loop.carts_lost.values()) == 0
    assert loop.orders and sorted(loop.orders) == sorted(shop.orders)
    assert len(loop.uploads) == 6 and len(shop.designs) == 6
    assert loop.upload_bytes == sum(size for _, size in loop.uploads.values())
    assert loop.missing_uploads(Target(shop.url)) == []
    assert loop.failed("estate") == 0


def test_a_forgotten_session_is_a_lost_cart_in_the_phase_running(shop: FakeShop) -> None:
    loop = _loop(shop, checkout_every=100)
    for n in range(6):
        loop.step(n)
    loop.phase = "patch"
    shop.forget()
    for n in range(6, 12):
        loop.step(n)
    # both shoppers had a cart; each finds it gone once, then shops on in a new session
    assert loop.carts_lost == {"patch": 2}
    assert all(s.cart for s in loop.shoppers)


def test_a_checkout_answered_with_an_empty_cart_counts_the_cart_lost(shop: FakeShop) -> None:
    loop = _loop(shop, shoppers=1, checkout_every=2, upload_every=100)
    loop.step(0)
    loop.step(1)  # two adds: the next step checks out
    shop.forget()
    loop.phase = "cutover"
    loop.step(2)
    assert loop.carts_lost == {"cutover": 1} and shop.orders == [] and loop.orders == []


def test_a_read_only_checkout_keeps_the_cart_and_is_a_failed_request(shop: FakeShop) -> None:
    loop = _loop(shop, shoppers=1, checkout_every=2, upload_every=100)
    loop.step(0)
    loop.step(1)
    shop.read_only = True
    loop.phase = "cutover"
    loop.step(2)
    assert loop.failed("cutover") == 1 and loop.shoppers[0].cart
    shop.read_only = False
    loop.step(3)
    assert loop.orders == shop.orders == ["story-cart-000003.1", "story-cart-000003.2"]  # one row per line
    assert loop.shoppers[0].cart == {}
    assert sum(loop.carts_lost.values()) == 0


def test_an_upload_the_shop_stores_differently_is_found_missing(shop: FakeShop) -> None:
    loop = _loop(shop, shoppers=1, upload_every=2)
    loop.step(1)
    shop.corrupt_next_design = True
    loop.step(3)
    assert len(loop.uploads) == 2
    missing = loop.missing_uploads(Target(shop.url))
    assert len(missing) == 1
    with shop.lock:
        shop.designs.clear()  # a host with its local disk gone
    assert sorted(loop.missing_uploads(Target(shop.url))) == sorted(loop.uploads)


def test_uploads_stop_at_the_byte_budget(shop: FakeShop) -> None:
    loop = _loop(shop, shoppers=1, upload_every=2, max_upload_bytes=3 * 1024)
    for n in range(20):
        loop.step(n)
    assert loop.upload_bytes <= 3 * 1024 and len(loop.uploads) == 1


def test_the_loop_switches_its_front_door_and_keeps_its_cookies(shop: FakeShop) -> None:
    other = FakeShop()
    threading.Thread(target=other.serve_forever, daemon=True).start()
    try:
        loop = _loop(shop, shoppers=1, checkout_every=100, upload_every=100)
        loop.step(0)
        loop.switch(Target(other.url))
        loop.phase = "cutover"
        loop.step(1)
        # the new site never knew the session: the cart stayed in the old site's memory, counted apart
        assert loop.carts_left_at_switch == {"cutover": 1} and sum(loop.carts_lost.values()) == 0
        assert len(other.sessions) == 1
        loop.phase = "patch"
        other.forget()
        loop.step(2)
        assert loop.carts_lost == {"patch": 1}  # a cart the new site held, lost by the new site
        assert loop.carts_left_at_switch == {"cutover": 1}
    finally:
        other.shutdown()
        other.server_close()


def test_the_thread_is_bounded_by_steps(shop: FakeShop) -> None:
    loop = _loop(shop, max_steps=9).start()
    loop._thread.join(timeout=30)
    assert not loop.running
    traffic = loop.by_phase["estate"]
    assert traffic.sent == 9


def test_customers_following_the_name_go_where_it_leads_and_a_dead_name_is_a_failed_request(shop: FakeShop) -> None:
    other = FakeShop()
    threading.Thread(target=other.serve_forever, daemon=True).start()
    try:
        answers = [Target(shop.url), Target(other.url)]
        loop = _loop(shop, shoppers=1, checkout_every=100, upload_every=100)
        loop.follow(lambda: answers[0])
        loop.step(0)
        answers[0] = Target(other.url)  # the record now names the other front door
        loop.phase = "cutover"
        loop.step(1)
        assert len(shop.sessions) == 1 and len(other.sessions) == 1

        def nowhere() -> Target:
            raise LookupError("shop.example.com resolves to nothing")

        loop.follow(nowhere)
        loop.step(2)
        assert loop.by_phase["cutover"].statuses["cart ResolveError"] == 1
        assert loop.failed("cutover") == 1
    finally:
        other.shutdown()
        other.server_close()
