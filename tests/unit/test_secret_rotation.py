"""The app secret's rotation function (plugins/module_utils/secret_rotation.py): four steps, alternating users.

Secrets Manager and MySQL are fakes that keep the state the steps change (versions and their
stages; logins with hosts, passwords, TLS requirement and grants), so each step is run twice to
show it is idempotent, and the refusals are checked before anything changes.
"""

from __future__ import annotations

import copy
import re
import uuid
from typing import Any

import pytest
from ansible_collections.gearlift.platform.plugins.module_utils import secret_rotation as sr

SECRET = "gearlift/shop/app-db"
MASTER = "rds!db-1234"
APP = {
    "engine": "mysql",
    "host": "db.example",
    "port": 3306,
    "dbname": "shop",
    "username": "shop_app",
    "password": "a" * 32,
}


class FakeSecrets:
    def __init__(self, value: dict[str, Any], enabled: bool = True) -> None:
        self.versions: dict[str, dict[str, Any]] = {"v1": {"value": dict(value), "stages": ["AWSCURRENT"]}}
        self.enabled = enabled
        self.master = {"username": "admin", "password": "m" * 32}
        self.n = 0
        self.calls: list[str] = []

    def start(self) -> str:
        """What RotateSecret does before invoking the function: a token labelled AWSPENDING (no value yet)."""
        token = str(uuid.uuid4())
        for v in self.versions.values():
            if "AWSPENDING" in v["stages"]:
                v["stages"].remove("AWSPENDING")
        self.versions[token] = {"value": None, "stages": ["AWSPENDING"]}
        return token

    def describe(self, secret_id: str) -> dict[str, Any]:
        return {
            "RotationEnabled": self.enabled,
            "VersionIdsToStages": {k: list(v["stages"]) for k, v in self.versions.items() if v["stages"]},
        }

    def get_value(self, secret_id: str, stage: str, version_id: str | None = None) -> dict[str, Any] | None:
        if secret_id == MASTER:
            return dict(self.master)
        for vid, v in self.versions.items():
            if stage in v["stages"] and (version_id is None or vid == version_id) and v["value"] is not None:
                return copy.deepcopy(v["value"])
        return None

    def put_pending(self, secret_id: str, token: str, value: dict[str, Any]) -> None:
        self.calls.append("put")
        self.versions.setdefault(token, {"stages": ["AWSPENDING"]})["value"] = dict(value)

    def random_password(self) -> str:
        self.n += 1
        return f"new-password-{self.n}".ljust(32, "x")

    def move_current(self, secret_id: str, to_version: str, from_version: str | None) -> None:
        self.calls.append("move")
        for v in self.versions.values():
            if "AWSPREVIOUS" in v["stages"]:
                v["stages"].remove("AWSPREVIOUS")
        if from_version:
            self.versions[from_version]["stages"] = ["AWSPREVIOUS"]
        self.versions[to_version]["stages"].append("AWSCURRENT")

    def current(self) -> dict[str, Any]:
        value = self.get_value(SECRET, "AWSCURRENT")
        assert value is not None
        return value


class FakeMySQL:
    """Logins {user: {host: {"password", "ssl_type", "grants"}}}; admin may change them."""

    def __init__(self) -> None:
        self.users: dict[str, dict[str, dict[str, Any]]] = {
            "admin": {"%": {"password": "m" * 32, "ssl_type": "", "grants": []}},
            "shop_app": {
                "%": {
                    "password": "a" * 32,
                    "ssl_type": "ANY",
                    "grants": [
                        "GRANT USAGE ON *.* TO `shop_app`@`%`",
                        "GRANT SELECT, INSERT, UPDATE, DELETE ON `shop`.* TO `shop_app`@`%`",
                    ],
                }
            },
        }
        self.statements: list[str] = []
        self.down = False

    def connect(self, login: dict[str, Any]) -> FakeConn | None:
        if self.down:
            raise OSError("connection refused")
        account = self.users.get(login["username"], {}).get("%")
        if account is None or account["password"] != login["password"]:
            return None
        return FakeConn(self, login["username"])


class FakeConn:
    def __init__(self, db: FakeMySQL, user: str) -> None:
        self.db, self.user, self.closed = db, user, False

    def query(self, sql: str, args: Any = ()) -> list[tuple[Any, ...]]:
        if sql == "SELECT NOW()":
            return [("2026-01-01",)]
        if sql.startswith("SELECT Host, ssl_type"):
            return [(h, a["ssl_type"]) for h, a in self.db.users.get(args[0], {}).items()]
        if sql.startswith("SELECT Host FROM"):
            return [(h,) for h in self.db.users.get(args[0], {})]
        if sql.startswith("SHOW GRANTS"):
            return [(g,) for g in self.db.users[args[0]][args[1]]["grants"]]
        raise AssertionError(sql)

    def execute(self, sql: str, args: Any = None) -> None:
        assert self.user == "admin", "only the master login changes logins"
        self.db.statements.append(sql)
        if sql.startswith("CREATE USER"):
            self.db.users.setdefault(args[0], {})[args[1]] = {"password": args[2], "ssl_type": "", "grants": []}
        elif sql.endswith("REQUIRE SSL"):
            self.db.users[args[0]][args[1]]["ssl_type"] = "ANY"
        elif sql.startswith("ALTER USER"):
            self.db.users[args[0]][args[1]]["password"] = args[2]
        elif sql.startswith("GRANT"):
            m = re.search(r"TO `([^`]+)`@`([^`]+)`", sql)
            assert m and args is None
            grants = self.db.users[m.group(1)][m.group(2)]["grants"]
            if sql not in grants:
                grants.append(sql)
        else:
            raise AssertionError(sql)

    def close(self) -> None:
        self.closed = True


