"""One twin for the database move and the restore drill (the package's tests run together).

The twin provisions the target (keys, network, security, data, storage of site.yml) and starts the shop's
estate as it runs today (onprem-db with binlog, onprem-app with the legacy env file, published on
127.0.0.1 only). The move (test_migration.py) and the drill (test_restore_drill.py) each leave
the RDS stand-in's `shop` database as they found it where the other depends on that.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from gearlift.twin.onprem import OnPremEstate
from gearlift.twin.runner import run_playbook
from gearlift.twin.twin import Twin, TwinConfig

from ..conftest import REPO, TEST_PREFIX, TEST_SUBNET, _podman_ready, leftovers

NAME = "shop-rehearsal"
LEGACY_ORDERS = 3000


@dataclass
class Estate:
    twin: Twin
    onprem: OnPremEstate
    tmp: Path


@pytest.fixture(scope="package")
def estate(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Estate]:
    reason = _podman_ready()
    if reason:
        pytest.skip(reason)
    state = tmp_path_factory.mktemp(f"{TEST_PREFIX}-dbmove-state")
    tmp = tmp_path_factory.mktemp("dbmove")
    twin = Twin(TwinConfig(prefix=TEST_PREFIX, subnet=TEST_SUBNET, state_dir=state, interval=1.0))
    twin.up()
    try:
        twin.start_loop()
        lines: list[str] = []
        provisioned = run_playbook(
            REPO,
            "site.yml",
            ["inventories/rehearsal"],
            tmp / "site",
            twin.aws_env,
            lines.append,
            tags="keys,network,security,data,storage",
        )
        assert provisioned.ok, "\n".join(lines[-40:] + provisioned.failures)
        twin.wait_for(lambda: NAME in twin.endpoints.databases, 180, "the RDS stand-in to accept logins")
        onprem = twin.onprem_up(orders=LEGACY_ORDERS)
        yield Estate(twin=twin, onprem=onprem, tmp=tmp)
    finally:
        twin.stop_loop()
        twin.down()
        left = leftovers(TEST_PREFIX, state)
        assert not left, f"twin left things behind: {left}"
