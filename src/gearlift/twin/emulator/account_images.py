"""Inside the emulator: an image the account kept from an earlier rehearsal is registered again.

A real account keeps its AMIs (and the KMS key their snapshots are encrypted with) from one
rehearsal to the next; the twin's emulator starts empty every time. The data plane keeps a record
of each image the account made (gearlift.twin.dataplane.amis) and hands it back here: the image
returns with its id, name, description, tags, architecture, creation date and an encrypted
snapshot under the key the record names by alias. The key itself is made again by the playbooks
(``keys.yml``), so an image returns only once its key's alias exists, as it would be usable only
with its key on AWS.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from gearlift.twin.emulator.lifecycle import _backend


def restore_image(account: str, region: str, record: dict[str, Any]) -> dict[str, Any]:
    """Register ``record``'s image again; {"restored": bool, "why": str} (why not, when it was not)."""
    from moto.ec2.models import amis

    ec2 = _backend("ec2", account, region)
    ami_id = str(record["image_id"])
    if ami_id in ec2.amis:
        return {"restored": False, "why": f"{ami_id} exists"}
    alias = str(record.get("kms_alias") or "")
    key_arn = ""
    if alias:
        from moto.kms.models import kms_backends

        kms = kms_backends[account][region]
        try:
            key_arn = kms.describe_key(alias).arn
        except Exception:  # moto raises NotFoundException; any lookup failure means: not yet
            return {"restored": False, "why": f"waiting for the key {alias}"}
    volume_spec = dict(record.get("volume") or {})
    zone = f"{region}a"
    image = amis.Ami(
        ec2,
        ami_id,
        name=str(record["name"]),
        description=str(record.get("description") or ""),
        architecture=str(record.get("architecture") or "x86_64"),
        virtualization_type="hvm",
        root_device_type="ebs",
        root_device_name=str(record.get("root_device_name") or "/dev/sda1"),
        creation_date=datetime.fromisoformat(str(record["creation_date"]).replace("Z", "+00:00")),
        region_name=zone,
        snapshot_description=f"Kept by the account for {ami_id}",
    )
    # The auto-created snapshot is replaced by one encrypted under the record's key.
    ec2.snapshots.pop(image.ebs_snapshot.id, None)
    volume = ec2.create_volume(
        size=int(volume_spec.get("size") or 8),
        zone_name=zone,
        encrypted=bool(key_arn),
        kms_key_id=key_arn or None,
        volume_type=str(volume_spec.get("type") or "gp3"),
    )
    snapshot = ec2.create_snapshot(volume.id, f"Kept by the account for {ami_id}", from_ami=ami_id)
    snapshot.kms_key_id = key_arn or None
    snapshot.status = "completed"
    ec2.delete_volume(volume.id)
    image.ebs_snapshot = snapshot
    setattr(image, "_gl_volume", {"size": volume.size, "type": volume.volume_type})  # noqa: B010
    image.state = "available"
    for key, value in dict(record.get("tags") or {}).items():
        image.add_tag(str(key), str(value))
    ec2.amis[ami_id] = image
    return {"restored": True, "why": ""}
