#!/usr/bin/python
# Copyright: gearlift maintainers
# Apache License 2.0 (see galaxy.yml)
from __future__ import annotations

DOCUMENTATION = r"""
---
module: elasticache_replication_group
short_description: An ElastiCache for Redis OSS / Valkey replication group (cluster mode disabled), secure by default
description:
  - Creates, updates or deletes one replication group - a primary and O(replicas) replicas in a cache subnet
    group, behind the given security groups, with in-transit encryption (TLS), at-rest encryption with a KMS
    key and an AUTH token. Multi-AZ with automatic failover is on whenever there is a replica.
  - In place it changes the description, the security groups, the node type, failover and snapshot retention
    (ModifyReplicationGroup, applied immediately). What ElastiCache fixes at creation (engine, port, subnet
    group, encryption, KMS key, AUTH on or off) and the number of nodes are reported as an error naming the
    difference, before any write.
  - The AUTH token is sent only when the group is created (ElastiCache never returns it, so a later run cannot
    compare it); rotate it with ModifyReplicationGroup's AuthTokenUpdateStrategy outside this module.
  - community.aws has no replication group module (community.aws.elasticache manages single-node clusters).
  - Pure logic in module_utils/elasticache.py.
version_added: 0.1.0
author:
  - gearlift maintainers (!UNKNOWN)
options:
  replication_group_id:
    description: The group's id (1-40 lowercase letters, digits, hyphens).
    type: str
    required: true
  description:
    description: The group's description.
    type: str
    default: gearlift session store
  engine:
    description: C(redis) (Redis OSS) or C(valkey).
    type: str
    choices: [redis, valkey]
    default: redis
  engine_version:
    description: Engine version at creation (like C(7.1)).
    type: str
    default: "7.1"
  node_type:
    description: Node type of each node.
    type: str
    default: cache.t4g.small
  replicas:
    description: Replicas of the primary (0-5).
    type: int
    default: 1
  port:
    description: The port the nodes listen on.
    type: int
    default: 6379
  subnet_group_name:
    description: The cache subnet group (private subnets).
    type: str
  security_group_ids:
    description: The nodes' VPC security groups.
    type: list
    elements: str
    default: []
  transit_encryption:
    description: TLS on the nodes' port (required for O(auth_token)).
    type: bool
    default: true
  at_rest_encryption:
    description: Encryption at rest.
    type: bool
    default: true
  kms_key_id:
    description: KMS key (id, ARN or alias) for encryption at rest; AWS's own key when omitted.
    type: str
  auth_token:
    description:
      - The AUTH token at creation (16-128 printable characters, none of space, C("), C(/), C(@)). Never logged
        or returned.
    type: str
  allow_no_auth:
    description: Create the group without an AUTH token (refused otherwise when O(auth_token) is missing).
    type: bool
    default: false
  snapshot_retention_days:
    description: Days of automatic daily snapshots (0 = none; sessions are short-lived).
    type: int
    default: 0
  tags:
    description: Tags of the group (the group's tags are exactly these).
    type: dict
    default: {}
  state:
    description: C(present) or C(absent).
    type: str
    choices: [present, absent]
    default: present
  wait:
    description: Wait until the group is available (created, modified) or gone (deleted).
    type: bool
    default: true
  wait_timeout:
    description: Seconds to wait.
    type: int
    default: 1800
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: The shop's session store
  gearlift.platform.elasticache_replication_group:
    replication_group_id: shop-production-sessions
    subnet_group_name: shop-production-cache
    security_group_ids: [sg-0123456789abcdef0]
    kms_key_id: alias/shop-production-data
    auth_token: "{{ token }}"
    region: eu-west-1
  no_log: true
"""

RETURN = r"""
replication_group_id:
  description: The group's id.
  returned: always
  type: str
arn:
  description: The group's ARN ('' in check mode before it exists).
  returned: always
  type: str
primary_endpoint:
  description: The primary endpoint's address ('' in check mode before it exists).
  returned: always
  type: str
port:
  description: The primary endpoint's port.
  returned: always
  type: int
member_clusters:
  description: The group's nodes (cache cluster ids).
  returned: always
  type: list
  elements: str
"""

import time
from typing import Any

try:
    import botocore
except ImportError:  # handled by AnsibleAWSModule
    pass

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry
from ansible_collections.gearlift.platform.plugins.module_utils import elasticache