def event(step: str, token: str) -> dict[str, Any]:
    return {"Step": step, "SecretId": SECRET, "ClientRequestToken": token}


def run_all(api: FakeSecrets, db: FakeMySQL) -> str:
    token = api.start()
    for step in sr.STEPS:
        sr.rotate(event(step, token), api, db, MASTER)
    return token


def test_first_rotation_creates_the_clone_like_the_app_login_and_moves_current_to_it() -> None:
    api, db = FakeSecrets(APP), FakeMySQL()
    token = run_all(api, db)
    now = api.current()
    assert now["username"] == "shop_app_clone"
    assert {k: v for k, v in now.items() if k not in ("username", "password")} == {
        k: v for k, v in APP.items() if k not in ("username", "password")
    }
    clone = db.users["shop_app_clone"]["%"]
    assert clone["password"] == now["password"] != APP["password"]
    assert clone["ssl_type"] == "ANY"
    assert "GRANT SELECT, INSERT, UPDATE, DELETE ON `shop`.* TO `shop_app_clone`@`%`" in clone["grants"]
    # The login the hosts use now keeps working: its password is untouched.
    assert db.users["shop_app"]["%"]["password"] == APP["password"]
    assert api.versions[token]["stages"] == ["AWSPENDING", "AWSCURRENT"]
    assert api.versions["v1"]["stages"] == ["AWSPREVIOUS"]


def test_rotations_alternate_and_the_previous_login_stays_valid_until_the_next_one() -> None:
    api, db = FakeSecrets(APP), FakeMySQL()
    run_all(api, db)
    first = api.current()
    run_all(api, db)
    second = api.current()
    assert second["username"] == "shop_app"
    assert db.users["shop_app_clone"]["%"]["password"] == first["password"]  # still valid for slow hosts
    assert db.users["shop_app"]["%"]["password"] == second["password"]
    run_all(api, db)
    assert api.current()["username"] == "shop_app_clone"
    assert sum(1 for s in db.statements if s.startswith("CREATE USER")) == 1


@pytest.mark.parametrize("step", sr.STEPS)
def test_every_step_run_twice_does_nothing_more(step: str) -> None:
    api, db = FakeSecrets(APP), FakeMySQL()
    token = api.start()
    for s in sr.STEPS[: sr.STEPS.index(step) + 1]:
        sr.rotate(event(s, token), api, db, MASTER)
    versions, users, calls = copy.deepcopy(api.versions), copy.deepcopy(db.users), list(api.calls)
    n_statements = len(db.statements)
    again = sr.rotate(event(step, token), api, db, MASTER)
    assert again in ("unchanged", "tested", "nothing to do")
    assert api.versions == versions and db.users == users and api.calls == calls
    assert len(db.statements) == n_statements


def test_a_retry_after_finish_sees_the_version_current_and_returns() -> None:
    api, db = FakeSecrets(APP), FakeMySQL()
    token = run_all(api, db)
    assert sr.rotate(event("setSecret", token), api, db, MASTER) == "nothing to do"


def test_set_secret_takes_the_master_from_the_secret_when_no_env() -> None:
    api, db = FakeSecrets({**APP, "masterarn": MASTER}), FakeMySQL()
    token = api.start()
    sr.rotate(event("createSecret", token), api, db)
    assert sr.rotate(event("setSecret", token), api, db) == "set"


def test_set_secret_without_a_master_secret_is_refused() -> None:
    api, db = FakeSecrets(APP), FakeMySQL()
    token = api.start()
    sr.rotate(event("createSecret", token), api, db)
    with pytest.raises(sr.RotationError, match="no master secret"):
        sr.rotate(event("setSecret", token), api, db)
    assert "shop_app_clone" not in db.users


def test_a_refused_master_login_fails_set_secret() -> None:
    api, db = FakeSecrets(APP), FakeMySQL()
    api.master["password"] = "wrong"
    token = api.start()
    sr.rotate(event("createSecret", token), api, db, MASTER)
    with pytest.raises(sr.RotationError, match="master login was refused"):
        sr.rotate(event("setSecret", token), api, db, MASTER)


