"""The rotation function's database login: a refused login is "cannot log in", anything else fails the step.

MariaDB (the twin's RDS stand-in) refuses a user that does not exist with 1698 and a wrong password
with 1045; MySQL says 1045 for both. setSecret first tries the pending login and, when it cannot
log in, sets its password with the master login: both codes must lead there, on either engine.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pymysql
import pytest

REPO = Path(__file__).resolve().parents[2]
LOGIN = {"host": "db.example.internal", "port": 3306, "username": "shop_app_clone", "password": "x", "dbname": "shop"}


@pytest.fixture
def lambda_function() -> Iterator[ModuleType]:
    # As packed: lambda_function.py beside secret_rotation.py (the collection's module_utils file).
    paths = [str(REPO / "playbooks" / "files" / "secret_rotation"), str(REPO / "plugins" / "module_utils")]
    sys.path[:0] = paths
    try:
        yield importlib.import_module("lambda_function")
    finally:
        del sys.path[: len(paths)]
        for name in ("lambda_function", "secret_rotation"):
            sys.modules.pop(name, None)


@pytest.mark.parametrize("code", [1045, 1698])
def test_a_refused_login_cannot_log_in(lambda_function: ModuleType, monkeypatch: pytest.MonkeyPatch, code: int) -> None:
    def refuse(**_: object) -> None:
        raise pymysql.err.OperationalError(code, f"Access denied for user '{LOGIN['username']}'@'10.0.3.7'")

    monkeypatch.setattr(pymysql, "connect", refuse)
    assert lambda_function.PyMySqlDatabase(ca="/dev/null").connect(LOGIN) is None


def test_an_unreachable_database_fails_the_step(lambda_function: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    def unreachable(**_: object) -> None:
        raise pymysql.err.OperationalError(2003, "Can't connect to MySQL server on 'db.example.internal'")

    monkeypatch.setattr(pymysql, "connect", unreachable)
    with pytest.raises(pymysql.err.OperationalError):
        lambda_function.PyMySqlDatabase(ca="/dev/null").connect(LOGIN)
