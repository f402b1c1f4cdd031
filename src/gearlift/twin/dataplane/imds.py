"""IMDS: each EC2 host reaches its instance metadata at 169.254.169.254:80, as on EC2.

One HTTP server per twin, bound to the twin network's gateway on a free port; every host's
namespace sends 169.254.169.254:80 there (a DNAT rule built with its security-group rules in
gearlift.twin.netpolicy; IMDS is not filtered by security groups). The server knows an
instance by the address its request comes from. It follows the EC2 user guide ("Use the
Instance Metadata Service to access instance metadata", "Configure the instance metadata
options"):

- IMDSv2: ``PUT /latest/api/token`` with ``X-aws-ec2-metadata-token-ttl-seconds`` (1..21600)
  returns a session token; a request carrying ``X-Forwarded-For`` gets no token (403); the
  token's response leaves with the instance's ``HttpPutResponseHopLimit`` as its IP TTL;
- a GET with an invalid or expired token is 401; without a token it is 401 when the
  instance's ``HttpTokens`` is ``required`` (IMDSv1 refused), else served (v1);
- ``HttpEndpoint`` disabled: 403 for every request;
- meta-data: instance-id, ami-id, instance-type, local-ipv4, placement/region and
  availability-zone, iam/info, iam/security-credentials/<role> (temporary credentials of the
  instance profile's role, minted inside the emulator, gearlift.twin.emulator.iam), and the
  instance identity document.

The pure rules (``Tokens``, ``answer``) are separate from the server and the reconciler.
"""

from __future__ import annotations

import json
import secrets
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from gearlift.twin import channel
from gearlift.twin.awsclients import Clients
from gearlift.twin.dataplane import Round

Log = Callable[[str], None]

ADDRESS = "169.254.169.254"
TTL_HEADER = "X-aws-ec2-metadata-token-ttl-seconds"
TOKEN_HEADER = "X-aws-ec2-metadata-token"  # noqa: S105 - a header name
MAX_TOKEN_TTL = 21600
MAX_TOKENS = 4096  # bounded memory: expired tokens are dropped first, then the oldest
DEFAULT_TTL = 64
# An instance without role credentials is asked about again after this long (a profile associated later).
RECHECK_NO_ROLE = 30.0
# Ask for new role credentials this long before the current ones expire.
RENEW_BEFORE = 15 * 60


@dataclass(frozen=True)
class Instance:
    """What IMDS tells one instance, from DescribeInstances and its role's credentials."""

    instance_id: str
    region: str
    availability_zone: str = ""
    local_ipv4: str = ""
    image_id: str = ""
    instance_type: str = ""
    account: str = ""
    http_tokens: str = "optional"
    hop_limit: int = 1
    endpoint_enabled: bool = True
    role: str | None = None
    info: dict[str, str] = field(default_factory=dict)
    credentials: dict[str, str] = field(default_factory=dict)


@dataclass
class Tokens:
    """IMDSv2 session tokens: issued for a TTL, valid only for the instance they were issued to."""

    issued: dict[str, tuple[str, float]] = field(default_factory=dict)  # token -> (instance id, expiry)

    def issue(self, instance_id: str, ttl_header: str | None, now: float) -> tuple[int, str]:
        """(status, token or reason) for PUT /latest/api/token."""
        if ttl_header is None or not ttl_header.strip().isdigit():
            return 400, f"missing or invalid {TTL_HEADER}"
        ttl = int(ttl_header)
        if not 1 <= ttl <= MAX_TOKEN_TTL:
            return 400, f"{TTL_HEADER} must be 1..{MAX_TOKEN_TTL}"
        self.issued = {t: v for t, v in self.issued.items() if v[1] > now}
        while len(self.issued) >= MAX_TOKENS:
            self.issued.pop(min(self.issued, key=lambda t: self.issued[t][1]))
        token = secrets.token_urlsafe(32)
        self.issued[token] = (instance_id, now + ttl)
        return 200, token

    def valid(self, instance_id: str, token: str, now: float) -> bool:
        owner, expiry = self.issued.get(token, ("", 0.0))
        return owner == instance_id and expiry > now


