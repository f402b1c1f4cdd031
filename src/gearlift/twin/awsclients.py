"""boto3 clients for the twin's own use, pointed at its control plane on loopback."""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config

DUMMY_KEY_ID = "testing"
DUMMY_SECRET = "testing"  # noqa: S105 - moto's documented dummy credential, not a secret


class Clients:
    def __init__(self, endpoint: str, region: str) -> None:
        self.endpoint = endpoint
        self.region = region
        self._session = boto3.session.Session(
            aws_access_key_id=DUMMY_KEY_ID,
            aws_secret_access_key=DUMMY_SECRET,
            region_name=region,
        )
        self._cache: dict[str, Any] = {}

    def __call__(self, service: str) -> Any:
        if service not in self._cache:
            self._cache[service] = self._session.client(
                service,  # type: ignore[call-overload]
                endpoint_url=self.endpoint,
                config=Config(retries={"max_attempts": 3, "mode": "standard"}),
            )
        return self._cache[service]


def paginate(client: Any, op: str, key: str, **kwargs: Any) -> list[dict[str, Any]]:
    """Every item of a paginated AWS list call."""
    out: list[dict[str, Any]] = []
    for page in client.get_paginator(op).paginate(**kwargs):
        out.extend(page.get(key, []))
    return out
