"""Secrets Manager rotation in the emulator: rotations queued for the data plane's Lambda stand-in.

AWS's RotateSecret with a rotation function labels a new version id ``AWSPENDING`` (no value
yet) and then invokes the function asynchronously, once per step (``createSecret``,
``setSecret``, ``testSecret``, ``finishSecret``); the call itself returns at once. moto invokes
the function in-process, in the same request, and its invoke needs docker (absent here); with
``RotateImmediately`` it then moves ``AWSCURRENT`` to the new, empty version whatever the
function did, which leaves the secret without a value. Here:

- RotateSecret keeps moto's checks and bookkeeping (the function must exist, the rules, the
  schedule) but not its invoke; the new version is labelled ``AWSPENDING`` with no value, and the
  rotation (secret, version id, function, steps) is queued;
- a secret whose ``AWSPENDING`` version is not ``AWSCURRENT`` has a rotation in progress:
  RotateSecret answers AWS's ``InvalidRequestException`` and that rotation is reattempted;
- UpdateSecretVersionStage moving AWSCURRENT makes that version the one GetSecretValue answers
  without a version (moto moves only the label);
- the schedule: a secret whose ``NextRotationDate`` passed is rotated as if RotateSecret had
  been called (Secrets Manager's rotation window is not modelled: at once);
- ``take_rotations`` (the data plane's ``rotations`` report) hands the queue out with what the
  stand-in needs to run the function: its configuration, its code (the stored zip) and
  temporary credentials of its execution role, whose trust policy must let
  ``lambda.amazonaws.com`` assume it (as the Lambda service does).

The data plane (gearlift.twin.dataplane.lambdas) runs the steps and reports nothing back: the
function's own calls (PutSecretValue, UpdateSecretVersionStage) are the outcome, as on AWS.
"""

from __future__ import annotations

import base64
import json
import time
from dataclasses import asdict, dataclass
from typing import Any

from gearlift.twin import iampolicy

LAMBDA_PRINCIPAL = "lambda.amazonaws.com"
STEPS = ["createSecret", "setSecret", "testSecret", "finishSecret"]
SESSION_SECONDS = 3600


@dataclass
class Rotation:
    account: str
    region: str
    secret_arn: str
    token: str
    function_arn: str
    steps: list[str]


QUEUE: list[Rotation] = []
# Set while moto's rotate_secret runs: its in-process Lambda invoke is skipped.
_DEFERRING: dict[str, bool] = {"on": False}


def trusts_service(trust_policy: Any, service: str) -> bool:
    """Does the role's trust policy let ``service`` assume it (sts:AssumeRole)?"""
    doc = json.loads(trust_policy) if isinstance(trust_policy, str) else dict(trust_policy or {})
    statements = doc.get("Statement", [])
    for statement in statements if isinstance(statements, list) else [statements]:
        if statement.get("Effect") != "Allow":
            continue
        actions = statement.get("Action", [])
        actions = actions if isinstance(actions, list) else [actions]
        principal = statement.get("Principal")
        services = principal.get("Service", []) if isinstance(principal, dict) else []
        services = services if isinstance(services, list) else [services]
        if service in services and any(str(a).lower() in ("sts:assumerole", "sts:*", "*") for a in actions):
            return True
    return False


def in_progress(versions: dict[str, dict[str, Any]]) -> str | None:
    """The version id of an unfinished rotation (AWSPENDING on a version that is not AWSCURRENT)."""
    for version_id, version in versions.items():
        stages = version.get("version_stages", [])
        if "AWSPENDING" in stages and "AWSCURRENT" not in stages:
            return str(version_id)
    return None


