"""IAM as AWS evaluates a request: the resource ARN each action acts on, and identity policies.

Pure logic, no I/O; the emulator's authorization patch (gearlift.twin.emulator.iam) feeds it
the request and the principal's policy documents. It follows the IAM user guide:

- "Policy evaluation logic": an explicit Deny in any statement wins; otherwise an Allow that
  matches the action, the resource and every condition allows; otherwise the request is
  implicitly denied.
- "IAM JSON policy elements": Action / NotAction match case-insensitively, Resource /
  NotResource case-sensitively, both with the wildcards ``*`` and ``?``; a condition whose key
  is absent from the request is false, except for the negated operators and ``...IfExists``,
  where it is true, and ``Null``, which tests for absence.
- "Actions, resources, and condition keys": the ARN each action names (a secret, a
  parameter, a KMS key, a log group or stream, an instance). moto evaluates every request
  against the resource ``*``, so a policy scoped to ARNs denied even its own resources.

What the twin does not evaluate (docs/twin-fidelity.md): resource-based policies and KMS key
policies, permissions boundaries, SCPs, session policies, and condition operators other
than the string, ARN, Bool and Null families (an Allow using one does not apply; a Deny
using one does, so the twin errs on the strict side).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from enum import StrEnum
from typing import Any

Resolve = Callable[[str, str], str | None]  # (kind, id or name) -> the ARN, if the emulator knows it


class Decision(StrEnum):
    ALLOW = "allow"
    EXPLICIT_DENY = "explicit-deny"
    IMPLICIT_DENY = "implicit-deny"


def partition(region: str) -> str:
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


def _list(params: Mapping[str, Any], key: str) -> list[str]:
    """A list parameter in either protocol: JSON (``Names: [...]``) or query (``InstanceId.1``...)."""
    value = params.get(key)
    if isinstance(value, list):
        return [str(v) for v in value]
    if isinstance(value, str):
        return [value]
    numbered = sorted(
        ((int(k.rsplit(".", 1)[1]), str(v)) for k, v in params.items() if re.fullmatch(rf"{re.escape(key)}\.\d+", k)),
    )
    return [v for _, v in numbered]


def _parameter_arn(prefix: str, name: str) -> str:
    if name.startswith("arn:"):
        return name
    return f"{prefix}parameter{name}" if name.startswith("/") else f"{prefix}parameter/{name}"


def resource_arns(
    service: str,
    action: str,
    params: Mapping[str, Any],
    region: str,
    account: str,
    resolve: Resolve | None = None,
) -> list[str]:
    """The ARNs ``service:action`` acts on (each must be allowed); ``["*"]`` for actions not mapped.

    ``resolve(kind, id)`` turns a name the request uses into the resource's full ARN where only
    the emulator knows it (a secret's random suffix, the key behind an alias or a ciphertext).
    """
    resolve = resolve or (lambda kind, ident: None)
    base = f"arn:{partition(region)}:{service}:{region}:{account}:"
    if service == "secretsmanager" and params.get("SecretId"):
        secret = str(params["SecretId"])
        if secret.startswith("arn:"):
            return [secret]
        return [resolve("secret", secret) or f"{base}secret:{secret}"]
    if service == "ssm":
        if action in ("GetParameter", "GetParameterHistory", "PutParameter", "DeleteParameter") and params.get("Name"):
            return [_parameter_arn(base, str(params["Name"]))]
        if action in ("GetParameters", "DeleteParameters"):
            return [_parameter_arn(base, n) for n in _list(params, "Names")] or ["*"]
        if action == "GetParametersByPath" and params.get("Path"):
            return [_parameter_arn(base, str(params["Path"]))]
    if service == "kms":
        key = str(params.get("KeyId") or "")
        if not key and action == "Decrypt" and params.get("CiphertextBlob"):
            key = resolve("ciphertext", str(params["CiphertextBlob"])) or ""
        if key:
            if key.startswith("arn:") and ":key/" in key:
                return [key]
            return [resolve("key", key) or f"{base}key/{key}"]
    if service == "logs":
        group = str(params.get("logGroupName") or "")
        stream = str(params.get("logStreamName") or "")
        if group and stream and action in ("PutLogEvents", "CreateLogStream", "DeleteLogStream", "GetLogEvents"):
            return [f"{base}log-group:{group}:log-stream:{stream}"]
        if group:
            return [f"{base}log-group:{group}:*"]
    if service == "ec2" and action in ("TerminateInstances", "StopInstances", "StartInstances", "RebootInstances"):
        return [f"{base}instance/{iid}" for iid in _list(params, "InstanceId")] or ["*"]
    return ["*"]


def condition_context(service: str, action: str, params: Mapping[str, Any], region: str) -> dict[str, list[str]]:
    """The request's condition keys the twin knows (lower-case key -> values)."""
    context = {"aws:requestedregion": [region]}
    if service == "cloudwatch" and action == "PutMetricData" and params.get("Namespace"):
        context["cloudwatch:namespace"] = [str(params["Namespace"])]
    return context


def _glob(pattern: str, value: str, ignore_case: bool) -> bool:
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, re.IGNORECASE | re.DOTALL if ignore_case else re.DOTALL) is not None