def _meta_data(instance: Instance) -> dict[str, str]:
    """Path under /latest/meta-data/ -> text."""
    data = {
        "instance-id": instance.instance_id,
        "ami-id": instance.image_id,
        "instance-type": instance.instance_type,
        "local-ipv4": instance.local_ipv4,
        "placement/region": instance.region,
        "placement/availability-zone": instance.availability_zone,
    }
    if instance.role and instance.info:
        data["iam/info"] = json.dumps(
            {"Code": "Success", "LastUpdated": instance.credentials.get("LastUpdated", ""), **instance.info}, indent=2
        )
    if instance.role and instance.credentials:
        data["iam/security-credentials/"] = instance.role
        data[f"iam/security-credentials/{instance.role}"] = json.dumps(instance.credentials, indent=2)
    return {k: v for k, v in data.items() if v}


def _listing(data: dict[str, str], prefix: str) -> str | None:
    """A directory listing as IMDS prints it (sub-directories end with '/')."""
    names = sorted(
        {
            key[len(prefix) :].split("/", 1)[0] + ("/" if "/" in key[len(prefix) :] else "")
            for key in data
            if key.startswith(prefix) and key != prefix
        }
    )
    return "\n".join(names) if names else None


def answer(
    instance: Instance | None, method: str, path: str, headers: dict[str, str], tokens: Tokens, now: float
) -> tuple[int, str]:
    """IMDS's answer (status, body) to one request from ``instance`` (None: not an EC2 instance)."""
    if instance is None:
        return 404, "Not Found"
    if not instance.endpoint_enabled:
        return 403, "Forbidden"
    lower = {k.lower(): v for k, v in headers.items()}
    if path == "/latest/api/token":
        if method != "PUT":
            return 405, "Method Not Allowed"
        if "x-forwarded-for" in lower:
            return 403, "Forbidden"
        return tokens.issue(instance.instance_id, lower.get(TTL_HEADER.lower()), now)
    if method != "GET":
        return 405, "Method Not Allowed"
    token = lower.get(TOKEN_HEADER.lower())
    if token is not None:
        if not tokens.valid(instance.instance_id, token, now):
            return 401, "Unauthorized"
    elif instance.http_tokens == "required":
        return 401, "Unauthorized"
    if path == "/latest/dynamic/instance-identity/document":
        return 200, json.dumps(
            {
                "accountId": instance.account,
                "architecture": "x86_64",
                "availabilityZone": instance.availability_zone,
                "imageId": instance.image_id,
                "instanceId": instance.instance_id,
                "instanceType": instance.instance_type,
                "privateIp": instance.local_ipv4,
                "region": instance.region,
                "version": "2017-09-30",
            },
            indent=2,
        )
    prefix = "/latest/meta-data/"
    if path in ("/latest", "/latest/"):
        return 200, "dynamic\nmeta-data"
    if not (path + "/").startswith(prefix):
        return 404, "Not Found"
    key = path[len(prefix) :]
    data = _meta_data(instance)
    if key in data:
        return 200, data[key]
    listing = _listing(data, key if key.endswith("/") or not key else key + "/")
    return (200, listing) if listing is not None else (404, "Not Found")


def instance_from(item: dict[str, Any], region: str, account: str) -> Instance:
    """An Instance from a DescribeInstances item (its role's credentials added later)."""
    options = item.get("MetadataOptions") or {}
    return Instance(
        instance_id=item["InstanceId"],
        region=region,
        availability_zone=(item.get("Placement") or {}).get("AvailabilityZone", ""),
        local_ipv4=item.get("PrivateIpAddress", ""),
        image_id=item.get("ImageId", ""),
        instance_type=item.get("InstanceType", ""),
        account=account,
        http_tokens=str(options.get("HttpTokens") or "optional"),
        hop_limit=int(options.get("HttpPutResponseHopLimit") or 1),
        endpoint_enabled=str(options.get("HttpEndpoint") or "enabled") != "disabled",
    )


