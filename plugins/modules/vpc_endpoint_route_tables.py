#!/usr/bin/python
# Copyright: gearlift maintainers
# Apache License 2.0 (see galaxy.yml)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: vpc_endpoint_route_tables
short_description: The route tables of an existing VPC gateway endpoint
version_added: 0.1.0
description:
  - Associates route tables with an existing gateway endpoint (S3, DynamoDB) - C(ModifyVpcEndpoint) with
    C(AddRouteTableIds), and with O(purge_route_table_ids) C(RemoveRouteTableIds). The endpoint keeps its id,
    policy and tags.
  - C(amazon.aws.ec2_vpc_endpoint) finds an existing endpoint by its exact set of route tables and cannot change
    them, so a VPC that gains a subnet would get a second endpoint. Create the endpoint with it (or find it by
    another key) and keep its route tables with this module.
  - By default only adds the named route tables; tables someone else associated stay.
  - Before any change, fails naming the tables that are not route tables of the endpoint's VPC, and those another
    endpoint of the same service already holds (a route table has one route per prefix list; AWS would refuse
    it with C(RouteAlreadyExists)).
  - Idempotent. Check mode makes read calls only; diff mode shows the route tables before and after.
author:
  - gearlift maintainers (!UNKNOWN)
options:
  vpc_endpoint_id:
    description: The gateway endpoint (C(vpce-...)), for example from C(amazon.aws.ec2_vpc_endpoint)'s result.
    type: str
    required: true
  route_table_ids:
    description: The route tables (C(rtb-...)) that reach the service through the endpoint.
    type: list
    elements: str
    required: true
  purge_route_table_ids:
    description: Also remove the route tables associated with the endpoint that O(route_table_ids) does not name.
    type: bool
    default: false
notes:
  - IAM permissions - C(ec2:DescribeVpcEndpoints), C(ec2:DescribeRouteTables), C(ec2:ModifyVpcEndpoint).
  - Associating a route table adds the route to the service's prefix list; instances in its subnets then reach
    the service through the endpoint (its policy applies to them) instead of a NAT or internet gateway.
    Their security groups and network ACLs must allow the service's addresses (HTTPS to the prefix list, or
    443 to 0.0.0.0/0).
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: The app and bake subnets reach S3 through the gateway endpoint
  gearlift.platform.vpc_endpoint_route_tables:
    vpc_endpoint_id: "{{ s3_endpoint.result.vpc_endpoint_id }}"
    route_table_ids: "{{ app_route_table_ids + [bake_route_table_id] }}"

- name: Exactly these route tables, none other
  gearlift.platform.vpc_endpoint_route_tables:
    vpc_endpoint_id: vpce-0a1b2c3d4e5f67890
    route_table_ids: [rtb-0123456789abcdef0]
    purge_route_table_ids: true
"""

RETURN = r"""
vpc_endpoint_id:
  description: The endpoint.
  returned: always
  type: str
route_table_ids:
  description: The route tables associated with the endpoint after the run (sorted; the planned ones in check mode).
  returned: always
  type: list
  elements: str
added:
  description: The route tables this run associated (or would, in check mode).
  returned: always
  type: list
  elements: str
removed:
  description: The route tables this run removed (or would, in check mode).
  returned: always
  type: list
  elements: str
diff:
  description: The route tables before and after.
  returned: in check mode or diff mode
  type: dict
