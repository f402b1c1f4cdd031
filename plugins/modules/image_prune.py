#!/usr/bin/python
# Copyright: gearlift maintainers
# Apache License 2.0 (see galaxy.yml)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: image_prune
short_description: Keep the newest golden images, deregister the older ones and delete their snapshots
version_added: 0.1.0
description:
  - Lists the account's own images whose name starts with O(name_prefix) (and that carry every tag in
    O(tags)), keeps the O(keep) newest available ones, and deregisters the others and deletes their EBS
    snapshots.
  - An image is never touched while any version of any launch template in the region references it, while
    it is listed in O(protect) (for example the promoted image) or while it is not C(available).
  - In check mode nothing is changed; the result lists what would be deleted.
author:
  - gearlift maintainers (!UNKNOWN)
options:
  name_prefix:
    description: Only images whose name starts with this prefix are considered. Must not be empty.
    type: str
    required: true
  tags:
    description: Tags an image must carry (all of them) to be considered.
    type: dict
    default: {}
  keep:
    description: How many of the newest available images to keep (at least 1).
    type: int
    default: 3
  protect:
    description: Image ids never deleted (the promoted image, one a deployment is about to use, ...).
    type: list
    elements: str
    default: []
notes:
  - Snapshots are deleted after their image is deregistered (AWS refuses to delete a snapshot an image uses).
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: Keep the three newest golden images of the shop, never the promoted one
  gearlift.platform.image_prune:
    name_prefix: shop-production-golden-
    tags:
      gearlift:project: shop
    keep: 3
    protect: ["{{ promoted_ami }}"]
    region: eu-west-1
"""

RETURN = r"""
deleted:
  description: Images deregistered (or that would be, in check mode), with their snapshots.
  returned: always
  type: list
  elements: dict
  sample:
    - image_id: ami-0123456789abcdef0
      name: shop-production-golden-20261101-030000
      snapshots: [snap-0a1b2c]
kept:
  description: Ids of the images kept because they are among the O(keep) newest.
  returned: always
  type: list
  elements: str
protected:
  description: Images older than the newest O(keep) that were left alone, with the reason.
  returned: always
  type: list
  elements: dict
  sample: [{"image_id": "ami-0fedcba9876543210", "reason": "referenced by launch template lt-0abc version 7"}]
"""

import contextlib
from typing import Any

with contextlib.suppress(ImportError):  # botocore missing is reported by AnsibleAWSModule
    import botocore

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry


def images_in_launch_templates(ec2: Any) -> dict[str, str]:
    """Image id -> "launch template <id> version <n>" for every version of every template."""
    used: dict[str, str] = {}
    for page in ec2.get_paginator("describe_launch_templates").paginate():
        for template in page.get("LaunchTemplates", []):
            template_id = template["LaunchTemplateId"]
            versions = ec2.get_paginator("describe_launch_template_versions").paginate(LaunchTemplateId=template_id)
            for version_page in versions:
                for version in version_page.get("LaunchTemplateVersions", []):
                    image = (version.get("LaunchTemplateData") or {}).get("ImageId")
                    if image:
                        used.setdefault(
                            image, f"referenced by launch template {template_id} version {version['VersionNumber']}"
                        )
    return used


def plan(
    images: list[dict[str, Any]], keep: int, in_use: dict[str, str], protect: list[str]
) -> tuple[list[dict[str, Any]], list[str], list[dict[str, str]]]:
    """(to delete, kept ids, protected) for the candidate images."""
    available = sorted(
        (i for i in images if i.get("State") == "available"),
        key=lambda i: (i.get("CreationDate") or "", i["ImageId"]),
        reverse=True,
    )
    kept = [i["ImageId"] for i in available[:keep]]
    delete: list[dict[str, Any]] = []
    protected: list[dict[str, str]] = []
    for image in available[keep:]:
        image_id = image["ImageId"]
        if image_id in protect:
            protected.append({"image_id": image_id, "reason": "protected (promoted or in use by this run)"})
        elif image_id in in_use:
            protected.append({"image_id": image_id, "reason": in_use[image_id]})
        else:
            delete.append(image)
    for image in images:
        if image.get("State") != "available":
            protected.append({"image_id": image["ImageId"], "reason": f"state {image.get('State')}"})
    return delete, kept, protected


def main() -> None:
    module = AnsibleAWSModule(
        argument_spec=dict(
            name_prefix=dict(type="str", required=True),
            tags=dict(type="dict", default={}),
            keep=dict(type="int", default=3),
            protect=dict(type="list", elements="str", default=[]),
        ),
        supports_check_mode=True,
    )
    p = module.params
    if not p["name_prefix"].strip():
        module.fail_json(msg="name_prefix must not be empty: it keeps the prune to the golden images")
    if p["keep"] < 1:
        module.fail_json(msg=f"keep must be at least 1 (got {p['keep']}): the newest image always stays")
    ec2 = module.client("ec2", retry_decorator=AWSRetry.jittered_backoff(retries=10))
    filters = [{"Name": "name", "Values": [p["name_prefix"] + "*"]}]
    filters += [{"Name": f"tag:{k}", "Values": [str(v)]} for k, v in (p["tags"] or {}).items()]
    try:
        images = ec2.describe_images(Owners=["self"], Filters=filters, aws_retry=True).get("Images", [])
        in_use = images_in_launch_templates(ec2)
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
        module.fail_json_aws(e, msg="Could not list the images and the launch templates")
    images = [i for i in images if str(i.get("Name", "")).startswith(p["name_prefix"])]
    delete, kept, protected = plan(images, p["keep"], in_use, p["protect"])
    deleted = []
    for image in delete:
        snapshots = [
            m["Ebs"]["SnapshotId"] for m in image.get("BlockDeviceMappings", []) if m.get("Ebs", {}).get("SnapshotId")
        ]
        deleted.append({"image_id": image["ImageId"], "name": image.get("Name"), "snapshots": snapshots})
        if module.check_mode:
            continue
        try:
            ec2.deregister_image(ImageId=image["ImageId"], aws_retry=True)
            for snapshot in snapshots:
                ec2.delete_snapshot(SnapshotId=snapshot, aws_retry=True)
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
            module.fail_json_aws(
                e, msg=f"Could not delete image {image['ImageId']} or its snapshots", changed=True, deleted=deleted
            )
    module.exit_json(changed=bool(deleted), deleted=deleted, kept=kept, protected=protected)


if __name__ == "__main__":
    main()
