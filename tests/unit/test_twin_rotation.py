"""The twin's secret rotation: the emulator queues RotateSecret, the Lambda stand-in runs the function.

A real emulator process (the ``emulator`` fixture) and a real subprocess run a small rotation
function stored in the emulator (no database: it writes the pending version and moves
AWSCURRENT, the Secrets Manager half of the four steps).
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any

import botocore.exceptions
import pytest

from gearlift.twin import channel
from gearlift.twin.awsclients import Clients
from gearlift.twin.controlplane import MotoControlPlane
from gearlift.twin.dataplane.lambdas import LambdaRuntime, events, runtime_env, unpack
from gearlift.twin.emulator.rotation import in_progress, trusts_service

REGION = "eu-west-1"
FUNCTION = """
import json, os, botocore.session
def handler(event, context):
    endpoint = os.environ["SECRETS_MANAGER_ENDPOINT"]
    sm = botocore.session.get_session().create_client("secretsmanager", endpoint_url=endpoint)
    sid, token, step = event["SecretId"], event["ClientRequestToken"], event["Step"]
    assert os.environ["AWS_SESSION_TOKEN"] and os.environ["MARKER"] == "set-by-function-config"
    if step == "createSecret":
        cur = json.loads(sm.get_secret_value(SecretId=sid, VersionStage="AWSCURRENT")["SecretString"])
        cur["password"] = "rotated"
        sm.put_secret_value(
            SecretId=sid, ClientRequestToken=token, SecretString=json.dumps(cur), VersionStages=["AWSPENDING"]
        )
    if step == "finishSecret":
        stages = sm.describe_secret(SecretId=sid)["VersionIdsToStages"]
        old = next(v for v, s in stages.items() if "AWSCURRENT" in s)
        sm.update_secret_version_stage(
            SecretId=sid, VersionStage="AWSCURRENT", MoveToVersionId=token, RemoveFromVersionId=old
        )
    return step
