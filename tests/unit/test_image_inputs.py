"""The golden image is baked anew when a setting it is built from changes (image_bake_input_values).

golden_image.yml's text is hashed; the `all` group's settings it reads must be hashed by value too,
else switching e.g. gearlift_session_store to redis reuses an image whose firewall and app config
know nothing of the session store.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
INVENTORIES = {
    "rehearsal": "group_vars/all/image_lifecycle.yml",
    "production-example": "group_vars/all/main.yml",
}


def _read(inventory: str) -> tuple[set[str], str]:
    root = REPO / "inventories" / inventory
    golden = (root / "group_vars" / "golden_image.yml").read_text(encoding="utf-8")
    # The names it reads inside Jinja expressions (comments do not count).
    code = "\n".join(line.split("#", 1)[0] for line in golden.splitlines())
    read = {name for expr in re.findall(r"\{\{(.*?)\}\}", code, re.S) for name in re.findall(r"\bgearlift_\w+", expr)}
    inputs = yaml.safe_load((root / INVENTORIES[inventory]).read_text(encoding="utf-8"))["image_bake_input_values"]
    return read, "\n".join(inputs)


@pytest.mark.parametrize("inventory", sorted(INVENTORIES))
def test_every_all_group_setting_the_golden_image_reads_is_an_input_by_value(inventory: str) -> None:
    read, inputs = _read(inventory)
    assert "gearlift_session_store" in read, "the parser found nothing: golden_image.yml changed shape"
    settings = next((v for v in inputs.splitlines() if "settings golden_image.yml reads" in v), "")
    hashed = set(re.findall(r"'(gearlift_\w+)': gearlift_\w+", inputs))
    assert settings and hashed, f"{inventory}: no value-hash of golden_image.yml's settings in image_bake_input_values"
    missing = sorted(read - hashed)
    assert not missing, f"{inventory}: golden_image.yml reads {missing}, not hashed into the image's inputs"
    for name in hashed:
        assert re.search(rf"'{name}': {name}\b", inputs), f"{inventory}: {name} hashed under another name"
