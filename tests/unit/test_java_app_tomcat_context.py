"""Tomcat's default context.xml as the java_app role writes it (war): the session manager.

Rendered with jinja2 the way the role's template module renders it, parsed as XML: in memory by
default (no persistence across restarts), RedisSessionManager with the session store (the env file
the secret unit writes, the class filter, SessionStoreValve first), attribute values escaped, and no
secret in it. The role's default filter is the argument spec's.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import jinja2
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
ROLE = REPO / "roles" / "java_app"
TEMPLATE = ROLE / "templates" / "tomcat-context.xml.j2"
ENV_FILE = "/run/gearlift/db.env"


def _defaults() -> dict[str, Any]:
    loaded = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


def _render(**variables: object) -> str:
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=True)
    values: dict[str, object] = {
        "ansible_managed": "Ansible managed",
        "java_app_session_store": "memory",
        "java_app_tomcat_session_class_filter": _defaults()["java_app_tomcat_session_class_filter"],
        "__java_app_db_env_file": ENV_FILE,
    }
    values.update(variables)
    return env.from_string(TEMPLATE.read_text(encoding="utf-8")).render(**values)


def _parse(text: str) -> ET.Element:
    return ET.fromstring(text.encode("utf-8"))


def test_memory_keeps_sessions_in_memory_without_persistence() -> None:
    root = _parse(_render())
    assert root.tag == "Context"
    managers = root.findall("Manager")
    assert len(managers) == 1
    assert managers[0].attrib == {"pathname": ""}, "in-memory sessions must not be written to disk"
    assert root.findall("Valve") == []


def test_redis_declares_the_store_manager_and_its_valve_first() -> None:
    root = _parse(_render(java_app_session_store="redis"))
    children = [c for c in root if c.tag in ("Valve", "Manager")]
    assert [c.tag for c in children] == ["Valve", "Manager"]
    assert children[0].attrib == {"className": "gearlift.shopstandin.SessionStoreValve"}
    manager = children[1].attrib
    assert manager["className"] == "gearlift.shopstandin.RedisSessionManager"
    assert manager["envFile"] == ENV_FILE
    assert manager["sessionAttributeValueClassNameFilter"] == _defaults()["java_app_tomcat_session_class_filter"]
    # The filter is a regular expression that admits the cart and Tomcat's own field types, nothing else.
    pattern = re.compile(manager["sessionAttributeValueClassNameFilter"])
    for name in ("gearlift.shopstandin.Cart", "java.lang.Long", "java.util.LinkedHashMap", "java.lang.String"):
        assert pattern.fullmatch(name), name
    for name in ("java.util.ArrayList", "gearlift.shopstandin.CartX", "org.apache.commons.collections.Transformer"):
        assert not pattern.fullmatch(name), name
    assert "TOKEN" not in _render(java_app_session_store="redis"), "no secret (nor its key) in context.xml"


@pytest.mark.parametrize("value", ['a"b', "a&b|c<d", r"com\.example\.(?:A|B)"])
def test_attribute_values_are_escaped(value: str) -> None:
    root = _parse(_render(java_app_session_store="redis", java_app_tomcat_session_class_filter=value))
    manager = root.find("Manager")
    assert manager is not None
    assert manager.attrib["sessionAttributeValueClassNameFilter"] == value


def test_default_filter_is_the_argument_specs() -> None:
    spec = yaml.safe_load((ROLE / "meta" / "argument_specs.yml").read_text(encoding="utf-8"))
    options = spec["argument_specs"]["main"]["options"]
    for name in ("java_app_tomcat_session_jar_src", "java_app_tomcat_session_jar_sha256"):
        assert options[name]["default"] == _defaults()[name] == ""
    assert (
        options["java_app_tomcat_session_class_filter"]["default"]
        == _defaults()["java_app_tomcat_session_class_filter"]
    )