def test_a_database_down_propagates_and_nothing_moves() -> None:
    api, db = FakeSecrets(APP), FakeMySQL()
    token = api.start()
    sr.rotate(event("createSecret", token), api, db, MASTER)
    db.down = True
    with pytest.raises(OSError):
        sr.rotate(event("setSecret", token), api, db, MASTER)
    assert api.current()["username"] == "shop_app"


def test_test_secret_fails_when_the_pending_login_was_never_set() -> None:
    api, db = FakeSecrets(APP), FakeMySQL()
    token = api.start()
    sr.rotate(event("createSecret", token), api, db, MASTER)
    with pytest.raises(sr.RotationError, match="was refused"):
        sr.rotate(event("testSecret", token), api, db, MASTER)


def test_the_current_login_missing_on_the_database_is_refused() -> None:
    api, db = FakeSecrets(APP), FakeMySQL()
    del db.users["shop_app"]
    token = api.start()
    sr.rotate(event("createSecret", token), api, db, MASTER)
    with pytest.raises(sr.RotationError, match="does not exist"):
        sr.rotate(event("setSecret", token), api, db, MASTER)


def test_a_pending_version_for_another_host_is_refused() -> None:
    api, db = FakeSecrets(APP), FakeMySQL()
    token = api.start()
    api.put_pending(SECRET, token, {**APP, "username": "shop_app_clone", "host": "evil.example"})
    with pytest.raises(sr.RotationError, match="another host"):
        sr.rotate(event("setSecret", token), api, db, MASTER)
    assert db.statements == []


def test_a_pending_version_for_a_third_login_is_refused() -> None:
    api, db = FakeSecrets(APP), FakeMySQL()
    token = api.start()
    api.put_pending(SECRET, token, {**APP, "username": "admin"})
    with pytest.raises(sr.RotationError, match="not the alternate"):
        sr.rotate(event("testSecret", token), api, db, MASTER)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"Step": "dropSecret"}, "unknown step"),
        ({"ClientRequestToken": ""}, "lacks SecretId"),
        ({"ClientRequestToken": "unknown"}, "has no stage"),
    ],
)
def test_malformed_events_are_refused(change: dict[str, str], message: str) -> None:
    api, db = FakeSecrets(APP), FakeMySQL()
    token = api.start()
    with pytest.raises(sr.RotationError, match=message):
        sr.rotate({**event("createSecret", token), **change}, api, db, MASTER)


def test_rotation_disabled_is_refused() -> None:
    api, db = FakeSecrets(APP, enabled=False), FakeMySQL()
    token = api.start()
    with pytest.raises(sr.RotationError, match="not enabled"):
        sr.rotate(event("createSecret", token), api, db, MASTER)


def test_a_version_not_pending_is_refused() -> None:
    api, db = FakeSecrets(APP), FakeMySQL()
    api.versions["old"] = {"value": dict(APP), "stages": ["AWSPREVIOUS"]}
    with pytest.raises(sr.RotationError, match="is not AWSPENDING"):
        sr.rotate(event("createSecret", "old"), api, db, MASTER)


@pytest.mark.parametrize(
    ("secret", "message"),
    [
        ({**APP, "password": ""}, "lacks password"),
        ({**APP, "engine": "postgres"}, "engine"),
        ({**APP, "username": "x'; DROP USER"}, "malformed username"),
        ({**APP, "username": "a" * 27}, "longer than 32"),
    ],
)
def test_an_unusable_current_secret_is_refused_before_anything_is_written(secret: dict[str, Any], message: str) -> None:
    api, db = FakeSecrets(secret), FakeMySQL()
    token = api.start()
    with pytest.raises(sr.RotationError, match=message):
        sr.rotate(event("createSecret", token), api, db, MASTER)
    assert api.calls == []


def test_alternate_username() -> None:
    assert sr.alternate_username("shop_app") == "shop_app_clone"
    assert sr.alternate_username("shop_app_clone") == "shop_app"
    assert sr.alternate_username("a" * 26) == "a" * 26 + "_clone"


def test_clone_grants_rewrites_the_account_and_drops_mariadb_password_hashes() -> None:
    rows = [
        ("GRANT USAGE ON *.* TO `shop_app`@`%` IDENTIFIED BY PASSWORD '*ABCDEF' REQUIRE SSL",),
        ("GRANT SELECT ON `shop`.* TO 'shop_app'@'10.0.%'",),
        ("CREATE ROLE x",),
    ]
    assert sr.clone_grants(rows, "shop_app_clone") == [
        "GRANT USAGE ON *.* TO `shop_app_clone`@`%` REQUIRE SSL",
        "GRANT SELECT ON `shop`.* TO `shop_app_clone`@`10.0.%`",
    ]


@pytest.mark.parametrize("text", [None, "not json", "[1]"])
def test_parse_secret_refuses_without_echoing(text: str | None) -> None:
    with pytest.raises(sr.RotationError) as err:
        sr.parse_secret(text, "AWSCURRENT of x")
    assert "not json" not in str(err.value).replace("not JSON", "")