"""
TRUST = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}],
}


def package(source: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("fn.py", source)
    return buf.getvalue()


@pytest.fixture
def aws(emulator: MotoControlPlane) -> Clients:
    emulator.reset()
    return Clients(emulator.url, REGION)


def deploy(aws: Clients, source: str = FUNCTION) -> tuple[str, str]:
    role = aws("iam").create_role(RoleName="rotation", AssumeRolePolicyDocument=json.dumps(TRUST))["Role"]["Arn"]
    fn = aws("lambda").create_function(
        FunctionName="rotation",
        Runtime="python3.12",
        Role=role,
        Handler="fn.handler",
        Code={"ZipFile": package(source)},
        Environment={"Variables": {"MARKER": "set-by-function-config"}},
    )["FunctionArn"]
    secret = aws("secretsmanager").create_secret(
        Name="gearlift/shop/app-db", SecretString=json.dumps({"username": "u", "password": "p"})
    )["ARN"]
    return fn, secret


def take(emulator: MotoControlPlane) -> list[dict[str, Any]]:
    return list(channel.send(emulator.url, channel.ROTATIONS, {"region": REGION})["rotations"])


def test_rotate_secret_queues_the_four_steps_and_leaves_the_current_value_alone(
    aws: Clients, emulator: MotoControlPlane
) -> None:
    fn, secret = deploy(aws)
    sm = aws("secretsmanager")
    answer = sm.rotate_secret(SecretId=secret, RotationLambdaARN=fn, RotationRules={"AutomaticallyAfterDays": 30})
    token = answer["VersionId"]
    stages = sm.describe_secret(SecretId=secret)["VersionIdsToStages"]
    assert stages[token] == ["AWSPENDING"]
    assert json.loads(sm.get_secret_value(SecretId=secret)["SecretString"])["password"] == "p"
    with pytest.raises(botocore.exceptions.ClientError):
        sm.get_secret_value(SecretId=secret, VersionStage="AWSPENDING")
    (job,) = take(emulator)
    assert (job["secret_arn"], job["token"], job["steps"]) == (
        secret,
        token,
        ["createSecret", "setSecret", "testSecret", "finishSecret"],
    )
    assert job["handler"] == "fn.handler" and job["credentials"]["SessionToken"]
    assert take(emulator) == []
    # Unfinished: AWS refuses a new rotation and reattempts this one.
    with pytest.raises(botocore.exceptions.ClientError, match="previous rotation isn't complete"):
        sm.rotate_secret(SecretId=secret)
    assert [j["token"] for j in take(emulator)] == [token]


def test_the_stand_in_runs_the_stored_function_and_current_moves(
    aws: Clients, emulator: MotoControlPlane, tmp_path: Path
) -> None:
    fn, secret = deploy(aws)
    sm = aws("secretsmanager")
    token = sm.rotate_secret(SecretId=secret, RotationLambdaARN=fn, RotationRules={"AutomaticallyAfterDays": 30})[
        "VersionId"
    ]
    runtime = LambdaRuntime(emulator.url, REGION, "unused", tmp_path, log=lambda _: None)
    (job,) = take(emulator)
    result = runtime.run(job, {})
    assert result["ok"], result
    assert json.loads(sm.get_secret_value(SecretId=secret)["SecretString"])["password"] == "rotated"
    assert "AWSCURRENT" in sm.describe_secret(SecretId=secret)["VersionIdsToStages"][token]
    # The next rotation is a new one (nothing unfinished).
    sm.rotate_secret(SecretId=secret)
    assert len(take(emulator)) == 1


def test_a_failing_step_stops_the_rotation_and_it_stays_unfinished(
    aws: Clients, emulator: MotoControlPlane, tmp_path: Path
) -> None:
    fn, secret = deploy(aws, "def handler(event, context):\n    raise RuntimeError('db down')\n")
    sm = aws("secretsmanager")
    sm.rotate_secret(SecretId=secret, RotationLambdaARN=fn, RotationRules={"AutomaticallyAfterDays": 30})
    lines: list[str] = []
    result = LambdaRuntime(emulator.url, REGION, "unused", tmp_path, log=lines.append).run(take(emulator)[0], {})
    assert not result["ok"]
    assert any("createSecret failed" in line for line in lines)
    assert in_progress(
        {k: {"version_stages": v} for k, v in sm.describe_secret(SecretId=secret)["VersionIdsToStages"].items()}
    )


def test_a_role_lambda_may_not_assume_gets_no_credentials(aws: Clients, emulator: MotoControlPlane) -> None:
    fn, secret = deploy(aws)
    aws("iam").update_assume_role_policy(
        RoleName="rotation",
        PolicyDocument=json.dumps(
            {**TRUST, "Statement": [{**TRUST["Statement"][0], "Principal": {"Service": "ec2.amazonaws.com"}}]}
        ),
    )
    aws("secretsmanager").rotate_secret(SecretId=secret, RotationLambdaARN=fn)
    (job,) = take(emulator)
    assert "does not let lambda.amazonaws.com" in job["error"] and "credentials" not in job


def test_unpack_refuses_paths_outside_and_the_env_carries_the_function_and_endpoint(tmp_path: Path) -> None:
    import base64

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("../evil.py", "")
    with pytest.raises(ValueError, match="outside"):
        unpack(base64.b64encode(buf.getvalue()).decode(), tmp_path)
    job = {
        "region": REGION,
        "function_arn": "arn:aws:lambda:eu-west-1:1:function:rot",
        "credentials": {"AccessKeyId": "A", "SecretAccessKey": "S", "SessionToken": "T"},
        "environment": {"MASTER_SECRET_ARN": "m", "SECRETS_MANAGER_ENDPOINT": "https://elsewhere"},
        "secret_arn": "s",
        "token": "t",
        "steps": ["testSecret"],
    }
    env = runtime_env(job, "http://127.0.0.1:1", {"db.example": "10.0.0.5"})
    assert env["SECRETS_MANAGER_ENDPOINT"] == "http://127.0.0.1:1"
    assert env["MASTER_SECRET_ARN"] == "m" and env["AWS_SESSION_TOKEN"] == "T"
    assert json.loads(env["GEARLIFT_TWIN_HOSTS"]) == {"db.example": "10.0.0.5"}
    assert events(job) == [{"Step": "testSecret", "SecretId": "s", "ClientRequestToken": "t"}]


def test_trusts_service() -> None:
    assert trusts_service(json.dumps(TRUST), "lambda.amazonaws.com")
    assert not trusts_service(TRUST, "ec2.amazonaws.com")