def _expires(credentials: dict[str, str]) -> float:
    try:
        when = datetime.strptime(credentials["Expiration"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except (KeyError, ValueError):
        return 0.0
    return when.timestamp()


class ImdsServer:
    """The twin's metadata service on ``host`` (the gateway), on a port the kernel picks."""

    def __init__(self, host: str, log: Log) -> None:
        self.log = log
        self.tokens = Tokens()
        self.instances: dict[str, Instance] = {}  # twin address -> instance
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            server_version = "EC2ws"
            sys_version = ""

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(min(length, 65536))
                with server._lock:
                    instance = server.instances.get(self.client_address[0])
                    status, body = answer(
                        instance,
                        self.command,
                        self.path.split("?", 1)[0],
                        dict(self.headers.items()),
                        server.tokens,
                        time.time(),
                    )
                payload = body.encode()
                # The token travels at most HttpPutResponseHopLimit hops (EC2 user guide).
                hops = instance.hop_limit if self.command == "PUT" and status == 200 and instance else DEFAULT_TTL
                self.connection.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, hops)
                self.send_response(status)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(payload)))
                if self.command == "PUT" and status == 200:
                    self.send_header(TTL_HEADER, str(self.headers.get(TTL_HEADER, "")).strip())
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _serve

            def log_message(self, format: str, *args: Any) -> None:
                return  # never log requests: their responses carry credentials

        self.httpd = ThreadingHTTPServer((host, 0), Handler)
        self.httpd.daemon_threads = True
        self.port = int(self.httpd.server_address[1])
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="twin-imds", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def publish(self, instances: dict[str, Instance]) -> None:
        with self._lock:
            self.instances = dict(instances)


class ImdsReconciler:
    """Keeps the IMDS server's view of every running instance current, role credentials included."""

    def __init__(self, server: ImdsServer, clients: Clients, region: str, log: Log) -> None:
        self.server = server
        self.clients = clients
        self.region = region
        self.log = log
        self.account = ""
        self._roles: dict[str, dict[str, Any]] = {}  # instance id -> last answer of the emulator

    def _role(self, iid: str) -> dict[str, Any]:
        """The emulator's answer for the instance's role: cached until near expiry (none: briefly)."""
        cached = self._roles.get(iid)
        now = time.time()
        if cached is not None:
            creds = cached.get("credentials")
            if creds and _expires(creds) - now > RENEW_BEFORE:
                return cached
            if not creds and now - float(cached.get("asked", 0.0)) < RECHECK_NO_ROLE:
                return cached
        found = channel.send(
            self.clients.endpoint, channel.ROLE_CREDENTIALS, {"region": self.region, "instance_id": iid}
        )
        found["asked"] = now
        if found.get("error") and (cached or {}).get("error") != found["error"]:
            self.log(f"imds: {iid} gets no role credentials: {found['error']}")
        self._roles[iid] = found
        return found

    def reconcile(self, round_: Round) -> None:
        if not self.account:
            self.account = str(self.clients("sts").get_caller_identity()["Account"])
        published: dict[str, Instance] = {}
        for iid, item in round_.instances.items():
            address = round_.addresses.get(iid)
            if not address or item.get("State", {}).get("Name") not in ("pending", "running"):
                continue
            instance = instance_from(item, self.region, self.account)
            role = self._role(iid)
            if role.get("credentials"):
                instance = replace(
                    instance,
                    role=str(role["role"]),
                    info=dict(role.get("info") or {}),
                    credentials=dict(role["credentials"]),
                )
            published[address] = instance
        for gone in [i for i in self._roles if i not in round_.instances]:
            del self._roles[gone]
        self.server.publish(published)
