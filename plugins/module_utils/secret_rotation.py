# Copyright: gearlift maintainers
# Apache License 2.0 (see galaxy.yml)
"""Pure logic of the app DB secret's rotation function: Secrets Manager's four steps, alternating users.

The rotation function (``files/secret_rotation/lambda_function.py``, packed with this file into the
Lambda's zip by ``gearlift.platform.lambda_zip``) rotates the shop's MySQL login kept in
``gearlift/<name>/app-db`` (JSON: engine, host, port, dbname, username, password). It follows
the protocol Secrets Manager drives for every rotation: ``createSecret``, ``setSecret``,
``testSecret``, ``finishSecret``, each invoked with the secret and a version id (the
``ClientRequestToken``) labelled ``AWSPENDING``; each step may run more than once and must then
do nothing more.

Alternating users: the secret names one of two MySQL logins, ``<app>`` and ``<app>_clone``. A
rotation writes a new password for the login *not* named by ``AWSCURRENT`` (through the
RDS-managed master secret, creating the clone with the same grants on the first rotation) and then
moves ``AWSCURRENT`` to it. The login the hosts use right now keeps its password until the
rotation after next, so open connections and hosts that have not re-fetched the secret yet go on
working: a rotation never breaks the shop.

Nothing in here talks to AWS or to MySQL: Secrets Manager and the database are behind the small
``SecretsApi`` / ``Database`` interfaces (the Lambda's handler gives botocore and PyMySQL
adapters; the unit tests give fakes). This file is copied into the Lambda's zip next to the
handler, so it imports nothing from Ansible.
"""

from __future__ import annotations

import json
import re
from typing import Any, Callable, Dict, List, Optional, Protocol, Sequence, Tuple

CURRENT = "AWSCURRENT"
PENDING = "AWSPENDING"
STEPS = ("createSecret", "setSecret", "testSecret", "finishSecret")
CLONE_SUFFIX = "_clone"
# MySQL 8.0's longest user name (RDS MySQL); the clone's name must fit too.
MYSQL_USER_MAX = 32
REQUIRED_KEYS = ("host", "username", "password")
# The account part of a SHOW GRANTS line: TO `user`@`host` (MySQL 8) or TO 'user'@'host'.
GRANT_TO = re.compile(r"\sTO\s+([`'])(?P<user>(?:[^`'\\]|\\.)+)\1@([`'])(?P<host>[^`']*)\3")
# MariaDB's SHOW GRANTS repeats the password hash on the USAGE line; never copy it.
IDENTIFIED = re.compile(r"\s+IDENTIFIED\s+(?:BY\s+PASSWORD\s+'[^']*'|VIA\s+\S+(?:\s+USING\s+'[^']*')?)", re.I)
ACCOUNT = re.compile(r"^[A-Za-z0-9_$.-]{1,32}$")


class RotationError(Exception):
    """A step cannot complete; Secrets Manager marks the rotation failed and retries it later."""


class NothingToDo(Exception):
    """The version is already AWSCURRENT: the step returns without changing anything."""


Row = Tuple[Any, ...]


class Connection(Protocol):
    def query(self, sql: str, args: Sequence[Any] = ()) -> List[Row]: ...

    def execute(self, sql: str, args: Optional[Sequence[Any]] = None) -> None: ...

    def close(self) -> None: ...


class Database(Protocol):
    def connect(self, login: Dict[str, Any]) -> Optional[Connection]:
        """A connection as login's username/password to login's host/port/dbname, None when the login is refused."""


class SecretsApi(Protocol):
    def describe(self, secret_id: str) -> Dict[str, Any]: ...

    def get_value(self, secret_id: str, stage: str, version_id: Optional[str] = None) -> Optional[Dict[str, Any]]:
        """The JSON secret of that stage (and version), None when no such version has that stage."""

    def put_pending(self, secret_id: str, token: str, value: Dict[str, Any]) -> None: ...

    def random_password(self) -> str: ...

    def move_current(self, secret_id: str, to_version: str, from_version: Optional[str]) -> None: ...


Log = Callable[[str], None]


def _noop(message: str) -> None:
    pass


def parse_secret(text: Optional[str], what: str) -> Dict[str, Any]:
    """The JSON object of a SecretString; RotationError (never echoing the text) otherwise."""
    if not isinstance(text, str):
        raise RotationError(f"{what} has no SecretString")
    try:
        value = json.loads(text)
    except ValueError:
        raise RotationError(f"{what} is not JSON") from None
    if not isinstance(value, dict):
        raise RotationError(f"{what} is not a JSON object")
    return value


def validate_login(value: Dict[str, Any], what: str) -> None:
    missing = [key for key in REQUIRED_KEYS if not value.get(key)]
    if missing:
        raise RotationError(f"{what} lacks {', '.join(missing)}")
    engine = str(value.get("engine", "mysql"))
    if engine not in ("mysql", "mariadb"):
        raise RotationError(f"{what} is for engine {engine!r}; this function rotates MySQL logins")
    if not ACCOUNT.match(str(value["username"])):
        raise RotationError(f"{what} has a malformed username")


