"""IAM inside the emulator: instance-role credentials, and every host request authenticated.

EC2 hands an instance temporary credentials of its instance profile's role through IMDS
("IAM roles for Amazon EC2", EC2 user guide): the role's trust policy must let
``ec2.amazonaws.com`` assume it, the session is named after the instance id, and the
credentials expire (6 hours here; EC2 renews them well before). ``role_credentials`` mints
them through moto's STS backend for the data plane's IMDS server (gearlift.twin.channel).

Who is authenticated:
- a request from the controller (loopback, or the emulator's own listen addresses, without
  a session token) is the account's administrator, as the operator's own credentials are
  against a real account; the playbooks keep working unchanged;
- any other request (the twin's hosts) is authenticated as AWS does: signed with a key moto
  issued (an STS session's, or an IAM user's), else ``InvalidClientTokenId`` (EC2:
  ``AuthFailure``); then authorized by gearlift.twin.iampolicy against the principal's
  identity policies, on the ARN each action names, else AWS's access-denied error of the
  service's protocol (``AccessDeniedException``; EC2: ``UnauthorizedOperation``).
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlparse

from gearlift.twin import iampolicy

# Set by the server for the request being served (requests are serialized).
PEER: dict[str, str] = {"addr": ""}
CONTROLLER_ADDRESSES: set[str] = {"127.0.0.1", "::1"}
SESSION_SECONDS = 6 * 3600
EC2_PRINCIPAL = "ec2.amazonaws.com"


def is_controller(peer: str) -> bool:
    """No peer (an in-process test) or a controller address: the operator's own requests."""
    return not peer or peer in CONTROLLER_ADDRESSES


def trusts_ec2(trust_policy: Any) -> bool:
    """Does the role's trust policy let EC2 assume it (sts:AssumeRole for ec2.amazonaws.com)?"""
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
        if EC2_PRINCIPAL in services and any(a.lower() in ("sts:assumerole", "sts:*", "*") for a in actions):
            return True
    return False


def role_credentials(account: str, region: str, instance_id: str) -> dict[str, Any]:
    """Temporary credentials of the instance's profile role (IMDS's iam/security-credentials/<role>)."""
    from moto.ec2.models import ec2_backends
    from moto.iam.models import iam_backends
    from moto.sts.models import sts_backends

    part = iampolicy.partition(region)
    ec2 = ec2_backends[account][region]
    association = ec2.iam_instance_profile_associations.get(instance_id)
    if association is None:
        return {"instance_id": instance_id, "role": None}
    profile = association.iam_instance_profile
    roles = list(getattr(profile, "roles", []) or [])
    info = {"InstanceProfileArn": profile.arn, "InstanceProfileId": profile.id}
    if not roles:
        return {"instance_id": instance_id, "role": None, "info": info, "error": "the instance profile has no role"}
    role = iam_backends[account][part].get_role(roles[0].name)
    if not trusts_ec2(role.assume_role_policy_document):
        return {
            "instance_id": instance_id,
            "role": role.name,
            "info": info,
            "error": f"the trust policy of role {role.name} does not let {EC2_PRINCIPAL} assume it",
        }
    session = sts_backends[account][part].assume_role(
        region_name=region,
        role_session_name=instance_id,
        role_arn=role.arn,
        policy="",
        duration=SESSION_SECONDS,
        external_id="",
    )
    now = datetime.now(UTC)
    return {
        "instance_id": instance_id,
        "role": role.name,
        "info": info,
        "credentials": {
            "Code": "Success",
            "LastUpdated": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "Type": "AWS-HMAC",
            "AccessKeyId": session.access_key_id,
            "SecretAccessKey": session.secret_access_key,
            "Token": session.session_token,
            "Expiration": session.expiration.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        },
    }


def _params(response: Any) -> dict[str, Any]:
    """The request's parameters in either protocol (JSON body, or the query string)."""
    if response.headers.get("X-Amz-Target"):
        try:
            body = json.loads(response.body or "{}")
        except ValueError:
            return {}
        return body if isinstance(body, dict) else {}
    return {k: (v[0] if isinstance(v, list) and v else v) for k, v in dict(response.querystring or {}).items()}


