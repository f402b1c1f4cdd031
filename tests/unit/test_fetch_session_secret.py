"""roles/java_app/files/fetch-db-secret: the session store's keys it adds to the env file (pure parts)."""

from __future__ import annotations

import importlib.machinery
import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "roles" / "java_app" / "files" / "fetch-db-secret"
TOKEN = "A" * 64


def _load() -> ModuleType:
    loader = importlib.machinery.SourceFileLoader("fetch_db_secret", str(SCRIPT))
    spec = importlib.util.spec_from_loader("fetch_db_secret", loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


fetcher = _load()


def args(*extra: str):
    return fetcher.parse_args(["--group", "shop", *extra])


def test_redis_keys_from_the_session_secret() -> None:
    a = args("--session-store", "redis", "--session-tls-ca", "/etc/gearlift/rds-global-bundle.pem")
    pairs = dict(
        fetcher.session_settings(
            a, {"host": "master.x.cache.amazonaws.com", "port": 6379, "tls": True, "auth_token": TOKEN}
        )
    )
    assert pairs == {
        "SESSION_STORE": "redis",
        "SESSION_REDIS_HOST": "master.x.cache.amazonaws.com",
        "SESSION_REDIS_PORT": "6379",
        "SESSION_REDIS_TLS": "required",
        "SESSION_REDIS_TLS_CA": "/etc/gearlift/rds-global-bundle.pem",
        "SESSION_REDIS_TOKEN": TOKEN,
    }
    plain = dict(fetcher.session_settings(args(), {"host": "h", "port": "6380", "tls": False}))
    assert plain["SESSION_REDIS_TLS"] == "disabled" and "SESSION_REDIS_TOKEN" not in plain
    assert "SESSION_REDIS_TLS_CA" not in plain


@pytest.mark.parametrize(
    ("secret", "problem"),
    [
        ({"port": 6379}, "lacks host"),
        ({"host": "h", "port": "x"}, "no valid port"),
        ({"host": "h", "port": 70000}, "not 1..65535"),
        ({"host": "h", "tls": "yes"}, "not true/false"),
        ({"host": "h", "auth_token": 5}, "auth_token is not a string"),
    ],
)
def test_an_unusable_session_secret_is_named_never_echoed(secret, problem) -> None:
    with pytest.raises(fetcher.Unusable, match=problem) as raised:
        fetcher.session_settings(args(), secret)
    assert TOKEN not in str(raised.value)


def test_redis_without_a_secret_id_stops_before_any_call(monkeypatch, capsys) -> None:
    monkeypatch.delenv("GEARLIFT_SESSION_SECRET_ID", raising=False)
    monkeypatch.setattr(fetcher.os, "geteuid", lambda: 0)
    monkeypatch.setattr(fetcher, "fetch", lambda *a: pytest.fail("no AWS call expected"))
    code = fetcher.main(["--group", "root", "--secret-id", "db", "--session-store", "redis"])
    assert code == 2
    assert "GEARLIFT_SESSION_SECRET_ID" in capsys.readouterr().err


def test_both_secrets_land_in_one_env_file(monkeypatch, tmp_path) -> None:
    secrets = {
        "db": '{"username": "shop_app", "password": "pw", "host": "db.example", "dbname": "shop"}',
        "gearlift/shop-rehearsal/session-store": '{"host": "master.x", "port": 6379, "tls": true, "auth_token": "'
        + TOKEN
        + '"}',
    }
    monkeypatch.setattr(fetcher.os, "geteuid", lambda: 0)
    monkeypatch.setattr(fetcher.os, "chown", lambda *a: None)
    monkeypatch.setattr(fetcher.os, "fchown", lambda *a: None)
    monkeypatch.setattr(fetcher, "fetch", lambda a, sid: {"SecretString": secrets[sid], "ARN": f"arn:{sid}"})
    monkeypatch.setenv("GEARLIFT_SESSION_SECRET_ID", "gearlift/shop-rehearsal/session-store")
    out = tmp_path / "db.env"
    code = fetcher.main(["--group", "root", "--secret-id", "db", "--session-store", "redis", "--output", str(out)])
    assert code == 0
    lines = out.read_text().splitlines()
    assert "SESSION_STORE=redis" in lines and f"SESSION_REDIS_TOKEN={TOKEN}" in lines
    assert "DB_PASSWORD=pw" in lines and "SESSION_REDIS_HOST=master.x" in lines