def alternate_username(username: str) -> str:
    """The other login of the pair: ``<app>`` <-> ``<app>_clone``."""
    if username.endswith(CLONE_SUFFIX) and len(username) > len(CLONE_SUFFIX):
        return username[: -len(CLONE_SUFFIX)]
    other = username + CLONE_SUFFIX
    if len(other) > MYSQL_USER_MAX:
        raise RotationError(
            f"the clone login of {username!r} would be longer than {MYSQL_USER_MAX} characters "
            f"(keep the app's login at {MYSQL_USER_MAX - len(CLONE_SUFFIX)} characters or fewer)"
        )
    return other


def check_event(event: Dict[str, Any], metadata: Dict[str, Any]) -> Tuple[str, str, str]:
    """(step, secret id, token) of a Secrets Manager invocation, after the protocol's checks.

    Raises NothingToDo when the token's version is already AWSCURRENT (a late retry).
    """
    step = event.get("Step")
    secret_id = event.get("SecretId")
    token = event.get("ClientRequestToken")
    if step not in STEPS:
        raise RotationError(f"unknown step {step!r} (one of {', '.join(STEPS)})")
    if not isinstance(secret_id, str) or not secret_id or not isinstance(token, str) or not token:
        raise RotationError("the event lacks SecretId or ClientRequestToken")
    if not metadata.get("RotationEnabled"):
        raise RotationError(f"rotation is not enabled on {secret_id}")
    versions = metadata.get("VersionIdsToStages") or {}
    if token not in versions:
        raise RotationError(f"version {token} of {secret_id} has no stage for rotation")
    if CURRENT in versions[token]:
        raise NothingToDo(f"version {token} of {secret_id} is already {CURRENT}")
    if PENDING not in versions[token]:
        raise RotationError(f"version {token} of {secret_id} is not {PENDING}")
    return step, secret_id, token


def current_version(metadata: Dict[str, Any]) -> Optional[str]:
    for version, stages in (metadata.get("VersionIdsToStages") or {}).items():
        if CURRENT in stages:
            return str(version)
    return None


def create_secret(api: SecretsApi, secret_id: str, token: str, log: Log = _noop) -> bool:
    """createSecret: the pending version names the other login with a new password. False when it exists."""
    current = api.get_value(secret_id, CURRENT)
    if current is None:
        raise RotationError(f"{secret_id} has no {CURRENT} version")
    validate_login(current, f"{CURRENT} of {secret_id}")
    if api.get_value(secret_id, PENDING, token) is not None:
        log(f"createSecret: {PENDING} version {token} exists already")
        return False
    pending = dict(current)
    pending["username"] = alternate_username(str(current["username"]))
    pending["password"] = api.random_password()
    api.put_pending(secret_id, token, pending)
    log(f"createSecret: {PENDING} version {token} for login {pending['username']}")
    return True


def pending_pair(api: SecretsApi, secret_id: str, token: str) -> Tuple[Dict[str, Any], Dict[str, Any]]:
    """(current, pending) logins, checked to be the two logins of one pair on one database."""
    current = api.get_value(secret_id, CURRENT)
    pending = api.get_value(secret_id, PENDING, token)
    if current is None:
        raise RotationError(f"{secret_id} has no {CURRENT} version")
    if pending is None:
        raise RotationError(f"{secret_id} has no {PENDING} version {token}")
    validate_login(current, f"{CURRENT} of {secret_id}")
    validate_login(pending, f"{PENDING} of {secret_id}")
    if str(pending["username"]) != alternate_username(str(current["username"])):
        raise RotationError(f"the {PENDING} login is not the alternate of the {CURRENT} login")
    for key in ("host", "port", "dbname"):
        if str(pending.get(key, "")) != str(current.get(key, "")):
            raise RotationError(f"the {PENDING} version names another {key} than {CURRENT}; refusing to rotate")
    return current, pending


def clone_grants(rows: Sequence[Row], target_user: str) -> List[str]:
    """The GRANT statements of SHOW GRANTS rows, for target_user (same host); no password hashes copied."""
    out = []
    for row in rows:
        grant = str(row[0])
        match = GRANT_TO.search(grant)
        if not match or not grant.upper().startswith("GRANT "):
            continue  # e.g. a role definition line: nothing to copy
        account = f"`{target_user}`@`{match.group('host')}`"
        stmt = grant[: match.start()] + " TO " + account + grant[match.end() :]
        out.append(IDENTIFIED.sub("", stmt))
    return out