def _resolver(account: str, region: str) -> iampolicy.Resolve:
    def resolve(kind: str, ident: str) -> str | None:
        try:
            if kind == "secret":
                from moto.secretsmanager.models import secretsmanager_backends

                secret = secretsmanager_backends[account][region].secrets.get(ident)
                return str(secret.arn) if secret is not None else None
            from moto.kms.models import kms_backends

            kms = kms_backends[account][region]
            if kind == "ciphertext":
                from moto.kms.utils import _deserialize_ciphertext_blob

                key_id = _deserialize_ciphertext_blob(base64.b64decode(ident)).key_id
            else:
                key_id = kms.any_id_to_key_id(ident)
            key = kms.keys.get(key_id)
            return str(key.arn) if key is not None else None
        except Exception:  # an unknown name: the request's own error comes from the service
            return None

    return resolve


def _denied(service: str, json_protocol: bool, message: str) -> Exception:
    from moto.core.exceptions import JsonRESTError, _RESTError

    if service == "ec2":
        error = _RESTError("UnauthorizedOperation", f"You are not authorized to perform this operation. {message}")
        error.code = 403
        return error
    if json_protocol:
        return JsonRESTError("AccessDeniedException", message)
    error = _RESTError("AccessDenied", message)
    error.code = 403
    return error


# The JSON-protocol services name the authentication errors differently (e.g. Secrets Manager's
# "Common errors": UnrecognizedClientException, InvalidSignatureException).
_JSON_CODES = {
    "InvalidClientTokenId": "UnrecognizedClientException",
    "SignatureDoesNotMatch": "InvalidSignatureException",
}


def _as_protocol(exc: Exception, json_protocol: bool) -> Exception:
    from moto.core.exceptions import JsonRESTError

    code = getattr(exc, "error_type", "")
    if json_protocol and code in _JSON_CODES:
        return JsonRESTError(_JSON_CODES[code], str(getattr(exc, "message", "")))
    return exc


def _unauthenticated(service: str) -> Exception:
    from moto.core.exceptions import AuthFailureError, _RESTError

    if service == "ec2":
        return AuthFailureError()
    error = _RESTError("MissingAuthenticationToken", "Request is missing Authentication Token")
    error.code = 403
    return error


def authorize(self: Any, iam_request_cls: type, resource: str = "*") -> None:
    """moto's ActionAuthenticatorMixin._authenticate_and_authorize_action, as AWS authorizes."""
    from moto.core.authorization import ActionAuthenticatorMixin
    from moto.iam.access_control import IAMRequest

    if is_controller(PEER["addr"]):
        return
    headers = self.headers
    if headers.get("X-Amz-Target") in ActionAuthenticatorMixin.PUBLIC_OPERATIONS:
        return
    service = getattr(self, "service_name", "") or ""
    if not headers.get("Authorization"):
        raise _unauthenticated(service)
    parsed = urlparse(self.uri)
    json_protocol = bool(headers.get("X-Amz-Target"))
    try:
        request = iam_request_cls(
            account_id=self.current_account,
            method=self.method,
            path=parsed.path + (f"?{parsed.query}" if parsed.query else ""),
            data=self.data,
            body=self.raw_body,
            headers=headers,
            action=self._get_action(),
        )
        request.check_signature()
    except Exception as exc:
        raise _as_protocol(exc, json_protocol) from None
    full_action: str = request._action
    if full_action == "sts:GetCallerIdentity":
        return  # always allowed (STS API reference)
    service, _, action = full_action.partition(":")
    region = request._region
    params = _params(self)
    if iam_request_cls is IAMRequest and resource == "*":
        resources = iampolicy.resource_arns(
            service, action, params, region, self.current_account, _resolver(self.current_account, region)
        )
    else:
        resources = [resource]
    documents = [_document(p) for p in request._access_key.collect_policies()]
    context = iampolicy.condition_context(service, action, params, region)
    for arn in resources:
        decision = iampolicy.evaluate(documents, full_action, arn, context)
        if decision is not iampolicy.Decision.ALLOW:
            message = iampolicy.denial_message(request._access_key.arn, full_action, arn, decision)
            raise _denied(service, json_protocol, message)


def _document(policy: Any) -> dict[str, Any]:
    """A policy as moto keeps it (managed Policy object, inline text or dict) as a JSON document."""
    versions = getattr(policy, "versions", None)
    if versions is not None:
        text = next(v.document for v in versions if v.is_default)
    elif isinstance(policy, str):
        text = policy
    else:
        text = policy["policy_document"]
    doc = json.loads(text) if isinstance(text, str) else text
    return dict(doc)


def install(listen_addresses: list[str]) -> None:
    """Authenticate every request that is not the controller's (see the module's docstring)."""
    from moto.core.authorization import ActionAuthenticatorMixin

    CONTROLLER_ADDRESSES.update(listen_addresses)
    setattr(ActionAuthenticatorMixin, "_authenticate_and_authorize_action", authorize)  # noqa: B010
