"""Checks of the shop's behaviour shared by the jar (molecule/java_app) and WAR (molecule/java_app_war) scenarios.

One Python script runs on the test host (a single testinfra command: each costs an Ansible run) and
talks to the app on 127.0.0.1:8080 like a customer would: a cart kept across two requests with the
session cookie (and absent without it), a checkout that writes exactly one order to MariaDB, a design
upload downloaded back byte-identical (sha256, ETag), the listing, and the refusals (415, 413, path
traversal). The test asserts on the JSON it prints.
"""

from __future__ import annotations

import json
import shlex
from typing import Any

UPLOAD_DIR = "/var/lib/shop/designs"

SCRIPT = r"""
import hashlib, json, os, pwd, grp, secrets, subprocess, urllib.error, urllib.request

BASE = os.environ.get("SHOP_BASE", "http://127.0.0.1:8080")
MARIADB = os.environ.get("MARIADB_CMD", "mariadb").split()


def req(method, path, body=None, headers=None):
    r = urllib.request.Request(BASE + path, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(r, timeout=60) as resp:
            return resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def form(data, ctype, filename="design.png"):
    b = "gl" + secrets.token_hex(8)
    head = ('--%s\r\nContent-Disposition: form-data; name="file"; filename="%s"\r\n'
            'Content-Type: %s\r\n\r\n' % (b, filename, ctype)).encode()
    return head + data + ("\r\n--%s--\r\n" % b).encode(), {"Content-Type": "multipart/form-data; boundary=" + b}


def orders(ref):
    out = subprocess.run(MARIADB + ["-N", "-B", "-e",
                          "SELECT COUNT(*) FROM shop.orders WHERE order_ref LIKE '%s.%%'" % ref],
                         capture_output=True, text=True, check=True)
    return int(out.stdout.strip())


out = {}
JSON = {"Content-Type": "application/json"}

# Cart across two requests, with the cookie; nothing without it.
s1, h1, b1 = req("POST", "/cart/items", json.dumps({"sku": "TSHIRT-BLK-M", "qty": 1}).encode(), JSON)
set_cookie = h1.get("Set-Cookie") or ""
cookie = {"Cookie": set_cookie.split(";", 1)[0]}
s2, h2, b2 = req("POST", "/cart/items", json.dumps({"sku": "TSHIRT-BLK-M", "qty": 2}).encode(), dict(JSON, **cookie))
_, _, with_cookie = req("GET", "/cart", headers=cookie)
_, _, without_cookie = req("GET", "/cart")
_, _, health = req("GET", "/health")
ref = "mol" + secrets.token_hex(6)
before = orders(ref)
s3, _, b3 = req("POST", "/cart/checkout", json.dumps({"order_ref": ref}).encode(), dict(JSON, **cookie))
s4, _, b4 = req("POST", "/cart/checkout", json.dumps({"order_ref": ref}).encode(), dict(JSON, **cookie))
out["cart"] = {
    "first": s1, "second": s2, "set_cookie": set_cookie, "second_set_cookie": h2.get("Set-Cookie"),
    "with_cookie": json.loads(with_cookie), "without_cookie": json.loads(without_cookie),
    "health": json.loads(health), "checkout": s3, "checkout_body": json.loads(b3), "checkout_again": s4,
    "orders_before": before, "orders_after": orders(ref),
}

# A design: upload, download, listing, file on disk.
data = b"\x89PNG\r\n\x1a\n" + os.urandom(2 * 1024 * 1024)
body, headers = form(data, "image/png", "../../etc/evil.png")
su, hu, bu = req("POST", "/designs", body, headers)
meta = json.loads(bu)
did = meta.get("id", "")
sd, hd, bd = req("GET", "/designs/" + did)
_, _, listing = req("GET", "/designs")
path = "%s/%s.png" % (os.environ["UPLOAD_DIR"], did)
st = os.stat(path) if os.path.exists(path) else None
out["design"] = {
    "status": su, "meta": meta, "sha256": hashlib.sha256(data).hexdigest(), "etag": hu.get("ETag"),
    "download": sd, "download_sha256": hashlib.sha256(bd).hexdigest(), "download_type": hd.get("Content-Type"),
    "download_etag": hd.get("ETag"), "listing": json.loads(listing),
    "owner": ([pwd.getpwuid(st.st_uid).pw_name, grp.getgrgid(st.st_gid).gr_name, oct(st.st_mode & 0o777)]
              if st else None),
    "disk_sha256": hashlib.sha256(open(path, "rb").read()).hexdigest() if st else None,
    "evil": os.path.exists("/etc/evil.png") or os.path.exists("/var/lib/evil.png"),
}

# Refusals.
body, headers = form(b"<html><script>alert(1)</script></html>", "text/html", "x.html")
bad_type = req("POST", "/designs", body, headers)[0]
body, headers = form(b"\x89PNG\r\n\x1a\n" + b"\0" * int(os.environ.get("UPLOAD_MAX", "10485760")), "image/png")
too_big = req("POST", "/designs", body, headers)[0]
traversal = [req("GET", p)[0] for p in ("/designs/../../../etc/passwd", "/designs/..%2f..%2fetc%2fpasswd",
                                         "/designs/" + did + ".json")]
out["refused"] = {"bad_type": bad_type, "too_big": too_big, "traversal": traversal}
print(json.dumps(out))
"""


