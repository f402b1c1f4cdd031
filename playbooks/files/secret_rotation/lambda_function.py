"""gearlift: Secrets Manager rotation function of the shop's MySQL login (alternating users).

Packed by playbooks/data.yml (gearlift.platform.lambda_zip) with ``secret_rotation.py`` (the
collection's plugins/module_utils/secret_rotation.py: the four steps' logic), PyMySQL (pure
Python, vendored from the controller's Python) and ``rds-ca.pem`` (the database's CA bundle).
Runs on the AWS Lambda Python runtime, which provides botocore.

Environment (set by the playbook):

- ``MASTER_SECRET_ARN``: the RDS-managed master secret; its login sets the alternate user's
  password (else the app secret's ``masterarn`` key);
- ``SECRETS_MANAGER_ENDPOINT``: Secrets Manager's endpoint (empty: the regional default, through
  the VPC's interface endpoint with private DNS);
- ``DB_TLS_CA``: CA bundle of the database's certificate (default: ``rds-ca.pem`` beside this
  file). TLS is always required and the server's name verified.

Never logs a password.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import botocore.session
from botocore.exceptions import ClientError
from secret_rotation import CURRENT, PENDING, Row, parse_secret, rotate

LOG = logging.getLogger()
LOG.setLevel(logging.INFO)
HERE = Path(__file__).resolve().parent
# A login that cannot log in: 1045 (MySQL for any refused login; MariaDB for a wrong password) and
# 1698 (MariaDB for a user that does not exist, e.g. the alternate login before its first rotation;
# MySQL for an auth_socket login). Either means: set the password with the master login.
ER_ACCESS_DENIED = frozenset({1045, 1698})
# Characters a password may hold: no quote, backslash, '$' or '%' (env files, JDBC URLs, shells).
EXCLUDE = "\"'\\/@`$%:;,{}[]<>|&*!?#~^()="


class BotocoreSecrets:
    """secret_rotation.SecretsApi on botocore (the Lambda runtime's SDK)."""

    def __init__(self) -> None:
        endpoint = os.environ.get("SECRETS_MANAGER_ENDPOINT") or None
        self.client = botocore.session.get_session().create_client("secretsmanager", endpoint_url=endpoint)

    def describe(self, secret_id: str) -> dict[str, Any]:
        answer: dict[str, Any] = self.client.describe_secret(SecretId=secret_id)
        return answer

    def get_value(self, secret_id: str, stage: str, version_id: str | None = None) -> dict[str, Any] | None:
        kwargs: dict[str, Any] = {"SecretId": secret_id, "VersionStage": stage}
        if version_id:
            kwargs["VersionId"] = version_id
        try:
            answer = self.client.get_secret_value(**kwargs)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
                return None
            raise
        return parse_secret(answer.get("SecretString"), f"{stage} of {secret_id}")

    def put_pending(self, secret_id: str, token: str, value: dict[str, Any]) -> None:
        import json

        self.client.put_secret_value(
            SecretId=secret_id, ClientRequestToken=token, SecretString=json.dumps(value), VersionStages=[PENDING]
        )

    def random_password(self) -> str:
        answer = self.client.get_random_password(PasswordLength=32, ExcludeCharacters=EXCLUDE)
        return str(answer["RandomPassword"])

    def move_current(self, secret_id: str, to_version: str, from_version: str | None) -> None:
        kwargs: dict[str, Any] = {"SecretId": secret_id, "VersionStage": CURRENT, "MoveToVersionId": to_version}
        if from_version:
            kwargs["RemoveFromVersionId"] = from_version
        self.client.update_secret_version_stage(**kwargs)


class PyMySqlConnection:
    def __init__(self, conn: Any) -> None:
        self.conn = conn

    def query(self, sql: str, args: Any = ()) -> list[Row]:
        with self.conn.cursor() as cur:
            cur.execute(sql, tuple(args) or None)
            return list(cur.fetchall())

    def execute(self, sql: str, args: Any = None) -> None:
        with self.conn.cursor() as cur:
            cur.execute(sql, tuple(args) if args else None)

    def close(self) -> None:
        self.conn.close()


class PyMySqlDatabase:
    """secret_rotation.Database on PyMySQL, TLS required, the server's certificate and name verified."""

    def __init__(self, ca: str) -> None:
        self.ca = ca

    def connect(self, login: dict[str, Any]) -> PyMySqlConnection | None:
        import pymysql

        try:
            conn = pymysql.connect(
                host=str(login["host"]),
                port=int(login.get("port") or 3306),
                user=str(login["username"]),
                password=str(login["password"]),
                database=str(login.get("dbname") or "") or None,
                connect_timeout=5,
                read_timeout=15,
                write_timeout=15,
                autocommit=True,
                ssl_ca=self.ca,
                ssl_verify_cert=True,
                ssl_verify_identity=True,
            )
        except pymysql.err.OperationalError as exc:
            if exc.args and exc.args[0] in ER_ACCESS_DENIED:
                return None
            raise
        return PyMySqlConnection(conn)


def tls_ca() -> str:
    configured = os.environ.get("DB_TLS_CA") or "rds-ca.pem"
    path = Path(configured) if Path(configured).is_absolute() else HERE / configured
    if not path.is_file():
        raise RuntimeError(f"the database CA bundle {path} is missing from the function's package")
    return str(path)


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, str]:
    step = str(event.get("Step"))
    done = rotate(
        event,
        BotocoreSecrets(),
        PyMySqlDatabase(tls_ca()),
        master_secret_id=os.environ.get("MASTER_SECRET_ARN", ""),
        log=LOG.info,
    )
    LOG.info("%s of %s: %s", step, event.get("SecretId"), done)
    return {"step": step, "result": done}
