# Copyright: gearlift maintainers
# Apache License 2.0 (see galaxy.yml)
"""Pure logic of gearlift.platform.s3_object_lock and vpc_endpoint_policy: no AWS calls here.

* Object Lock: the default retention rule a bucket should carry, compared with what
  ``GetObjectLockConfiguration`` returns. AWS lets Object Lock be switched on for an existing
  versioned bucket (``PutObjectLockConfiguration`` with ``ObjectLockEnabled``) but never off, and a
  default retention can be changed but not shortened below what already-locked objects carry (those
  keep their own retain-until dates); the module refuses to remove the default rule.
* Endpoint policies: two policy documents are the same when they grant the same thing, whatever
  the order of statements, of list values, or a one-element list written as a scalar.
"""

from __future__ import annotations

import json
from typing import Any

LOCK_MODES = ("GOVERNANCE", "COMPLIANCE")


class ControlError(ValueError):
    """Bad input, reported before any AWS call."""


def lock_configuration(mode: str, days: int) -> dict[str, Any]:
    """The ObjectLockConfiguration to put: enabled, with a default retention of ``days`` in ``mode``."""
    mode = str(mode).upper()
    if mode not in LOCK_MODES:
        raise ControlError(f"mode must be one of {', '.join(LOCK_MODES)}, got {mode!r}")
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= 36500:
        raise ControlError(f"days must be an integer from 1 to 36500, got {days!r}")
    return {"ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": {"Mode": mode, "Days": days}}}


def lock_differs(current: dict[str, Any] | None, desired: dict[str, Any]) -> bool:
    """True when the bucket's ObjectLockConfiguration (None: Object Lock off) is not ``desired``."""
    if not current or current.get("ObjectLockEnabled") != "Enabled":
        return True
    retention = (current.get("Rule") or {}).get("DefaultRetention") or {}
    want = desired["Rule"]["DefaultRetention"]
    # a retention in years is another rule; "Years": 0 next to the days (some emulators) is not
    same = retention.get("Mode") == want["Mode"] and retention.get("Days") == want["Days"]
    return not same or bool(retention.get("Years"))


def _canonical(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _canonical(v) for k, v in sorted(value.items()) if k != "Sid" or v}
    if isinstance(value, list):
        items = [_canonical(v) for v in value]
        if len(items) == 1:
            return items[0]
        return sorted(items, key=lambda v: json.dumps(v, sort_keys=True))
    return value


def canonical_policy(document: str | dict[str, Any]) -> Any:
    """A policy in one spelling: statements and list values sorted, one-element lists as scalars."""
    doc = json.loads(document) if isinstance(document, str) else document
    if not isinstance(doc, dict) or "Statement" not in doc:
        raise ControlError("a policy document is a JSON object with a Statement")
    statements = doc["Statement"] if isinstance(doc["Statement"], list) else [doc["Statement"]]
    return {"Version": doc.get("Version", "2008-10-17"), "Statement": _canonical(statements)}


def policy_differs(current: str | dict[str, Any] | None, desired: str | dict[str, Any]) -> bool:
    """True when the endpoint's policy (None or empty: AWS's full-access default) grants other than ``desired``."""
    if not current:
        return True
    return canonical_policy(current) != canonical_policy(desired)
