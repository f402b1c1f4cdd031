"""IAM on the twin: the resource ARN per action, identity-policy outcomes, and the emulator
authenticating every request that is not the controller's.

The pure rules (gearlift.twin.iampolicy) are tested directly; the emulator's behaviour with
one real emulator process (as the twin starts it), where the test plays a host by sending
from another loopback address (127.0.0.7) with the credentials the emulator minted for the
instance's role, as the twin's IMDS server hands them out.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import botocore.exceptions
import pytest
from botocore.config import Config
from botocore.httpsession import URLLib3Session

from gearlift.twin import channel
from gearlift.twin.awsclients import Clients
from gearlift.twin.controlplane import MotoControlPlane
from gearlift.twin.iampolicy import Decision, condition_holds, evaluate, resource_arns

REGION = "us-east-1"
ACCOUNT = "123456789012"
BASE = f"arn:aws:{{}}:{REGION}:{ACCOUNT}:"
HOST_ADDRESS = "127.0.0.7"


def arn(service: str, rest: str) -> str:
    return BASE.format(service) + rest


# ------------------------------------------------------------ ARN per action


@pytest.mark.parametrize(
    ("service", "action", "params", "expected"),
    [
        ("secretsmanager", "GetSecretValue", {"SecretId": "app-db"}, [arn("secretsmanager", "secret:app-db")]),
        (
            "secretsmanager",
            "GetSecretValue",
            {"SecretId": arn("secretsmanager", "secret:x-AbCdEf")},
            [arn("secretsmanager", "secret:x-AbCdEf")],
        ),
        ("ssm", "GetParameter", {"Name": "/gearlift/shop/prod/x"}, [arn("ssm", "parameter/gearlift/shop/prod/x")]),
        ("ssm", "GetParameter", {"Name": "plain"}, [arn("ssm", "parameter/plain")]),
        ("ssm", "GetParameters", {"Names": ["/a", "b"]}, [arn("ssm", "parameter/a"), arn("ssm", "parameter/b")]),
        ("kms", "Decrypt", {"KeyId": "1234abcd"}, [arn("kms", "key/1234abcd")]),
        ("kms", "Decrypt", {"KeyId": arn("kms", "key/k1")}, [arn("kms", "key/k1")]),
        ("logs", "PutRetentionPolicy", {"logGroupName": "/g/app"}, [arn("logs", "log-group:/g/app:*")]),
        ("logs", "CreateLogGroup", {"logGroupName": "/g/app"}, [arn("logs", "log-group:/g/app:*")]),
        (
            "logs",
            "PutLogEvents",
            {"logGroupName": "/g/app", "logStreamName": "i-1"},
            [arn("logs", "log-group:/g/app:log-stream:i-1")],
        ),
        (
            "ec2",
            "TerminateInstances",
            {"InstanceId.2": "i-b", "InstanceId.1": "i-a"},
            [arn("ec2", "instance/i-a"), arn("ec2", "instance/i-b")],
        ),
        ("ec2", "DescribeInstances", {}, ["*"]),
    ],
)
def test_each_action_names_the_resource_it_acts_on(
    service: str, action: str, params: dict[str, Any], expected: list[str]
) -> None:
    assert resource_arns(service, action, params, REGION, ACCOUNT) == expected


def test_names_the_emulator_knows_resolve_to_full_arns() -> None:
    full = arn("secretsmanager", "secret:app-db-AbCdEf")
    key = arn("kms", "key/k-1")

    def resolve(kind: str, ident: str) -> str | None:
        return {("secret", "app-db"): full, ("key", "alias/secrets"): key, ("ciphertext", "blob"): key}.get(
            (kind, ident)
        )

    assert resource_arns("secretsmanager", "GetSecretValue", {"SecretId": "app-db"}, REGION, ACCOUNT, resolve) == [full]
    assert resource_arns("kms", "Decrypt", {"KeyId": "alias/secrets"}, REGION, ACCOUNT, resolve) == [key]
    assert resource_arns("kms", "Decrypt", {"CiphertextBlob": "blob"}, REGION, ACCOUNT, resolve) == [key]


# ------------------------------------------------------------ policy outcome

SCOPED = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Action": ["secretsmanager:GetSecretValue"],
            "Resource": arn("secretsmanager", "secret:gearlift/shop/app-db-*"),
        },
        {
            "Effect": "Allow",
            "Action": "kms:Decrypt",
            "Resource": arn("kms", "key/k-1"),
            "Condition": {"StringEquals": {"kms:ViaService": f"secretsmanager.{REGION}.amazonaws.com"}},
        },
    ],
}


def test_a_policy_scoped_to_an_arn_allows_that_resource_and_no_other() -> None:
    own = arn("secretsmanager", "secret:gearlift/shop/app-db-AbCdEf")
    other = arn("secretsmanager", "secret:rds!db-1234-XyZ123")
    assert evaluate([SCOPED], "secretsmanager:GetSecretValue", own) is Decision.ALLOW
    assert evaluate([SCOPED], "secretsmanager:GetSecretValue", other) is Decision.IMPLICIT_DENY
    assert evaluate([SCOPED], "secretsmanager:PutSecretValue", own) is Decision.IMPLICIT_DENY
    # An action with no resource-level permission (resource "*") is not allowed by a scoped statement.
    assert evaluate([SCOPED], "secretsmanager:GetSecretValue", "*") is Decision.IMPLICIT_DENY


def test_action_names_match_case_insensitively_resources_case_sensitively() -> None:
    doc = {"Statement": [{"Effect": "Allow", "Action": "SecretsManager:Get*", "Resource": "arn:aws:x:::Name?"}]}
    assert evaluate([doc], "secretsmanager:GetSecretValue", "arn:aws:x:::Name1") is Decision.ALLOW
    assert evaluate([doc], "secretsmanager:GetSecretValue", "arn:aws:x:::name1") is Decision.IMPLICIT_DENY
    assert evaluate([doc], "secretsmanager:GetSecretValue", "arn:aws:x:::Name12") is Decision.IMPLICIT_DENY


def test_an_explicit_deny_wins_over_any_allow() -> None:
    allow_all = {"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
    deny = {"Statement": [{"Effect": "Deny", "NotAction": "logs:PutLogEvents", "NotResource": "arn:aws:logs:*"}]}
    assert evaluate([allow_all, deny], "ec2:TerminateInstances", arn("ec2", "instance/i-1")) is Decision.EXPLICIT_DENY
    assert evaluate([allow_all, deny], "logs:PutLogEvents", "arn:aws:ec2:x") is Decision.ALLOW
    assert evaluate([allow_all, deny], "ec2:TerminateInstances", "arn:aws:logs:x") is Decision.ALLOW


def test_a_condition_on_a_key_the_request_lacks_does_not_grant() -> None:
    key = arn("kms", "key/k-1")
    assert evaluate([SCOPED], "kms:Decrypt", key) is Decision.IMPLICIT_DENY
    via = {"kms:ViaService": [f"secretsmanager.{REGION}.amazonaws.com"]}
    assert evaluate([SCOPED], "kms:Decrypt", key, via) is Decision.ALLOW
    assert evaluate([SCOPED], "kms:Decrypt", key, {"kms:ViaService": ["ssm.us-east-1.amazonaws.com"]}) is (
        Decision.IMPLICIT_DENY
    )


@pytest.mark.parametrize(
    ("operator", "expected", "context", "holds"),
    [
        ("StringEquals", "a", {}, False),
        ("StringNotEquals", "a", {}, True),
        ("StringEqualsIfExists", "a", {}, True),
        ("StringLike", "app-*", {"k": ["app-db"]}, True),
        ("StringNotLike", "app-*", {"k": ["app-db"]}, False),
        ("ArnLike", "arn:aws:iam::*:role/x", {"k": ["arn:aws:iam::1:role/x"]}, True),
        ("Bool", "true", {"k": ["True"]}, True),
        ("Null", "true", {}, True),
        ("Null", "false", {}, False),
        ("ForAllValues:StringEquals", ["a", "b"], {"k": ["a", "c"]}, False),
        ("ForAnyValue:StringEquals", ["a", "b"], {"k": ["a", "c"]}, True),
    ],
)
def test_condition_operators_as_iam_evaluates_them(
    operator: str, expected: Any, context: dict[str, list[str]], holds: bool
) -> None:
    assert condition_holds(operator, "k", expected, context) is holds


def test_an_unknown_condition_operator_never_grants_but_still_denies() -> None:
    cond = {"NumericLessThan": {"aws:MultiFactorAuthAge": "3600"}}
    allow = {"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*", "Condition": cond}]}
    deny = {"Statement": [{"Effect": "Deny", "Action": "*", "Resource": "*", "Condition": cond}]}
    assert evaluate([allow], "s3:GetObject", "*") is Decision.IMPLICIT_DENY
    assert evaluate([allow, deny], "s3:GetObject", "*") is Decision.EXPLICIT_DENY


# -------------------------------------------------- the emulator, as a host sees it

NAME = "shop"
LOGS = "/gearlift/shop/prod"


def _role_policy(secret_prefix: str, key_arn: str) -> dict[str, Any]:
    """The shape of playbooks/templates/app-role-policy.json.j2 (its own secret, key, parameters, logs)."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"],
                "Resource": f"{secret_prefix}*",
            },
            {
                "Effect": "Allow",
                "Action": "kms:Decrypt",
                "Resource": key_arn,
                "Condition": {"StringEquals": {"kms:ViaService": f"secretsmanager.{REGION}.amazonaws.com"}},
            },
            {
                "Effect": "Allow",
                "Action": ["ssm:GetParameter", "ssm:GetParameters"],
                "Resource": arn("ssm", "parameter/gearlift/shop/prod/*"),
            },
            {
                "Effect": "Allow",
                "Action": ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
                "Resource": arn("logs", f"log-group:{LOGS}/app:*"),
            },
        ],
    }