"""

import contextlib
from typing import Any

with contextlib.suppress(ImportError):  # botocore missing is reported by AnsibleAWSModule
    import botocore

from ansible_collections.amazon.aws.plugins.module_utils.botocore import is_boto3_error_code
from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry
from ansible_collections.gearlift.platform.plugins.module_utils import vpc_endpoints as ve


def _aws_errors() -> tuple[type[BaseException], ...]:
    return (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError)


class RouteTablesModule:
    def __init__(self, module: Any) -> None:
        self.module = module
        self.endpoint_id = module.params["vpc_endpoint_id"]
        self.client = module.client("ec2", retry_decorator=AWSRetry.jittered_backoff())

    def endpoint(self) -> dict[str, Any]:
        try:
            found = self.client.describe_vpc_endpoints(VpcEndpointIds=[self.endpoint_id], aws_retry=True)
        except is_boto3_error_code(["InvalidVpcEndpointId.NotFound", "InvalidVpcEndpointId.Malformed"]):
            found = {}
        except _aws_errors() as e:  # pylint: disable=duplicate-except
            self.module.fail_json_aws(e, msg=f"Could not read VPC endpoint {self.endpoint_id}")
        endpoints = found.get("VpcEndpoints") or []
        if not endpoints:
            self.module.fail_json(msg=f"vpc_endpoint_route_tables: no VPC endpoint {self.endpoint_id}")
        endpoint: dict[str, Any] = endpoints[0]
        return endpoint

    def refusals(self, endpoint: dict[str, Any], add: tuple[str, ...]) -> list[str]:
        """Why the tables to add cannot be added (empty: they can)."""
        vpc = endpoint.get("VpcId", "")
        try:
            tables = self.client.describe_route_tables(
                Filters=[{"Name": "route-table-id", "Values": list(add)}], aws_retry=True
            )["RouteTables"]
            others = self.client.describe_vpc_endpoints(
                Filters=[
                    {"Name": "vpc-id", "Values": [vpc]},
                    {"Name": "service-name", "Values": [endpoint.get("ServiceName", "")]},
                ],
                aws_retry=True,
            )["VpcEndpoints"]
        except _aws_errors() as e:
            self.module.fail_json_aws(e, msg=f"Could not read the route tables and endpoints of {vpc}")
        reasons = []
        foreign = ve.not_in_vpc(vpc, add, tables)
        if foreign:
            reasons.append(f"{', '.join(foreign)} not route table(s) of {vpc}")
        held = ve.held_elsewhere(self.endpoint_id, others, add)
        if held:
            reasons.append(
                "already on another endpoint of "
                + endpoint.get("ServiceName", "the service")
                + ": "
                + ", ".join(f"{rtb} ({vpce})" for rtb, vpce in held.items())
                + " - a route table takes one route to the service's prefix list; remove it there first"
            )
        return reasons

    def run(self) -> dict[str, Any]:
        try:
            wanted = ve.route_table_ids(self.module.params["route_table_ids"])
        except ve.EndpointError as e:
            self.module.fail_json(msg=f"vpc_endpoint_route_tables: {e}")
        endpoint = self.endpoint()
        try:
            ve.check_gateway(endpoint)
        except ve.EndpointError as e:
            self.module.fail_json(msg=f"vpc_endpoint_route_tables: {e}")
        current = endpoint.get("RouteTableIds") or []
        todo = ve.plan(current, wanted, self.module.params["purge_route_table_ids"])
        if todo.add:
            reasons = self.refusals(endpoint, todo.add)
            if reasons:
                self.module.fail_json(msg=f"vpc_endpoint_route_tables: {self.endpoint_id}: {'; '.join(reasons)}")
        result: dict[str, Any] = {
            "changed": todo.changed,
            "vpc_endpoint_id": self.endpoint_id,
            "route_table_ids": list(todo.after),
            "added": list(todo.add),
            "removed": list(todo.remove),
        }
        if self.module._diff or self.module.check_mode:
            result["diff"] = {
                "before": {"route_table_ids": sorted(current)},
                "after": {"route_table_ids": list(todo.after)},
            }
        if self.module.check_mode or not todo.changed:
            return result
        changes: dict[str, Any] = {}
        if todo.add:
            changes["AddRouteTableIds"] = list(todo.add)
        if todo.remove:
            changes["RemoveRouteTableIds"] = list(todo.remove)
        try:
            answer = self.client.modify_vpc_endpoint(VpcEndpointId=self.endpoint_id, aws_retry=True, **changes)
        except _aws_errors() as e:
            self.module.fail_json_aws(e, msg=f"Could not change the route tables of VPC endpoint {self.endpoint_id}")
        if answer.get("Return") is False:
            self.module.fail_json(msg=f"vpc_endpoint_route_tables: AWS refused the change of {self.endpoint_id}")
        return result


def main() -> None:
    module = AnsibleAWSModule(
        argument_spec=dict(
            vpc_endpoint_id=dict(type="str", required=True),
            route_table_ids=dict(type="list", elements="str", required=True),
            purge_route_table_ids=dict(type="bool", default=False),
        ),
        supports_check_mode=True,
    )
    module.exit_json(**RouteTablesModule(module).run())


if __name__ == "__main__":
    main()