_POLL_SECONDS = 10


def _aws_errors() -> tuple[type[Exception], ...]:
    return (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError)


def _is_not_found(error: Exception) -> bool:
    code = getattr(error, "response", {}).get("Error", {}).get("Code", "")
    return code in ("ReplicationGroupNotFoundFault", "ReplicationGroupNotFound")


class Group:
    def __init__(self, module: AnsibleAWSModule) -> None:
        self.module = module
        self.client = module.client("elasticache", retry_decorator=AWSRetry.jittered_backoff())
        self.check = module.check_mode
        self.deadline = time.monotonic() + max(0, module.params["wait_timeout"])

    def fail(self, error: Exception, msg: str) -> None:
        self.module.fail_json_aws(error, msg=msg)

    def key_arn(self, key: str) -> str:
        kms = self.module.client("kms", retry_decorator=AWSRetry.jittered_backoff())
        try:
            return str(kms.describe_key(aws_retry=True, KeyId=key)["KeyMetadata"]["Arn"])
        except _aws_errors() as e:
            self.fail(e, f"Could not find the KMS key {key}")
        raise AssertionError  # fail_json_aws does not return

    def read(self, group_id: str) -> dict[str, Any] | None:
        try:
            found = self.client.describe_replication_groups(aws_retry=True, ReplicationGroupId=group_id)
        except _aws_errors() as e:
            if _is_not_found(e):
                return None
            self.fail(e, f"Could not read the replication group {group_id}")
        live = [g for g in found["ReplicationGroups"] if g.get("Status") not in ("deleting", "deleted")]
        return live[0] if live else None

    def members(self, group: dict[str, Any]) -> list[dict[str, Any]]:
        out = []
        for cluster_id in group.get("MemberClusters", []):
            try:
                out += self.client.describe_cache_clusters(aws_retry=True, CacheClusterId=cluster_id)["CacheClusters"]
            except _aws_errors() as e:
                self.fail(e, f"Could not read the node {cluster_id}")
        return out

    def tags(self, arn: str) -> dict[str, str]:
        try:
            listed = self.client.list_tags_for_resource(aws_retry=True, ResourceName=arn)["TagList"]
        except _aws_errors() as e:
            self.fail(e, f"Could not read the tags of {arn}")
        return {t["Key"]: t["Value"] for t in listed}

    def wait(self, group_id: str, gone: bool = False) -> dict[str, Any] | None:
        if not self.module.params["wait"]:
            return self.read(group_id)
        while True:
            group = self.read(group_id)
            if (group is None) if gone else (group is not None and group.get("Status") == "available"):
                return group
            if time.monotonic() >= self.deadline:
                self.module.fail_json(
                    msg=f"elasticache_replication_group: {group_id} not {'gone' if gone else 'available'} after "
                    f"{self.module.params['wait_timeout']} s (wait_timeout)"
                )
            time.sleep(_POLL_SECONDS)


def _result(group: dict[str, Any] | None, group_id: str) -> dict[str, Any]:
    group = group or {}
    address, port = elasticache.primary_endpoint(group)
    return {
        "replication_group_id": group_id,
        "arn": str(group.get("ARN", "")),
        "primary_endpoint": address,
        "port": port,
        "member_clusters": list(group.get("MemberClusters", [])),
    }


