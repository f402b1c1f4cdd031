"""The twin's IMDS: token rules, what each path answers, and the server on a real socket."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest

from gearlift.twin.dataplane.imds import (
    MAX_TOKEN_TTL,
    TOKEN_HEADER,
    TTL_HEADER,
    ImdsServer,
    Instance,
    Tokens,
    answer,
    instance_from,
)
from gearlift.twin.netpolicy import Node, Plane, Policy, Topology

CREDS = {
    "Code": "Success",
    "LastUpdated": "2026-12-05T00:00:00Z",
    "Type": "AWS-HMAC",
    "AccessKeyId": "ASIAEXAMPLE",
    "SecretAccessKey": "not-a-real-secret",
    "Token": "session-token",
    "Expiration": "2026-12-05T06:00:00Z",
}
V2 = Instance(
    instance_id="i-0abc",
    region="eu-west-1",
    availability_zone="eu-west-1b",
    local_ipv4="10.40.2.17",
    http_tokens="required",
    role="shop-app",
    info={"InstanceProfileArn": "arn:aws:iam::123456789012:instance-profile/shop-app", "InstanceProfileId": "AIPA1"},
    credentials=CREDS,
)
V1 = Instance(instance_id="i-0def", region="eu-west-1", http_tokens="optional")


def _token(tokens: Tokens, instance: Instance = V2, ttl: str = "60", now: float = 0.0) -> str:
    status, token = answer(instance, "PUT", "/latest/api/token", {TTL_HEADER: ttl}, tokens, now)
    assert status == 200
    return token


def test_a_token_needs_a_ttl_of_1_to_21600_seconds_and_no_forwarding_header() -> None:
    tokens = Tokens()
    assert answer(V2, "PUT", "/latest/api/token", {}, tokens, 0)[0] == 400
    assert answer(V2, "PUT", "/latest/api/token", {TTL_HEADER: "0"}, tokens, 0)[0] == 400
    assert answer(V2, "PUT", "/latest/api/token", {TTL_HEADER: str(MAX_TOKEN_TTL + 1)}, tokens, 0)[0] == 400
    assert answer(V2, "PUT", "/latest/api/token", {TTL_HEADER: "abc"}, tokens, 0)[0] == 400
    assert answer(V2, "PUT", "/latest/api/token", {TTL_HEADER: "60", "X-Forwarded-For": "1.2.3.4"}, tokens, 0)[0] == 403
    assert answer(V2, "GET", "/latest/api/token", {TTL_HEADER: "60"}, tokens, 0)[0] == 405
    assert answer(V2, "PUT", "/latest/api/token", {TTL_HEADER.lower(): str(MAX_TOKEN_TTL)}, tokens, 0)[0] == 200


def test_tokens_required_refuses_imdsv1_and_accepts_a_valid_token_until_it_expires() -> None:
    tokens = Tokens()
    assert answer(V2, "GET", "/latest/meta-data/instance-id", {}, tokens, 0) == (401, "Unauthorized")
    token = _token(tokens, ttl="60", now=100.0)
    assert answer(V2, "GET", "/latest/meta-data/instance-id", {TOKEN_HEADER: token}, tokens, 159.0) == (200, "i-0abc")
    assert answer(V2, "GET", "/latest/meta-data/instance-id", {TOKEN_HEADER: token}, tokens, 160.0)[0] == 401
    assert answer(V2, "GET", "/latest/meta-data/instance-id", {TOKEN_HEADER: "forged"}, tokens, 101.0)[0] == 401


def test_optional_tokens_serve_imdsv1_but_still_refuse_a_bad_token() -> None:
    tokens = Tokens()
    assert answer(V1, "GET", "/latest/meta-data/instance-id", {}, tokens, 0) == (200, "i-0def")
    assert answer(V1, "GET", "/latest/meta-data/instance-id", {TOKEN_HEADER: "forged"}, tokens, 0)[0] == 401


def test_a_token_is_valid_only_for_the_instance_it_was_issued_to() -> None:
    tokens = Tokens()
    token = _token(tokens, V1)
    assert answer(V2, "GET", "/latest/meta-data/instance-id", {TOKEN_HEADER: token}, tokens, 1)[0] == 401


def test_a_disabled_endpoint_and_an_unknown_caller_get_nothing() -> None:
    tokens = Tokens()
    off = Instance(instance_id="i-off", region="eu-west-1", endpoint_enabled=False)
    assert answer(off, "PUT", "/latest/api/token", {TTL_HEADER: "60"}, tokens, 0)[0] == 403
    assert answer(None, "GET", "/latest/meta-data/instance-id", {}, tokens, 0)[0] == 404


def test_meta_data_paths_answer_as_imds_does() -> None:
    tokens = Tokens()
    h = {TOKEN_HEADER: _token(tokens)}

    def get(path: str) -> tuple[int, str]:
        return answer(V2, "GET", path, h, tokens, 1)

    assert get("/latest/meta-data/placement/region") == (200, "eu-west-1")
    assert get("/latest/meta-data/placement/availability-zone") == (200, "eu-west-1b")
    assert get("/latest/meta-data/local-ipv4") == (200, "10.40.2.17")
    assert get("/latest/meta-data/iam/security-credentials/") == (200, "shop-app")
    assert get("/latest/meta-data/iam/security-credentials") == (200, "shop-app")
    assert json.loads(get("/latest/meta-data/iam/security-credentials/shop-app")[1]) == CREDS
    info = json.loads(get("/latest/meta-data/iam/info")[1])
    assert info["Code"] == "Success" and info["InstanceProfileArn"].endswith("instance-profile/shop-app")
    assert get("/latest/meta-data/iam/") == (200, "info\nsecurity-credentials/")
    assert "placement/" in get("/latest/meta-data/")[1].split("\n")
    assert get("/latest/meta-data/iam/security-credentials/other-role")[0] == 404
    assert json.loads(get("/latest/dynamic/instance-identity/document")[1])["region"] == "eu-west-1"
    # No role: no iam/ tree at all.
    assert answer(V1, "GET", "/latest/meta-data/iam/security-credentials/", {}, tokens, 1)[0] == 404


def test_an_instance_takes_its_metadata_options_from_describe_instances() -> None:
    item = {
        "InstanceId": "i-1",
        "Placement": {"AvailabilityZone": "us-east-1a"},
        "PrivateIpAddress": "10.0.0.5",
        "MetadataOptions": {"HttpTokens": "required", "HttpPutResponseHopLimit": 2, "HttpEndpoint": "disabled"},
    }
    instance = instance_from(item, "us-east-1", "123456789012")
    assert (instance.http_tokens, instance.hop_limit, instance.endpoint_enabled) == ("required", 2, False)
    assert instance_from({"InstanceId": "i-2"}, "us-east-1", "1").http_tokens == "optional"


def test_ec2_hosts_reach_imds_whatever_their_groups_and_other_hosts_do_not() -> None:
    plane = Plane("10.89.81.1", "10.89.81.0/24", 4566, imds_port=40123)
    policy = Policy([], Topology(), plane)
    ec2 = Node(key="i-1", kind="ec2", twin_ip="10.89.81.5")
    rds = Node(key="rds:db", kind="rds", twin_ip="10.89.81.6")
    assert "-A OUTPUT -d 10.89.81.1/32 -p tcp --dport 40123 -j ACCEPT" in policy.ruleset(ec2).splitlines()
    assert "--dport 40123" not in policy.ruleset(rds)
    dnat = "-A OUTPUT -d 169.254.169.254/32 -p tcp --dport 80 -j DNAT --to-destination 10.89.81.1:40123"
    assert dnat in policy.nat(ec2).splitlines()
    assert "DNAT" not in policy.nat(rds)
    assert policy.nat(rds).startswith("*nat\n") and policy.nat(rds).endswith("COMMIT\n")


@pytest.fixture
def server() -> Iterator[ImdsServer]:
    imds = ImdsServer("127.0.0.1", lambda line: None)
    imds.start()
    try:
        yield imds
    finally:
        imds.stop()


def test_the_server_answers_the_instance_at_the_callers_address(server: ImdsServer) -> None:
    base = f"http://127.0.0.1:{server.port}"
    server.publish({"127.0.0.1": V2})
    put = urllib.request.Request(f"{base}/latest/api/token", method="PUT", headers={TTL_HEADER: "30"})
    with urllib.request.urlopen(put, timeout=5) as resp:
        token = resp.read().decode()
        assert resp.headers[TTL_HEADER] == "30"
    get = urllib.request.Request(f"{base}/latest/meta-data/instance-id", headers={TOKEN_HEADER: token})
    with urllib.request.urlopen(get, timeout=5) as resp:
        assert resp.read().decode() == "i-0abc"
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(f"{base}/latest/meta-data/instance-id", timeout=5)
    assert refused.value.code == 401
    server.publish({})
    with pytest.raises(urllib.error.HTTPError) as unknown:
        urllib.request.urlopen(get, timeout=5)
    assert unknown.value.code == 404


class _Clients:
    endpoint = "http://127.0.0.1:1"

    def __call__(self, service: str) -> object:
        class Sts:
            def get_caller_identity(self) -> dict[str, str]:
                return {"Account": "123456789012"}

        return Sts()


def test_the_reconciler_publishes_running_instances_and_renews_credentials_before_expiry(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from gearlift.twin.dataplane import Round, imds

    clock = {"now": 1_000_000.0}
    asked: list[str] = []

    def send(endpoint: str, report: str, body: dict[str, str], timeout: float = 10) -> dict[str, object]:
        asked.append(body["instance_id"])
        if body["instance_id"] == "i-role":
            expiry = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(clock["now"] + 3600))
            return {
                "role": "shop-app",
                "info": {"InstanceProfileArn": "arn"},
                "credentials": {**CREDS, "Expiration": expiry},
            }
        return {"role": None}

    monkeypatch.setattr(imds.channel, "send", send)
    monkeypatch.setattr(imds.time, "time", lambda: clock["now"])
    published: dict[str, Instance] = {}

    class Server:
        def publish(self, instances: dict[str, Instance]) -> None:
            published.clear()
            published.update(instances)

    reconciler = imds.ImdsReconciler(Server(), _Clients(), "us-east-1", lambda line: None)  # type: ignore[arg-type]
    items = {
        "i-role": {"InstanceId": "i-role", "State": {"Name": "running"}, "MetadataOptions": {"HttpTokens": "required"}},
        "i-none": {"InstanceId": "i-none", "State": {"Name": "running"}},
        "i-gone": {"InstanceId": "i-gone", "State": {"Name": "terminated"}},
    }
    round_ = Round(instances=items, addresses={"i-role": "10.89.81.5", "i-none": "10.89.81.6", "i-gone": "10.89.81.7"})
    reconciler.reconcile(round_)
    assert sorted(published) == ["10.89.81.5", "10.89.81.6"]
    assert published["10.89.81.5"].role == "shop-app" and published["10.89.81.5"].http_tokens == "required"
    assert published["10.89.81.6"].role is None
    assert sorted(asked) == ["i-none", "i-role"]
    clock["now"] += 10  # cached: nothing asked again
    reconciler.reconcile(round_)
    assert len(asked) == 2
    clock["now"] += 30  # an instance without a role is asked again (a profile associated later)
    reconciler.reconcile(round_)
    assert asked[2:] == ["i-none"]
    clock["now"] += 3600 - 40 - imds.RENEW_BEFORE + 1  # within RENEW_BEFORE of expiry: renewed
    reconciler.reconcile(round_)
    assert "i-role" in asked[3:]