def install() -> None:
    """Patch moto's RotateSecret and its Lambda invoke (called once by the emulator's fidelity patches)."""
    from moto.awslambda.models import LambdaBackend
    from moto.secretsmanager import models
    from moto.secretsmanager.exceptions import InvalidRequestException

    rotate = models.SecretsManagerBackend.rotate_secret
    invoke = LambdaBackend.invoke

    def invoke_unless_deferred(self: Any, *args: Any, **kwargs: Any) -> Any:
        if _DEFERRING["on"]:
            return b""
        return invoke(self, *args, **kwargs)

    def rotate_as_aws(
        self: Any,
        secret_id: str,
        client_request_token: str | None = None,
        rotation_lambda_arn: str | None = None,
        rotation_rules: dict[str, Any] | None = None,
        rotate_immediately: bool = True,
    ) -> Any:
        secret = self.secrets.get(secret_id) if self._is_valid_identifier(secret_id) else None
        function = rotation_lambda_arn or (getattr(secret, "rotation_lambda_arn", "") if secret else "")
        if secret is None or not function:
            return rotate(
                self, secret_id, client_request_token, rotation_lambda_arn, rotation_rules, rotate_immediately
            )
        unfinished = in_progress(secret.versions)
        if unfinished:
            queue(Rotation(self.account_id, self.region_name, secret.arn, unfinished, function, list(STEPS)))
            raise InvalidRequestException("A previous rotation isn't complete. That rotation will be reattempted.")
        # A finished rotation leaves AWSPENDING beside AWSCURRENT; moto takes that for one in progress.
        for version in secret.versions.values():
            stages = version.get("version_stages", [])
            if "AWSPENDING" in stages and "AWSCURRENT" in stages:
                stages.remove("AWSPENDING")
        before = set(secret.versions)
        _DEFERRING["on"] = True
        try:
            # rotate_immediately=False: moto neither moves AWSCURRENT nor runs more than testSecret (skipped).
            answer = rotate(self, secret_id, client_request_token, function, rotation_rules, False)
        finally:
            _DEFERRING["on"] = False
        token = next((v for v in secret.versions if v not in before), None) or in_progress(secret.versions)
        if token:
            # AWS's AWSPENDING version has no value until the function's createSecret puts one.
            secret.versions[token].pop("secret_string", None)
            secret.versions[token].pop("secret_binary", None)
            queue(
                Rotation(
                    self.account_id,
                    self.region_name,
                    secret.arn,
                    token,
                    function,
                    list(STEPS) if rotate_immediately else ["testSecret"],
                )
            )
        if secret.auto_rotate_after_days:
            secret.next_rotation_date = int(time.time()) + int(secret.auto_rotate_after_days) * 86400
        # AWS answers with the new (pending) version's id; moto with the current one.
        return secret.to_short_dict(version_id=token) if token else answer

    move = models.SecretsManagerBackend.update_secret_version_stage

    def move_current_as_aws(
        self: Any,
        secret_id: str,
        version_stage: str,
        remove_from_version_id: str | None = None,
        move_to_version_id: str | None = None,
    ) -> Any:
        # moto moves the label but GetSecretValue without a version keeps answering the old value.
        answer = move(self, secret_id, version_stage, remove_from_version_id, move_to_version_id)  # type: ignore[arg-type]
        if version_stage == "AWSCURRENT" and move_to_version_id:
            secret = self.secrets[secret_id]
            version = secret.versions[move_to_version_id]
            secret.set_default_version_id(move_to_version_id)
            secret.secret_string = version.get("secret_string")
            secret.secret_binary = version.get("secret_binary")
        return answer

    setattr(models.SecretsManagerBackend, "update_secret_version_stage", move_current_as_aws)  # noqa: B010
    setattr(LambdaBackend, "invoke", invoke_unless_deferred)  # noqa: B010
    setattr(models.SecretsManagerBackend, "rotate_secret", rotate_as_aws)  # noqa: B010


def queue(rotation: Rotation) -> None:
    if not any(r.secret_arn == rotation.secret_arn and r.token == rotation.token for r in QUEUE):
        QUEUE.append(rotation)


def start_due(account: str, region: str, now: float | None = None) -> int:
    """Rotate the secrets whose NextRotationDate passed (the schedule); how many were started."""
    from moto.secretsmanager.models import secretsmanager_backends

    backend = secretsmanager_backends[account][region]
    moment = time.time() if now is None else now
    started = 0
    secret: Any
    for secret in list(backend.secrets.values()):
        due = getattr(secret, "next_rotation_date", None)
        if not getattr(secret, "rotation_enabled", False) or not getattr(secret, "rotation_lambda_arn", ""):
            continue
        if due is None or due > moment or secret.is_deleted():
            continue
        try:
            backend.rotate_secret(secret.arn)
        except Exception:  # an unfinished rotation: reattempted through the queue
            secret.next_rotation_date = int(moment) + int(secret.auto_rotate_after_days or 1) * 86400
            continue
        started += 1
    return started


def take_rotations(account: str, region: str) -> dict[str, Any]:
    """The queued rotations of (account, region), each with the function's configuration, code and role credentials."""
    from moto.awslambda.utils import get_backend
    from moto.iam.models import iam_backends
    from moto.sts.models import sts_backends

    start_due(account, region)
    mine = [r for r in QUEUE if r.account == account and r.region == region]
    for r in mine:
        QUEUE.remove(r)
    part = iampolicy.partition(region)
    jobs = []
    for r in mine:
        job: dict[str, Any] = asdict(r)
        try:
            fn = get_backend(account, region).get_function(r.function_arn)
        except Exception as exc:
            job["error"] = f"function {r.function_arn} not found ({type(exc).__name__})"
            jobs.append(job)
            continue
        job["handler"] = fn.handler
        job["runtime"] = fn.run_time
        job["timeout"] = int(fn.timeout or 3)
        job["environment"] = dict(fn.environment_vars or {})
        job["code_zip_b64"] = base64.b64encode(fn.code_bytes or b"").decode()
        job["code_sha256"] = fn.code_sha_256
        role = iam_backends[account][part].get_role_by_arn(fn.role)
        if not trusts_service(role.assume_role_policy_document, LAMBDA_PRINCIPAL):
            job["error"] = f"the trust policy of role {role.name} does not let {LAMBDA_PRINCIPAL} assume it"
        else:
            session = sts_backends[account][part].assume_role(
                region_name=region,
                role_session_name=fn.function_name,
                role_arn=role.arn,
                policy="",
                duration=SESSION_SECONDS,
                external_id="",
            )
            job["credentials"] = {
                "AccessKeyId": session.access_key_id,
                "SecretAccessKey": session.secret_access_key,
                "SessionToken": session.session_token,
            }
        jobs.append(job)
    return {"rotations": jobs}