EC2_TRUST = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}],
}


@pytest.fixture
def aws(emulator: MotoControlPlane) -> Clients:
    emulator.reset()
    return Clients(emulator.url, REGION)


def _act_as_host(monkeypatch: pytest.MonkeyPatch) -> None:
    """botocore connections made from now on leave from HOST_ADDRESS: the emulator sees a host, not the controller."""
    original = URLLib3Session._get_pool_manager_kwargs

    def from_host(self: URLLib3Session, **extra: Any) -> dict[str, Any]:
        kwargs: dict[str, Any] = original(self, **extra)
        kwargs["source_address"] = (HOST_ADDRESS, 0)
        return kwargs

    monkeypatch.setattr(URLLib3Session, "_get_pool_manager_kwargs", from_host)


@pytest.fixture
def as_host(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    _act_as_host(monkeypatch)
    yield


def _host_client(emulator: MotoControlPlane, service: str, creds: dict[str, str]) -> Any:
    return boto3.session.Session(
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds.get("Token"),
        region_name=REGION,
    ).client(service, endpoint_url=emulator.url, config=Config(retries={"max_attempts": 1}))  # type: ignore[call-overload]


def _code(exc: pytest.ExceptionInfo[botocore.exceptions.ClientError]) -> str:
    return str(exc.value.response["Error"]["Code"])


@pytest.fixture
def estate(aws: Clients, emulator: MotoControlPlane) -> dict[str, Any]:
    """An app role (the shipped policy's shape) on an instance, its secret, the RDS master's secret, logs."""
    key = aws("kms").create_key(Description="secrets")["KeyMetadata"]["Arn"]
    own = aws("secretsmanager").create_secret(
        Name=f"gearlift/{NAME}/app-db", SecretString=json.dumps({"username": "app"}), KmsKeyId=key
    )["ARN"]
    master = aws("secretsmanager").create_secret(Name="rds!db-1234", SecretString=json.dumps({"username": "root"}))[
        "ARN"
    ]
    iam = aws("iam")
    iam.create_role(RoleName=f"{NAME}-app", AssumeRolePolicyDocument=json.dumps(EC2_TRUST))
    prefix = own.rsplit(":", 1)[0] + f":gearlift/{NAME}/app-db-"
    iam.put_role_policy(
        RoleName=f"{NAME}-app", PolicyName="least-privilege", PolicyDocument=json.dumps(_role_policy(prefix, key))
    )
    iam.create_instance_profile(InstanceProfileName=f"{NAME}-app")
    iam.add_role_to_instance_profile(InstanceProfileName=f"{NAME}-app", RoleName=f"{NAME}-app")
    logs = aws("logs")
    for group in (f"{LOGS}/app", f"{LOGS}/other"):
        logs.create_log_group(logGroupName=group)
    ssm = aws("ssm")
    ssm.put_parameter(Name="/gearlift/shop/prod/feature", Value="on", Type="String")
    ssm.put_parameter(Name="/other/feature", Value="on", Type="String")
    ec2 = aws("ec2")
    image = ec2.describe_images(Owners=["099720109477"])["Images"][0]["ImageId"]
    ec2.create_launch_template(
        LaunchTemplateName="app",
        LaunchTemplateData={
            "ImageId": image,
            "IamInstanceProfile": {"Name": f"{NAME}-app"},
            "MetadataOptions": {"HttpTokens": "required", "HttpPutResponseHopLimit": 1, "HttpEndpoint": "enabled"},
        },
    )
    launched = ec2.run_instances(LaunchTemplate={"LaunchTemplateName": "app"}, MinCount=2, MaxCount=2)["Instances"]
    ids = [i["InstanceId"] for i in launched]
    role = channel.send(emulator.url, channel.ROLE_CREDENTIALS, {"region": REGION, "instance_id": ids[0]})
    return {"ids": ids, "own": own, "master": master, "role": role, "key": key}


def test_instances_from_a_template_get_its_role_and_metadata_options(aws: Clients, estate: dict[str, Any]) -> None:
    described = aws("ec2").describe_instances(InstanceIds=estate["ids"])["Reservations"][0]["Instances"]
    for item in described:
        assert item["MetadataOptions"]["HttpTokens"] == "required"
        assert item["MetadataOptions"]["HttpPutResponseHopLimit"] == 1
    associations = aws("ec2").describe_iam_instance_profile_associations()["IamInstanceProfileAssociations"]
    assert sorted(a["InstanceId"] for a in associations) == sorted(estate["ids"])


def test_role_credentials_are_an_ec2_session_of_the_profiles_role(
    emulator: MotoControlPlane, estate: dict[str, Any], as_host: None
) -> None:
    role = estate["role"]
    assert role["role"] == f"{NAME}-app"
    creds = role["credentials"]
    assert creds["Code"] == "Success" and creds["Expiration"].endswith("Z") and creds["Token"]
    who = _host_client(emulator, "sts", creds).get_caller_identity()
    assert who["Arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/{NAME}-app/{estate['ids'][0]}"


def test_a_role_ec2_may_not_assume_gets_no_credentials(aws: Clients, emulator: MotoControlPlane) -> None:
    iam = aws("iam")
    trust = {"Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:*"}]}
    iam.create_role(RoleName="fn", AssumeRolePolicyDocument=json.dumps(trust))
    iam.create_instance_profile(InstanceProfileName="fn")
    iam.add_role_to_instance_profile(InstanceProfileName="fn", RoleName="fn")
    image = aws("ec2").describe_images(Owners=["099720109477"])["Images"][0]["ImageId"]
    iid = aws("ec2").run_instances(ImageId=image, MinCount=1, MaxCount=1, IamInstanceProfile={"Name": "fn"})[
        "Instances"
    ][0]["InstanceId"]
    role = channel.send(emulator.url, channel.ROLE_CREDENTIALS, {"region": REGION, "instance_id": iid})
    assert "credentials" not in role and "ec2.amazonaws.com" in role["error"]
    plain = aws("ec2").run_instances(ImageId=image, MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    assert channel.send(emulator.url, channel.ROLE_CREDENTIALS, {"region": REGION, "instance_id": plain}) == {
        "instance_id": plain,
        "role": None,
    }


def test_a_host_gets_exactly_what_its_role_allows(
    emulator: MotoControlPlane, estate: dict[str, Any], as_host: None
) -> None:
    creds = estate["role"]["credentials"]
    secrets = _host_client(emulator, "secretsmanager", creds)
    assert json.loads(secrets.get_secret_value(SecretId=estate["own"])["SecretString"]) == {"username": "app"}
    assert secrets.get_secret_value(SecretId=f"gearlift/{NAME}/app-db")["ARN"] == estate["own"]
    with pytest.raises(botocore.exceptions.ClientError) as denied:
        secrets.get_secret_value(SecretId=estate["master"])
    assert _code(denied) == "AccessDeniedException"
    assert f"assumed-role/{NAME}-app/" in str(denied.value) and estate["master"] in str(denied.value)

    ssm = _host_client(emulator, "ssm", creds)
    assert ssm.get_parameter(Name="/gearlift/shop/prod/feature")["Parameter"]["Value"] == "on"
    with pytest.raises(botocore.exceptions.ClientError) as denied:
        ssm.get_parameters(Names=["/gearlift/shop/prod/feature", "/other/feature"])
    assert _code(denied) == "AccessDeniedException"

    logs = _host_client(emulator, "logs", creds)
    logs.create_log_stream(logGroupName=f"{LOGS}/app", logStreamName=estate["ids"][0])
    logs.put_log_events(
        logGroupName=f"{LOGS}/app",
        logStreamName=estate["ids"][0],
        logEvents=[{"timestamp": 1_700_000_000_000, "message": "boot"}],
    )
    for call, kwargs in (
        (logs.put_retention_policy, {"logGroupName": f"{LOGS}/other", "retentionInDays": 1}),
        (logs.put_retention_policy, {"logGroupName": f"{LOGS}/app", "retentionInDays": 1}),
        (logs.create_log_group, {"logGroupName": f"{LOGS}/new"}),
    ):
        with pytest.raises(botocore.exceptions.ClientError) as denied:
            call(**kwargs)
        assert _code(denied) == "AccessDeniedException"

    # A direct Decrypt lacks kms:ViaService: the role's condition does not grant it.
    with pytest.raises(botocore.exceptions.ClientError) as denied:
        _host_client(emulator, "kms", creds).decrypt(CiphertextBlob=b"x" * 64, KeyId=estate["key"])
    assert _code(denied) == "AccessDeniedException"

    with pytest.raises(botocore.exceptions.ClientError) as denied:
        _host_client(emulator, "ec2", creds).terminate_instances(InstanceIds=[estate["ids"][1]])
    assert _code(denied) == "UnauthorizedOperation"


def test_a_host_without_issued_credentials_is_refused_and_the_controller_is_not(
    aws: Clients, emulator: MotoControlPlane, estate: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The controller's own (dummy) credentials: the operator, as against a real account.
    assert aws("secretsmanager").get_secret_value(SecretId=estate["master"])["ARN"] == estate["master"]
    _act_as_host(monkeypatch)
    dummy = {"AccessKeyId": "testing", "SecretAccessKey": "testing"}
    with pytest.raises(botocore.exceptions.ClientError) as refused:
        _host_client(emulator, "secretsmanager", dummy).get_secret_value(SecretId=estate["own"])
    assert _code(refused) == "UnrecognizedClientException"
    with pytest.raises(botocore.exceptions.ClientError) as refused:
        _host_client(emulator, "ec2", dummy).describe_instances()
    assert _code(refused) == "AuthFailure"
    forged = {**estate["role"]["credentials"], "SecretAccessKey": "not-the-secret"}
    with pytest.raises(botocore.exceptions.ClientError) as refused:
        _host_client(emulator, "secretsmanager", forged).get_secret_value(SecretId=estate["own"])
    assert _code(refused) == "InvalidSignatureException"
    with pytest.raises(botocore.exceptions.ClientError) as refused:
        _host_client(emulator, "sts", dummy).get_caller_identity()
    assert _code(refused) == "InvalidClientTokenId"


def test_the_sdks_default_chain_gets_the_role_from_the_twins_imds_and_the_emulator_enforces_it(
    aws: Clients, emulator: MotoControlPlane, estate: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """No containers: the host is 127.0.0.7 for both IMDS and the emulator; botocore finds no other credentials."""
    from gearlift.twin.dataplane import Round
    from gearlift.twin.dataplane.imds import ImdsReconciler, ImdsServer

    server = ImdsServer("127.0.0.1", lambda line: None)
    server.start()
    try:
        iid = estate["ids"][0]
        items = {i["InstanceId"]: i for r in aws("ec2").describe_instances()["Reservations"] for i in r["Instances"]}
        ImdsReconciler(server, aws, REGION, lambda line: None).reconcile(
            Round(instances=items, addresses={iid: HOST_ADDRESS})
        )
        _act_as_host(monkeypatch)
        for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials")
        monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/config")
        monkeypatch.setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", f"http://127.0.0.1:{server.port}/")
        monkeypatch.setenv("AWS_EC2_METADATA_V1_DISABLED", "true")
        session = boto3.session.Session(region_name=REGION)
        creds = session.get_credentials()
        assert creds is not None and creds.method == "iam-role"
        secrets = session.client("secretsmanager", endpoint_url=emulator.url)  # type: ignore[call-overload]
        assert secrets.get_secret_value(SecretId=f"gearlift/{NAME}/app-db")["ARN"] == estate["own"]
        with pytest.raises(botocore.exceptions.ClientError) as denied:
            secrets.get_secret_value(SecretId=estate["master"])
        assert _code(denied) == "AccessDeniedException"
    finally:
        server.stop()