def main() -> None:
    module = AnsibleAWSModule(
        argument_spec=dict(
            replication_group_id=dict(type="str", required=True),
            description=dict(type="str", default="gearlift session store"),
            engine=dict(type="str", choices=list(elasticache.ENGINES), default="redis"),
            engine_version=dict(type="str", default="7.1"),
            node_type=dict(type="str", default="cache.t4g.small"),
            replicas=dict(type="int", default=1),
            port=dict(type="int", default=6379),
            subnet_group_name=dict(type="str"),
            security_group_ids=dict(type="list", elements="str", default=[]),
            transit_encryption=dict(type="bool", default=True),
            at_rest_encryption=dict(type="bool", default=True),
            kms_key_id=dict(type="str", no_log=False),
            auth_token=dict(type="str", no_log=True),
            allow_no_auth=dict(type="bool", default=False),
            snapshot_retention_days=dict(type="int", default=0),
            tags=dict(type="dict", default={}),
            state=dict(type="str", choices=["present", "absent"], default="present"),
            wait=dict(type="bool", default=True),
            wait_timeout=dict(type="int", default=1800),
        ),
        required_if=[("state", "present", ("subnet_group_name",))],
        supports_check_mode=True,
    )
    p = module.params
    group_id: str = p["replication_group_id"]

    if p["state"] == "absent":
        handle = Group(module)
        current = handle.read(group_id)
        if current is None:
            module.exit_json(changed=False, **_result(None, group_id))
        if not module.check_mode:
            try:
                handle.client.delete_replication_group(aws_retry=True, ReplicationGroupId=group_id)
            except _aws_errors() as e:
                handle.fail(e, f"Could not delete the replication group {group_id}")
            handle.wait(group_id, gone=True)
        module.exit_json(
            changed=True, diff={"before": {"state": "present"}, "after": {"state": "absent"}}, **_result(None, group_id)
        )

    token = p["auth_token"] or ""
    try:
        if token:
            problem = elasticache.token_problem(token)
            if problem:
                raise elasticache.CacheSpecError(problem)
        elif not p["allow_no_auth"]:
            raise elasticache.CacheSpecError("no auth_token: a group without AUTH needs allow_no_auth true")
        spec_args = dict(
            group_id=group_id,
            description=p["description"],
            engine=p["engine"],
            engine_version=p["engine_version"],
            node_type=p["node_type"],
            replicas=p["replicas"],
            port=p["port"],
            subnet_group=p["subnet_group_name"],
            security_groups=tuple(sorted(set(p["security_group_ids"]))),
            transit_encryption=p["transit_encryption"],
            at_rest_encryption=p["at_rest_encryption"],
            kms_key_arn=None,
            auth=bool(token),
            snapshot_retention_days=p["snapshot_retention_days"],
            tags={str(k): str(v) for k, v in p["tags"].items()},
        )
        elasticache.GroupSpec(**spec_args)  # bad input is refused before any call
    except elasticache.CacheSpecError as e:
        module.fail_json(msg=f"elasticache_replication_group: {e}")

    handle = Group(module)
    if p["kms_key_id"]:
        spec_args["kms_key_arn"] = handle.key_arn(p["kms_key_id"])
    try:
        spec = elasticache.GroupSpec(**spec_args)
    except elasticache.CacheSpecError as e:
        module.fail_json(msg=f"elasticache_replication_group: {e}")

    current = handle.read(group_id)
    if current is None:
        diff = {"before": {}, "after": spec.wanted_state()}
        if module.check_mode:
            module.exit_json(changed=True, diff=diff, **_result(None, group_id))
        params = spec.create_params()
        if token:
            params["AuthToken"] = token
        try:
            handle.client.create_replication_group(aws_retry=True, **params)
        except _aws_errors() as e:
            handle.fail(e, f"Could not create the replication group {group_id}")
        module.exit_json(changed=True, diff=diff, **_result(handle.wait(group_id), group_id))

    before = elasticache.current_state(current, handle.members(current))
    modify, fixed = spec.drift(before)
    if fixed:
        module.fail_json(
            msg=f"elasticache_replication_group: {group_id} exists and ElastiCache cannot change these in place: "
            + "; ".join(fixed)
            + ". Create a new group (and move the sessions) or change the wanted settings."
        )
    changed = bool(modify)
    if modify and not module.check_mode:
        try:
            handle.client.modify_replication_group(
                aws_retry=True, ReplicationGroupId=group_id, ApplyImmediately=True, **modify
            )
        except _aws_errors() as e:
            handle.fail(e, f"Could not modify the replication group {group_id}")
        current = handle.wait(group_id) or current
    arn = str(current.get("ARN", ""))
    add, remove = elasticache.tag_changes(handle.tags(arn), spec.tags)
    if add or remove:
        changed = True
        if not module.check_mode:
            try:
                if remove:
                    handle.client.remove_tags_from_resource(aws_retry=True, ResourceName=arn, TagKeys=remove)
                if add:
                    handle.client.add_tags_to_resource(
                        aws_retry=True, ResourceName=arn, Tags=[{"Key": k, "Value": v} for k, v in sorted(add.items())]
                    )
            except _aws_errors() as e:
                handle.fail(e, f"Could not tag {arn}")
    after = dict(before)
    after.update(spec.wanted_state())
    module.exit_json(changed=changed, diff={"before": before, "after": after}, **_result(current, group_id))


if __name__ == "__main__":
    main()