def _values(element: Any) -> list[str]:
    if element is None:
        return []
    return [str(v) for v in element] if isinstance(element, list) else [str(element)]


class UnsupportedCondition(Exception):
    """A condition operator the twin cannot evaluate."""


_STRING: dict[str, tuple[Callable[[str, str], bool], bool]] = {
    "StringEquals": (lambda p, v: p == v, False),
    "StringNotEquals": (lambda p, v: p == v, True),
    "StringEqualsIgnoreCase": (lambda p, v: p.lower() == v.lower(), False),
    "StringNotEqualsIgnoreCase": (lambda p, v: p.lower() == v.lower(), True),
    "StringLike": (lambda p, v: _glob(p, v, False), False),
    "StringNotLike": (lambda p, v: _glob(p, v, False), True),
    "ArnEquals": (lambda p, v: _glob(p, v, False), False),
    "ArnLike": (lambda p, v: _glob(p, v, False), False),
    "ArnNotEquals": (lambda p, v: _glob(p, v, False), True),
    "ArnNotLike": (lambda p, v: _glob(p, v, False), True),
    "Bool": (lambda p, v: p.lower() == v.lower(), False),
}


def condition_holds(operator: str, key: str, expected: Any, context: Mapping[str, list[str]]) -> bool:
    """One operator on one key, as IAM evaluates it (missing keys included)."""
    actual = context.get(key.lower())
    if operator == "Null":
        wants_absent = str(_values(expected)[0]).lower() == "true"
        return (actual is None) == wants_absent
    op = operator
    set_op = ""
    if ":" in op:
        set_op, op = op.split(":", 1)
    if_exists = op.endswith("IfExists")
    op = op.removesuffix("IfExists")
    if op not in _STRING or set_op not in ("", "ForAnyValue", "ForAllValues"):
        raise UnsupportedCondition(operator)
    matches, negated = _STRING[op]
    if actual is None:
        return if_exists or negated or set_op == "ForAllValues"
    patterns = _values(expected)

    def one(value: str) -> bool:
        hit = any(matches(p, value) for p in patterns)
        return not hit if negated else hit

    if set_op == "ForAllValues":
        return all(one(v) for v in actual)
    return any(one(v) for v in actual)


def _conditions_hold(statement: Mapping[str, Any], context: Mapping[str, list[str]]) -> bool:
    for operator, block in (statement.get("Condition") or {}).items():
        for key, expected in dict(block).items():
            if not condition_holds(operator, key, expected, context):
                return False
    return True


def _matches(statement: Mapping[str, Any], element: str, value: str, ignore_case: bool) -> bool | None:
    """Whether the statement's element (or its Not- form) covers ``value``; None if it has neither."""
    if element in statement:
        return any(_glob(p, value, ignore_case) for p in _values(statement[element]))
    if f"Not{element}" in statement:
        return not any(_glob(p, value, ignore_case) for p in _values(statement[f"Not{element}"]))
    return None


def statement_applies(
    statement: Mapping[str, Any], action: str, resource: str, context: Mapping[str, list[str]]
) -> bool:
    if not _matches(statement, "Action", action, ignore_case=True):
        return False
    # A resource "*" (an action without resource-level permissions) matches only wildcard statements.
    if not _matches(statement, "Resource", resource, ignore_case=False):
        return False
    try:
        return _conditions_hold(statement, context)
    except UnsupportedCondition:
        return statement.get("Effect") == "Deny"  # strict: an unknown condition never grants


def evaluate(
    documents: Iterable[Mapping[str, Any] | str],
    action: str,
    resource: str,
    context: Mapping[str, list[str]] | None = None,
) -> Decision:
    """Identity-policy evaluation of one action on one resource."""
    context = {k.lower(): v for k, v in (context or {}).items()}
    allowed = False
    for document in documents:
        doc = json.loads(document) if isinstance(document, str) else document
        statements = doc.get("Statement", [])
        for statement in statements if isinstance(statements, list) else [statements]:
            if not statement_applies(statement, action, resource, context):
                continue
            if statement.get("Effect") == "Deny":
                return Decision.EXPLICIT_DENY
            if statement.get("Effect") == "Allow":
                allowed = True
    return Decision.ALLOW if allowed else Decision.IMPLICIT_DENY


def denial_message(principal_arn: str, action: str, resource: str, decision: Decision) -> str:
    """AWS's AccessDenied wording (IAM user guide, "Troubleshooting access denied error messages")."""
    why = (
        "with an explicit deny in an identity-based policy"
        if decision is Decision.EXPLICIT_DENY
        else f"because no identity-based policy allows the {action} action"
    )
    return f"User: {principal_arn} is not authorized to perform: {action} on resource: {resource} {why}"