def set_secret(
    api: SecretsApi, db: Database, secret_id: str, token: str, master_secret_id: str, log: Log = _noop
) -> bool:
    """setSecret: the pending login gets its password on the database (created like the current one). False when set."""
    current, pending = pending_pair(api, secret_id, token)
    conn = db.connect(pending)
    if conn is not None:
        conn.close()
        log(f"setSecret: login {pending['username']} already has the {PENDING} password")
        return False
    if not master_secret_id:
        raise RotationError("no master secret (MASTER_SECRET_ARN, or 'masterarn' in the secret)")
    master = api.get_value(master_secret_id, CURRENT)
    if master is None or not master.get("username") or not master.get("password"):
        raise RotationError("the master secret lacks username or password")
    admin = dict(current)
    admin["username"], admin["password"] = master["username"], master["password"]
    conn = db.connect(admin)
    if conn is None:
        raise RotationError(f"the master login was refused by {current['host']}")
    try:
        for stmt, args in set_password_statements(conn, str(current["username"]), str(pending["username"])):
            conn.execute(stmt, args if args else None)
        for stmt, args in password_statements(conn, str(pending["username"]), str(pending["password"])):
            conn.execute(stmt, args)
    finally:
        conn.close()
    log(f"setSecret: login {pending['username']} has the {PENDING} password")
    return True


def set_password_statements(conn: Connection, source: str, target: str) -> List[Tuple[str, Sequence[Any]]]:
    """Create target like source where missing (same hosts, TLS requirement and grants)."""
    accounts = conn.query("SELECT Host, ssl_type FROM mysql.user WHERE User = %s", (source,))
    if not accounts:
        raise RotationError(f"the {CURRENT} login {source!r} does not exist on the database")
    existing = {str(row[0]) for row in conn.query("SELECT Host FROM mysql.user WHERE User = %s", (target,))}
    out: List[Tuple[str, Sequence[Any]]] = []
    for host, ssl_type in accounts:
        if str(host) not in existing:
            # A throwaway password: the pending one is set right after, under the same master login.
            out.append(("CREATE USER %s@%s IDENTIFIED BY %s", (target, str(host), _placeholder())))
        if str(ssl_type or "").upper() in ("ANY", "X509", "SPECIFIED"):
            out.append(("ALTER USER %s@%s REQUIRE SSL", (target, str(host))))
        # Grants follow the current login's every rotation (GRANT only adds).
        grant_rows = conn.query("SHOW GRANTS FOR %s@%s", (source, str(host)))
        out.extend((stmt, ()) for stmt in clone_grants(grant_rows, target))
    return out


def password_statements(conn: Connection, user: str, password: str) -> List[Tuple[str, Sequence[Any]]]:
    hosts = [str(row[0]) for row in conn.query("SELECT Host FROM mysql.user WHERE User = %s", (user,))]
    return [("ALTER USER %s@%s IDENTIFIED BY %s", (user, host, password)) for host in hosts]


def _placeholder() -> str:
    import secrets

    return secrets.token_urlsafe(24)


def test_secret(api: SecretsApi, db: Database, secret_id: str, token: str, log: Log = _noop) -> None:
    """testSecret: the pending login works (log in, run a query)."""
    pending = pending_pair(api, secret_id, token)[1]
    conn = db.connect(pending)
    if conn is None:
        raise RotationError(f"the {PENDING} login {pending['username']} was refused")
    try:
        conn.query("SELECT NOW()")
    finally:
        conn.close()
    log(f"testSecret: login {pending['username']} works")


# pytest would collect a module-level test_* function of an imported module.
test_secret.__test__ = False  # type: ignore[attr-defined]


def finish_secret(api: SecretsApi, secret_id: str, token: str, log: Log = _noop) -> bool:
    """finishSecret: AWSCURRENT moves to the pending version. False when it is there already."""
    metadata = api.describe(secret_id)
    current = current_version(metadata)
    if current == token:
        log(f"finishSecret: version {token} is already {CURRENT}")
        return False
    api.move_current(secret_id, token, current)
    log(f"finishSecret: version {token} is {CURRENT} now")
    return True


def rotate(event: Dict[str, Any], api: SecretsApi, db: Database, master_secret_id: str = "", log: Log = _noop) -> str:
    """One invocation: the checked event's step. Returns what it did (for the function's log)."""
    secret_id = str(event.get("SecretId") or "")
    metadata = api.describe(secret_id) if secret_id else {}
    try:
        step, secret_id, token = check_event(event, metadata)
    except NothingToDo as done:
        log(str(done))
        return "nothing to do"
    if step == "createSecret":
        return "created" if create_secret(api, secret_id, token, log) else "unchanged"
    if step == "setSecret":
        master = master_secret_id or str((api.get_value(secret_id, CURRENT) or {}).get("masterarn") or "")
        return "set" if set_secret(api, db, secret_id, token, master, log) else "unchanged"
    if step == "testSecret":
        test_secret(api, db, secret_id, token, log)
        return "tested"
    return "finished" if finish_secret(api, secret_id, token, log) else "unchanged"
