"""The account's images outlive a rehearsal, as a real account's AMIs do.

The twin's emulator starts empty on every run, but an AWS account keeps the golden images it
baked (an image pipeline reuses one whose inputs did not change: ``playbooks/bake_ami.yml``).
Every round this reconciler keeps a record of each available image of the account that has a
local image (``<state dir>/account-images/<ami>.json``: id, name, description, tags,
architecture, creation date, root volume, the alias of its snapshot's KMS key), forgets the
record when the image is deregistered in the account, and hands each record the emulator does
not know back to it (``channel.IMAGE_RESTORE``) once the record's key alias exists again
(``keys.yml`` makes the keys anew; on AWS an image is usable only with its key). An image whose
key has no alias cannot come back in a new account and is not recorded.

The records and their local images are removed by ``gearlift twin clean --images`` only.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gearlift.twin import channel, podman
from gearlift.twin.awsclients import Clients
from gearlift.twin.dataplane import Round
from gearlift.twin.layout import TwinLayout, write_atomic

LOCAL_IMAGE_TAG = "gearlift:local-image"
# Local images committed from instances (CreateImage): named by AMI id, labelled with the twin and the snapshot.
AMI_IMAGE_REPO = "localhost/gearlift-ami"
STORE = "account-images"

Log = Callable[[str], None]


def store_dir(state_dir: Path) -> Path:
    return state_dir / STORE


def load_records(state_dir: Path) -> dict[str, dict[str, Any]]:
    """image id -> record, of every readable record (a broken file is skipped, not fatal)."""
    out: dict[str, dict[str, Any]] = {}
    folder = store_dir(state_dir)
    for path in sorted(folder.glob("ami-*.json")) if folder.is_dir() else []:
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(record, dict) and record.get("image_id") == path.stem:
            out[path.stem] = record
    return out


def kept_local_images(state_dir: Path) -> set[str]:
    """The local images the account's records keep (never removed with a twin's containers)."""
    return {str(r["local_image"]) for r in load_records(state_dir).values() if r.get("local_image")}


def record_of(image: dict[str, Any], kms_alias: str) -> dict[str, Any] | None:
    """The record of one DescribeImages item (None: not an image the account made, nothing to keep)."""
    tags = {t["Key"]: t["Value"] for t in image.get("Tags", [])}
    local = tags.get(LOCAL_IMAGE_TAG, "")
    if not local.startswith(AMI_IMAGE_REPO + ":"):
        return None  # not made by CreateImage here (the twin's stock and seeded images come back by themselves)
    ebs: dict[str, Any] = next((m["Ebs"] for m in image.get("BlockDeviceMappings", []) if m.get("Ebs")), {})
    return {
        "image_id": image["ImageId"],
        "name": image.get("Name", ""),
        "description": image.get("Description", ""),
        "architecture": image.get("Architecture", "x86_64"),
        "root_device_name": image.get("RootDeviceName", "/dev/sda1"),
        "creation_date": image["CreationDate"],
        "tags": dict(sorted(tags.items())),
        "volume": {"size": ebs.get("VolumeSize"), "type": ebs.get("VolumeType")},
        "encrypted": bool(ebs.get("Encrypted")),
        "kms_alias": kms_alias,
        "local_image": local,
    }


class AccountImages:
    def __init__(self, layout: TwinLayout, clients: Clients, log: Log) -> None:
        self.layout = layout
        self.clients = clients
        self.log = log
        self.here: set[str] = set()  # images this twin's account has had (made or restored)
        self._said: set[str] = set()

    @property
    def store(self) -> Path:
        return store_dir(self.layout.state_dir)

    def _say_once(self, key: str, message: str) -> None:
        if key not in self._said:
            self._said.add(key)
            self.log(message)

    def _alias_of(self, key_arn: str) -> str:
        aliases = self.clients("kms").list_aliases(KeyId=key_arn).get("Aliases", [])
        names = sorted(a["AliasName"] for a in aliases if not a["AliasName"].startswith("alias/aws/"))
        return names[0] if names else ""

    def reconcile(self, round_: Round) -> None:
        images = self.clients("ec2").describe_images(Owners=["self"])["Images"]
        present = {i["ImageId"]: i for i in images}
        records = load_records(self.layout.state_dir)
        for ami, image in present.items():
            if image.get("State") != "available":
                continue
            self.here.add(ami)
            self._keep(ami, image, records.get(ami))
        for ami, record in records.items():
            if ami in present:
                continue
            if ami in self.here:
                (self.store / f"{ami}.json").unlink(missing_ok=True)
                self.log(f"amis: {ami} was deregistered: the account no longer keeps it")
                continue
            self._restore(ami, record)

    def _keep(self, ami: str, image: dict[str, Any], old: dict[str, Any] | None) -> None:
        ebs: dict[str, Any] = next((m["Ebs"] for m in image.get("BlockDeviceMappings", []) if m.get("Ebs")), {})
        alias = ""
        if ebs.get("Encrypted") and ebs.get("KmsKeyId"):
            alias = self._alias_of(str(ebs["KmsKeyId"]))
            if not alias:
                self._say_once(ami, f"amis: {ami}'s key has no alias: a later rehearsal cannot use it, not kept")
                return
        record = record_of(image, alias)
        if record is None or record == old:
            return
        self.store.mkdir(parents=True, exist_ok=True)
        path = self.store / f"{ami}.json"
        write_atomic(path, json.dumps(record, indent=2, sort_keys=True) + "\n")
        if old is None:
            self.log(f"amis: the account keeps {ami} ({record['name']}) for later rehearsals")

    def _restore(self, ami: str, record: dict[str, Any]) -> None:
        if not podman.image_exists(str(record.get("local_image", ""))):
            (self.store / f"{ami}.json").unlink(missing_ok=True)
            self.log(f"amis: {ami}'s local image {record.get('local_image')} is gone: record dropped")
            return
        answer = channel.send(
            self.clients.endpoint, channel.IMAGE_RESTORE, {"region": self.layout.region, "image": record}
        )
        if answer.get("restored"):
            self.here.add(ami)
            self.log(f"amis: {ami} ({record['name']}), kept from an earlier rehearsal, is in the account again")
        else:
            self._say_once(f"{ami}:{answer.get('why')}", f"amis: {ami} not back yet: {answer.get('why')}")