def run(host: Any, upload_dir: str = UPLOAD_DIR) -> dict[str, Any]:
    out = host.check_output(f"UPLOAD_DIR={shlex.quote(upload_dir)} python3 -c {shlex.quote(SCRIPT)}")
    result = json.loads(out)
    assert isinstance(result, dict)
    return result


def check(host: Any, run_user: str, upload_dir: str = UPLOAD_DIR) -> None:
    """All shop checks; run_user owns the uploaded files (shop for the jar, tomcat under Tomcat)."""
    r = run(host, upload_dir)
    cart = r["cart"]
    assert cart["first"] == 200 and cart["second"] == 200, cart
    attrs = {a.strip().lower() for a in cart["set_cookie"].split(";")[1:]}
    assert cart["set_cookie"].startswith("JSESSIONID=") and {"httponly", "samesite=lax"} <= attrs, cart["set_cookie"]
    assert cart["second_set_cookie"] is None, "an existing session got a new cookie"
    assert cart["with_cookie"]["items"] == [{"sku": "TSHIRT-BLK-M", "qty": 3}], cart["with_cookie"]
    assert cart["without_cookie"]["items"] == [], "a cart without the session cookie"
    assert cart["health"]["sessions"] >= 1, cart["health"]
    assert cart["checkout"] == 201, cart["checkout_body"]
    assert cart["checkout_again"] == 409, "a second checkout of the emptied cart was accepted"
    assert (cart["orders_before"], cart["orders_after"]) == (0, 1), "checkout must write exactly one order"

    d = r["design"]
    assert d["status"] == 201, d["meta"]
    assert d["meta"]["sha256"] == d["sha256"] and d["etag"] == f'"{d["sha256"]}"', d
    assert d["download"] == 200 and d["download_sha256"] == d["sha256"], "download differs from the upload"
    assert d["download_type"] == "image/png" and d["download_etag"] == f'"{d["sha256"]}"', d
    assert d["disk_sha256"] == d["sha256"], "file on disk differs"
    assert d["owner"] is not None and d["owner"][0] == run_user, (
        f"uploaded file owner {d['owner']}, expected {run_user}"
    )
    assert d["owner"][2] == "0o640", f"uploaded file mode {d['owner'][2]}, expected 0640 (UMask 0027)"
    assert d["evil"] is False, "the client's file name was used as a path"
    listed = {x["id"]: x for x in d["listing"]["designs"]}
    assert listed[d["meta"]["id"]]["sha256"] == d["sha256"], d["listing"]

    refused = r["refused"]
    assert refused["bad_type"] == 415, refused
    assert refused["too_big"] == 413, refused
    assert all(s in (400, 404) for s in refused["traversal"]), refused
